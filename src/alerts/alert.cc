#include "alerts/alert.h"

namespace sandman {

const char* alertStateName(AlertState s) {
  switch (s) {
    case AlertState::kPending: return "pending";
    case AlertState::kFiring: return "firing";
    case AlertState::kResolved: return "resolved";
  }
  return "?";
}

std::optional<AlertState> parseAlertState(const std::string& s) {
  if (s == "pending") return AlertState::kPending;
  if (s == "firing") return AlertState::kFiring;
  if (s == "resolved") return AlertState::kResolved;
  return std::nullopt;
}

}  // namespace sandman
