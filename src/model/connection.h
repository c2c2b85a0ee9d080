// Connection and UserKey: records of SSH gateway logins and of the public
// keys registered for a user. Plain value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/clock.h"

namespace sandman {

// One gateway connection, as recorded in the store.
struct ConnectionRecord {
  int64_t id = 0;
  std::string user_id;
  std::string session_id;  // empty when refused before routing
  std::string source;      // "ip:port"
  std::string outcome;     // "login", "refused", "closed"
  std::string reason;      // why refused / how it ended
  TimePoint started_at{};
  std::optional<TimePoint> ended_at;
  uint64_t bytes_in = 0;   // client -> session
  uint64_t bytes_out = 0;  // session -> client
};

// A decision taken about a running session (idle warning, idle stop,
// automatic extension), kept with the session's history.
struct SessionEvent {
  int64_t id = 0;
  std::string session_id;
  TimePoint at{};
  std::string kind;    // "idle_warning", "idle_stop", "auto_extend", "auto_extend_limit", "busy_again"
  std::string detail;  // one human sentence
};

// A public key registered for a user (PUT /users/{id}/keys): it may log in
// through the gateway to any of the user's sessions.
struct UserKey {
  int64_t id = 0;
  std::string user_id;
  std::string public_key;   // normalised "type base64 [comment]"
  std::string fingerprint;  // "SHA256:..."
  TimePoint created_at{};
};

}  // namespace sandman
