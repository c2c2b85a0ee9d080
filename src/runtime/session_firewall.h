// SessionFirewall: Sandman's own iptables chains for one session bridge, one
// pair per family: SANDMAN-IN-<bridge> (jumped to from INPUT: sessions may not
// open connections to the host) and SANDMAN-EG-<bridge> (jumped to from
// DOCKER-USER, else FORWARD: the egress policy). Chains are replaced whole
// (iptables-restore), so re-applying is idempotent and never leaves a gap.
// Stateless functions over iptables; safe to call from any thread.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/egress_policy.h"

namespace sandman {

struct FirewallPlan {
  bool isolate_host = true;
  EgressPolicy egress;
};

// The chain names for a bridge (exposed for tests).
std::string hostChainName(const std::string& bridge);
std::string egressChainName(const std::string& bridge);

// Puts the plan's chains and jumps for `bridge` in place, replacing older ones,
// and removes the chains the plan turns off. Unavailable (with what to do)
// when iptables cannot be run. IPv6 is covered where ip6tables works.
Status applySessionFirewall(const std::string& bridge, const FirewallPlan& plan);

// Removes every Sandman chain of `bridge` and the jumps to them. Idempotent.
Status removeSessionFirewall(const std::string& bridge);

// Removes the chains of bridges that no longer exist (networks removed while
// no daemon was there to see it); returns the bridges cleaned up.
std::vector<std::string> sweepStaleSessionFirewalls();

}  // namespace sandman
