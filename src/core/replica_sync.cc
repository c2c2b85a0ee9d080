#include "core/replica_sync.h"

#include "common/log.h"

namespace sandman {

ReplicaSync::ReplicaSync(SessionManager& sessions, std::function<bool()> elected, std::function<uint64_t()> term,
                         const Clock& clock, ReplicaSyncOptions options)
    : sessions_(sessions), elected_(std::move(elected)), term_(std::move(term)), clock_(clock), options_(options) {}

ReplicaSync::~ReplicaSync() { stop(); }

bool ReplicaSync::mayMutate() const {
  const uint64_t t = term_();
  return elected_() && t != 0 && synced_term_.load() == t;
}

void ReplicaSync::round() {
  const bool elected = elected_();
  const uint64_t term = term_();
  const bool taking_over = elected && synced_term_.load() != term;
  const auto started = std::chrono::steady_clock::now();
  // A new leader syncs as a follower first: it takes the expiries the old
  // leader recorded, ends what the old leader ended, and adopts the rest.
  auto synced = sessions_.syncFromCluster(elected && !taking_over);
  if (!synced.ok()) {
    logWarn("sync with the cluster failed; retrying", {{"error", synced.error().message}});
    return;
  }
  const auto& s = synced.value();
  if (s.adopted > 0 || s.ended > 0) {
    logInfo("store synced with the cluster", {{"adopted", std::to_string(s.adopted)},
                                              {"ended", std::to_string(s.ended)},
                                              {"expiries", std::to_string(s.expiries)}});
  }
  if (!taking_over || !elected_() || term_() != term) return;
  synced_term_.store(term);
  // The first leadership of this process: no create of its own can be in
  // flight, so sessions its store left `starting` (a crash) are failed.
  const bool first = takeovers_.fetch_add(1) == 0;
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  logInfo("leader: store synced with the cluster; mutations open",
          {{"adopted", std::to_string(s.adopted)}, {"sync_ms", std::to_string(static_cast<int>(ms))}});
  // What the old leader may have left half-done (pods without a session
  // here, sessions without a pod, expiries passed meanwhile).
  if (auto st = sessions_.reconcile(first ? SessionManager::ReconcileMode::kStartup
                                         : SessionManager::ReconcileMode::kPeriodic);
      !st.ok()) {
    logWarn("reconcile after takeover failed; the reaper retries", {{"error", st.error().message}});
  }
}

void ReplicaSync::start() {
  thread_ = std::thread([this] {
    for (;;) {
      round();
      std::unique_lock lock(mu_);
      clock_.waitUntil(lock, cv_, clock_.now() + options_.period, [this] { return woken_ || stopping_; });
      if (stopping_) return;
      woken_ = false;
    }
  });
}

void ReplicaSync::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void ReplicaSync::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sandman
