#include "core/reaper.h"

#include "common/log.h"

namespace sandman {

Reaper::Reaper(SessionManager& sessions, const Clock& clock, Millis recheck_every)
    : sessions_(sessions), clock_(clock), recheck_every_(recheck_every) {}

Reaper::~Reaper() { stop(); }

void Reaper::start() { thread_ = std::thread([this] { run(); }); }

void Reaper::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Reaper::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void Reaper::run() {
  TimePoint next_recheck = clock_.now() + recheck_every_;
  while (true) {
    TimePoint deadline = next_recheck;
    if (auto next = sessions_.nextExpiry(); next && *next < deadline) deadline = *next;
    {
      std::unique_lock lock(mu_);
      // Through the injected clock: under a manual clock the reaper wakes
      // when a test advances time past the expiry, without sleeping.
      clock_.waitUntil(lock, cv_, deadline, [this] { return woken_ || stopping_; });
      if (stopping_) return;
      woken_ = false;
    }
    const TimePoint now = clock_.now();
    if (int n = sessions_.reapExpired(now); n > 0) logInfo("reaped expired sessions", {{"count", std::to_string(n)}});
    if (now >= next_recheck) {
      if (auto st = sessions_.reconcile(SessionManager::ReconcileMode::kPeriodic); !st.ok()) logWarn("periodic reconcile failed", {{"error", st.error().message}});
      next_recheck = clock_.now() + recheck_every_;
    }
  }
}

}  // namespace sandman
