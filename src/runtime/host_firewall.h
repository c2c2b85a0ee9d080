// HostFirewall: keeps session containers away from the host's own services.
// Inter-container traffic is already off on Sandman's bridge (enable_icc);
// this adds INPUT rules so that a container cannot open connections to any
// address of the host (only replies to connections the host opened, such as
// Docker's port proxy relaying SSH, come back in). Runs iptables directly
// (fork/exec, no shell). Thread-compatible: called once at start-up.
#pragma once

#include <string>

#include "common/result.h"

namespace sandman {

// Idempotent: inserts the rules for `iface` unless they are there already.
Status isolateBridgeFromHost(const std::string& iface);

}  // namespace sandman
