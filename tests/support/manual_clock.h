// ManualClock: a Clock that moves only when a test advances it; waits on it
// end when advance() passes their deadline (or their condition comes true).
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>

#include "common/clock.h"

namespace sandman::testing {

class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint(std::chrono::seconds(1'800'000'000))) : now_(start) {}
  TimePoint now() const override { return now_.load(); }
  void advance(Millis d) {
    now_.store(now_.load() + d);
    std::lock_guard l(mu_);
    for (auto* cv : waiting_) cv->notify_all();
    moved_.notify_all();
  }

  // With auto-advance, a sleep moves the clock to its own deadline at once: for
  // code that only polls (readiness), so a test needs no ticking thread.
  void setAutoAdvanceSleeps(bool on) { auto_advance_sleeps_ = on; }

  void sleepUntil(TimePoint deadline) const override {
    if (auto_advance_sleeps_) {
      TimePoint cur = now_.load();
      while (cur < deadline && !now_.compare_exchange_weak(cur, deadline)) {
      }
      return;
    }
    std::unique_lock l(mu_);
    // Short real-time slices only guard against a wake-up lost between the
    // check and the wait; time itself moves only through advance().
    while (now() < deadline) moved_.wait_for(l, std::chrono::milliseconds(2));
  }
  bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, TimePoint deadline,
                 const std::function<bool()>& done) const override {
    {
      std::lock_guard l(mu_);
      waiting_.insert(&cv);
    }
    while (!done() && now() < deadline) cv.wait_for(lock, std::chrono::milliseconds(2));
    std::lock_guard l(mu_);
    waiting_.erase(waiting_.find(&cv));
    return done();
  }

 private:
  mutable std::atomic<TimePoint> now_;
  std::atomic<bool> auto_advance_sleeps_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable moved_;
  mutable std::multiset<std::condition_variable*> waiting_;  // GUARDED_BY(mu_)
};

}  // namespace sandman::testing
