// SessionActivity: what the SSH entry point knows about a session's users,
// for the idle policy (core cannot see the gateway; the gateway implements
// this). Implementations are thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/clock.h"

namespace sandman {

struct SessionTraffic {
  int open_connections = 0;
  std::optional<TimePoint> last_traffic_at;  // last byte relayed either way
};

class SessionActivity {
 public:
  virtual ~SessionActivity() = default;
  // Sessions with at least one open gateway connection, or traffic since start.
  virtual std::map<std::string, SessionTraffic> traffic() = 0;
  // One line on stderr of every open shell of the session (like the expiry warning).
  virtual void notify(const std::string& session_id, const std::string& line) = 0;
};

}  // namespace sandman
