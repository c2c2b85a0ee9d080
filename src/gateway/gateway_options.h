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
  int max_unauth_per_source = 10;
  int max_auth_attempts = 6;
  Millis login_grace = std::chrono::seconds(30);
  int block_after_failures = 10;
  Millis block_for = std::chrono::minutes(5);
  // ssh -A and ssh -R (--allow-agent-forwarding, --allow-remote-forwarding):
  // off, they are refused with a message on stderr naming the flag.
  bool allow_agent_forwarding = false;
  bool allow_remote_forwarding = false;
  Millis expiry_warning = std::chrono::minutes(5);
};

}  // namespace sandman
