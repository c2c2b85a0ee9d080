#include "model/session.h"

namespace sandman {

const char* toString(SessionStatus s) {
  switch (s) {
    case SessionStatus::kPending: return "pending";
    case SessionStatus::kStarting: return "starting";
    case SessionStatus::kRunning: return "running";
    case SessionStatus::kStopping: return "stopping";
    case SessionStatus::kEnded: return "ended";
    case SessionStatus::kFailed: return "failed";
  }
  return "failed";
}

std::optional<SessionStatus> parseSessionStatus(const std::string& s) {
  for (auto st : {SessionStatus::kPending, SessionStatus::kStarting, SessionStatus::kRunning,
                  SessionStatus::kStopping, SessionStatus::kEnded, SessionStatus::kFailed}) {
    if (s == toString(st)) return st;
  }
  return std::nullopt;
}

bool isActive(SessionStatus s) {
  return s == SessionStatus::kPending || s == SessionStatus::kStarting ||
         s == SessionStatus::kRunning || s == SessionStatus::kStopping;
}

bool canBeginEnd(SessionStatus s) {
  return s == SessionStatus::kPending || s == SessionStatus::kStarting || s == SessionStatus::kRunning;
}

}  // namespace sandman
