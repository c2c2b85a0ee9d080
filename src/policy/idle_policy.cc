#include "policy/idle_policy.h"

#include <set>

#include "common/duration.h"
#include "common/log.h"
#include "common/time_format.h"

namespace sandman {
namespace {

std::string minutesText(Millis d) {
  auto m = std::chrono::duration_cast<std::chrono::minutes>(d).count();
  if (m >= 1) return std::to_string(m) + " min";
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

}  // namespace

std::string BusyReason::describe() const {
  std::string out;
  auto add = [&](bool on, const char* what) {
    if (!on) return;
    if (!out.empty()) out += ", ";
    out += what;
  };
  add(gpu_processes, "GPU processes");
  add(gpu_utilization, "GPU utilisation");
  add(ssh_traffic, "SSH traffic");
  return out.empty() ? "idle" : out;
}

const char* IdlePolicy::decisionName(Decision d) {
  static constexpr const char* kNames[kDecisionKinds] = {"idle_warning", "idle_stop", "auto_extend",
                                                         "auto_extend_limit", "busy_again"};
  return kNames[d];
}

IdlePolicy::IdlePolicy(IdlePolicyOptions options, SessionManager& sessions, Store& store, SessionActivity* activity,
                       const Clock& clock)
    : options_(options), sessions_(sessions), store_(store), activity_(activity), clock_(clock),
      started_at_(clock.now()) {}

IdlePolicy::~IdlePolicy() { stop(); }

void IdlePolicy::onSample(const TelemetrySnapshot& snapshot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = snapshot;  // only the newest matters
  }
  wake_.notify_one();
}

void IdlePolicy::start() {
  if (!options_.enabled() || thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void IdlePolicy::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void IdlePolicy::run() {
  for (;;) {
    TelemetrySnapshot snap;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || pending_.has_value(); });
      if (stopping_) return;
      snap = std::move(*pending_);
      pending_.reset();
    }
    evaluate(snap);
  }
}

BusyReason IdlePolicy::busyReason(const Session& s, const TelemetrySnapshot& snap,
                                  const std::map<std::string, SessionTraffic>& traffic, TimePoint now) const {
  BusyReason why;
  auto look = [&](const std::vector<DeviceReading>& devices) {
    for (const auto& d : devices) {
      if (d.session_id != s.id) continue;
      if (d.compute_processes > 0) why.gpu_processes = true;
      if (d.utilization_pct && *d.utilization_pct > options_.utilization_threshold) why.gpu_utilization = true;
    }
  };
  look(snap.instances);
  look(snap.gpus);
  if (auto it = traffic.find(s.id); it != traffic.end()) {
    const SessionTraffic& t = it->second;
    why.ssh_traffic = t.open_connections > 0 && t.last_traffic_at && now - *t.last_traffic_at <= options_.traffic_window;
  }
  return why;
}

void IdlePolicy::evaluate(const TelemetrySnapshot& snap) {
  // A sample that failed says nothing about the GPUs: never stop on it.
  if (!snap.backend_ok) return;
  auto running = sessions_.list({std::nullopt, SessionStatus::kRunning});
  if (!running.ok()) return;
  const TimePoint now = clock_.now();
  std::map<std::string, SessionTraffic> traffic;
  if (activity_ != nullptr) traffic = activity_->traffic();

  std::map<std::string, Tracked> next;
  const std::set<std::string> unobserved(snap.unobserved_sessions.begin(), snap.unobserved_sessions.end());
  for (const Session& s : running.value()) {
    Tracked t;
    bool first_seen = true;
    if (auto it = tracked_.find(s.id); it != tracked_.end()) {
      t = it->second;
      first_seen = false;
    }
    if (unobserved.count(s.id) != 0) {
      // Its node's agent is missing: no reading is not an idle reading. The
      // idle clock starts again once the node is seen (never a stop on a gap).
      t.idle = false;
      t.warned = false;
      next[s.id] = t;
      continue;
    }
    BusyReason why = busyReason(s, snap, traffic, now);
    if (why.busy()) {
      if (t.warned) {
        record(s, kBusyAgain, "busy again (" + why.describe() + "); the idle stop is off");
        if (activity_ != nullptr) activity_->notify(s.id, "sandman: activity seen; session " + s.id + " will not be stopped");
      }
      t.idle = false;
      t.warned = false;
    } else if (!t.idle) {
      t.idle = true;
      // First sight: idle since it started, or since this daemon could watch it.
      t.idle_since = first_seen ? std::max(s.created_at, started_at_) : now;
    }

    if (options_.stop_after.count() > 0 && t.idle) {
      const Millis idle_for = std::chrono::duration_cast<Millis>(now - t.idle_since);
      if (idle_for >= options_.stop_after) {
        std::string detail = "idle for " + minutesText(idle_for) + " (no GPU processes, utilisation at most " +
                             std::to_string(static_cast<int>(options_.utilization_threshold)) +
                             "%, no SSH traffic); stopped by --idle-stop-after " + formatDuration(options_.stop_after);
        record(s, kIdleStop, detail);
        (void)sessions_.stop(s.id, "idle: " + detail);
        continue;  // not tracked any more
      }
      if (!t.warned && idle_for >= options_.stop_after - options_.warning) {
        t.warned = true;
        Millis left = options_.stop_after - idle_for;
        record(s, kIdleWarning, "idle for " + minutesText(idle_for) + "; stop in " + minutesText(left));
        if (activity_ != nullptr) {
          activity_->notify(s.id, "sandman: session " + s.id + " is idle (no GPU work, no SSH traffic); it will be "
                                  "stopped in " + minutesText(left) + " unless it becomes busy. /workspace is kept.");
        }
      }
    }

    if (options_.auto_extend && why.busy() && s.expires_at - now <= options_.extend_before) {
      const TimePoint cap = s.created_at + options_.ttl_max;
      TimePoint target = std::min(s.expires_at + options_.extend_step, cap);
      if (target > s.expires_at) {
        // Compare-and-set on the expiry this decision was computed from: an
        // admin who changed it meanwhile wins, and the next sample decides again.
        auto r = sessions_.extendIf(s.id, s.expires_at, target);
        if (r.ok()) {
          record(s, kAutoExtend, "busy (" + why.describe() + "): expiry moved from " + formatRfc3339(s.expires_at) +
                                     " to " + formatRfc3339(r->expires_at));
        } else {
          logWarn("auto-extend failed", {{"session", s.id}, {"error", r.error().message}});
        }
      } else if (!t.extend_limit_noted) {
        t.extend_limit_noted = true;
        record(s, kAutoExtendLimit, "busy, but --ttl-max " + formatDuration(options_.ttl_max) +
                                        " reached: not extended past " + formatRfc3339(cap));
      }
    }
    next[s.id] = t;
  }
  tracked_ = std::move(next);
}

void IdlePolicy::record(const Session& s, Decision d, const std::string& detail) {
  counts_[d].fetch_add(1, std::memory_order_relaxed);
  logInfo("idle policy", {{"session", s.id}, {"user", s.user_id}, {"decision", decisionName(d)}, {"detail", detail}});
  if (auto st = store_.addSessionEvent({0, s.id, clock_.now(), decisionName(d), detail}); !st.ok()) {
    logWarn("cannot record session event", {{"session", s.id}, {"error", st.error().message}});
  }
}

std::map<std::string, uint64_t> IdlePolicy::decisions() const {
  std::map<std::string, uint64_t> out;
  for (int i = 0; i < kDecisionKinds; ++i) out[decisionName(static_cast<Decision>(i))] = counts_[i].load();
  return out;
}

}  // namespace sandman
