// Reaper: one thread holding a timer for the nearest session expiry (no
// polling), re-armed whenever an expiry changes; it also re-checks the
// containers against the store now and then. Thread-safe.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "core/session_manager.h"

namespace sandman {

class Reaper {
 public:
  Reaper(SessionManager& sessions, const Clock& clock, Millis recheck_every = std::chrono::seconds(30));
  ~Reaper();
  void start();
  void stop();
  // Re-arms the timer (an expiry was added or changed).
  void wake();

 private:
  void run();

  SessionManager& sessions_;
  const Clock& clock_;
  const Millis recheck_every_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;    // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace sandman
