// Clock: the one source of "now", injected so that TTL rules are tested under
// a manual clock. SystemClock is thread-safe (stateless).
#pragma once

#include <chrono>
#include <memory>

namespace sandman {

using TimePoint = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
};

using ClockPtr = std::unique_ptr<Clock>;

}  // namespace sandman
