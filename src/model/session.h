// Session: the record every module speaks about (store persists it, core
// drives its lifecycle, api renders it). Plain value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/clock.h"

namespace sandman {

// pending -> starting -> running -> stopping -> ended, or failed.
enum class SessionStatus { kPending, kStarting, kRunning, kStopping, kEnded, kFailed };

const char* toString(SessionStatus s);
std::optional<SessionStatus> parseSessionStatus(const std::string& s);
// Active sessions hold a port and count for "one session per user".
bool isActive(SessionStatus s);

struct Session {
  std::string id;       // "s-" + 16 hex digits
  std::string user_id;  // validated POSIX user name
  SessionStatus status = SessionStatus::kPending;
  std::string image;
  std::string container_id;  // empty until the container exists
  int ssh_port = 0;
  std::string user_public_key;  // authorized_keys line; the private half is never kept
  std::string host_public_key;  // "ssh-ed25519 AAAA..." of the container's sshd
  std::optional<std::string> gpu_uuid;
  TimePoint created_at{};
  TimePoint expires_at{};
  std::optional<TimePoint> ended_at;
  std::string end_reason;  // "deleted", "expired", "container gone", "start failed: ..."
};

// A user's identity inside containers, assigned once and kept in the store.
struct UserAccount {
  std::string user_id;
  int uid = 0;
  int gid = 0;
};

}  // namespace sandman
