// Alert: one episode of one rule on one device (its fingerprint), from the
// first sample where the condition held to the sample where it stopped.
// Plain value type; the engine owns the live copies, the store the history.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/clock.h"

namespace sandman {

// pending: the condition holds, not yet for the rule's `for` (stored, never
// delivered); firing: held for `for` (delivered); resolved: it stopped after
// firing (delivered). A pending alert whose condition clears is deleted, so
// history holds only alerts that fired.
enum class AlertState { kPending, kFiring, kResolved };

const char* alertStateName(AlertState s);  // "pending", "firing", "resolved"
std::optional<AlertState> parseAlertState(const std::string& s);

struct Alert {
  int64_t id = 0;  // store row id; 0 before it is stored
  std::string rule;
  std::string severity;
  std::string fingerprint;                  // rule + "/" + device (or "host")
  std::map<std::string, std::string> labels;  // frozen when the episode starts
  AlertState state = AlertState::kPending;
  double value = 0;  // the reading that last made the condition hold
  std::string summary;
  TimePoint pending_at{};
  std::optional<TimePoint> fired_at;
  std::optional<TimePoint> resolved_at;
  std::optional<TimePoint> acked_at;
  std::string acked_by;

  bool open() const { return state != AlertState::kResolved; }
};

}  // namespace sandman
