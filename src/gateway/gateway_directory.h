// GatewayDirectory: what the SSH gateway asks the rest of Sandman: where a
// user's running session is, which keys may log in as that user, and where
// to record connections. Implemented by core; the gateway never touches the
// store or Docker itself, and calls the record methods only from its journal
// thread, never from the relay's event loop. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "model/connection.h"

namespace sandman {

// Where the gateway relays a user's connection.
struct GatewayRoute {
  std::string session_id;
  std::string upstream_host = "127.0.0.1";  // the session's published port on loopback
  int upstream_port = 0;
  std::string upstream_host_key;     // "ssh-ed25519 AAAA..." pinned for the container's sshd
  std::string upstream_private_key;  // OpenSSH private key Sandman holds for this session
  std::string upstream_user;         // login name inside the container (= user id)
  TimePoint expires_at{};
  std::string gpu;                   // "1g.10gb MIG-..." or "" (banner only)
};

class GatewayDirectory {
 public:
  virtual ~GatewayDirectory() = default;
  // The running session of `user_id`; kNotFound when there is none.
  virtual Result<GatewayRoute> route(const std::string& user_id) = 0;
  // Public keys ("type base64 [comment]") that may log in as `user_id`: the
  // session's own key and the keys registered for the user.
  virtual Result<std::vector<std::string>> authorizedKeys(const std::string& user_id) = 0;
  // Records a connection; returns its id so the end can be recorded too.
  virtual Result<int64_t> connectionStarted(const ConnectionRecord& c) = 0;
  virtual Status connectionEnded(int64_t id, const ConnectionRecord& c) = 0;
  // Deletes up to `limit` records older than `before`; returns how many
  // (the gateway calls it off its event loop, in small batches).
  virtual Result<int64_t> pruneConnections(TimePoint before, int limit) = 0;
};

}  // namespace sandman
