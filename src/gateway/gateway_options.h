// GatewayOptions: the settings of the SSH gateway (`sandman serve
// --gateway-*`). A plain value type.
#pragma once

#include <chrono>
#include <string>

#include "common/clock.h"

namespace sandman {

struct GatewayOptions {
  std::string bind = "0.0.0.0";
  int port = 2222;  // 0: the kernel picks (see SshGateway::boundPort)
  std::string host_key_path;
  // Caps on what is held open (before and after login alike).
  int max_connections = 1024;           // in all
  int max_connections_per_source = 64;  // per source address
  int max_connections_per_user = 32;    // logged in, per user
  int max_channels_per_connection = 32; // sessions and forwards at once
  int max_unauth_per_source = 10;
  int max_auth_attempts = 6;
  Millis login_grace = std::chrono::seconds(30);
  // A login routed to no session (none running, no key, user cap) is told so
  // on its first channel and closed then, or after this.
  Millis unrouted_grace = std::chrono::seconds(10);
  // Failed logins block the source address, and the user name from that
  // source only: never the user from elsewhere, never a key on her list.
  int block_after_failures = 10;
  Millis block_for = std::chrono::minutes(5);
  // Refused connections: log lines and durable records, each at most this
  // many per minute (all are counted).
  int refusal_records_per_minute = 20;
  Millis connection_retention = std::chrono::hours(24 * 30);  // --connection-retention
  // ssh -A and ssh -R (--allow-agent-forwarding, --allow-remote-forwarding):
  // off, they are refused with a message on stderr naming the flag.
  bool allow_agent_forwarding = false;
  bool allow_remote_forwarding = false;
  Millis expiry_warning = std::chrono::minutes(5);
};

}  // namespace sandman
