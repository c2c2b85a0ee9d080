// Clock: the one source of "now" and of every wait (TTL timers, readiness
// polling, back-off, sampling), injected so that tests run on a manual clock
// instead of sleeping. SystemClock is thread-safe (stateless).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace sandman {

using TimePoint = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  // Blocks until now() >= deadline on this clock.
  virtual void sleepUntil(TimePoint deadline) const = 0;
  void sleepFor(Millis d) const { sleepUntil(now() + d); }
  // Waits on `cv` (with `lock` held on entry and return) until `done()` is
  // true or this clock reaches `deadline`; returns done(). Whoever makes
  // done() true notifies `cv`, as with std::condition_variable.
  virtual bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, TimePoint deadline,
                         const std::function<bool()>& done) const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
  void sleepUntil(TimePoint deadline) const override {
    std::this_thread::sleep_until(deadline);
  }
  bool waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, TimePoint deadline,
                 const std::function<bool()>& done) const override {
    return cv.wait_until(lock, deadline, done);
  }
};

using ClockPtr = std::unique_ptr<Clock>;

}  // namespace sandman
