// EgressPolicy: where session containers may open connections (--session-egress),
// and the iptables rules that say so. Pure value type and functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/iptables.h"

namespace sandman {

struct EgressAllow {
  std::string cidr;  // "10.1.2.0/24", "fd12::/64"
  IpFamily family = IpFamily::kV4;
  int port = 0;  // 0: every port; else TCP and UDP to this port only
};

struct EgressPolicy {
  bool enabled = true;    // "off": Sandman adds no egress rules at all
  bool deny_all = false;  // "none": only replies and the allow-list leave
  std::vector<EgressAllow> allow;
};

// "" (default: metadata and private ranges dropped, the rest allowed),
// "10.1.2.3/32:3142,192.168.5.0/24" (those allowed through), "none" (nothing
// leaves), "none,10.1.2.3/32:3142" (only that), "off" (no rules). kInvalid
// names the bad entry. Link-local / metadata addresses cannot be allowed.
Result<EgressPolicy> parseEgressPolicy(const std::string& text);

// One line for logs: "default (private ranges dropped) + allow 10.1.2.3/32:3142".
std::string describeEgressPolicy(const EgressPolicy& policy);

// The rules of a session network's egress chain for one family, in order,
// each as iptables arguments after "-A <chain>". Replies first, then
// metadata (always dropped), then the allow-list, then private ranges (or
// everything under "none"); what falls through returns to Docker's rules.
std::vector<std::vector<std::string>> egressRules(const EgressPolicy& policy, IpFamily family);

// Whether a new connection to ip:port (TCP/UDP) from a session passes the
// policy (false for an address that does not parse).
bool egressAllows(const EgressPolicy& policy, const std::string& ip, int port);

}  // namespace sandman
