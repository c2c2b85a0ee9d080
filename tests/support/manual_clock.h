// ManualClock: a Clock that moves only when a test advances it.
// Thread-safe.
#pragma once

#include <atomic>

#include "common/clock.h"

namespace sandman::testing {

class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint(std::chrono::seconds(1'800'000'000))) : now_(start) {}
  TimePoint now() const override { return now_.load(); }
  void advance(Millis d) { now_.store(now_.load() + d); }

 private:
  std::atomic<TimePoint> now_;
};

}  // namespace sandman::testing
