// AgentFleet: the control daemon's view of the node agents on a cluster. It
// turns the agent pods the API server lists into one target per node, and
// merges each cycle's answers into the cluster's TelemetrySnapshot: devices
// of the nodes that answered (attributed to sessions through their pods),
// every node's agent state (up, last seen, why not), and the sessions whose
// node went unobserved. A node seen once stays reported while it is missing.
// Pure apart from its memory of nodes between cycles; not thread-safe (the
// sampler thread owns it).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "model/gpu_snapshot.h"
#include "runtime/pod_cache.h"
#include "telemetry/agent_wire.h"

namespace sandman {

// One node's agent, as its pod says where to reach it.
struct AgentTarget {
  std::string node;     // spec.nodeName
  std::string pod;      // metadata.name
  std::string address;  // "ip:port" ("[ip]:port" for IPv6); empty: not reachable, see problem
  std::string problem;  // why there is no address ("pod Pending", "no pod IP", "bad port annotation ...")
};

// Agent pods -> one target per node: a Running pod with an IP, Ready ones
// first (a rolling update briefly runs two), the port from the pod's
// annotation or default_port. Pods on no node are left out.
std::vector<AgentTarget> agentTargets(const std::vector<PodView>& pods, const std::string& port_annotation,
                                      int default_port);

// What one poll of one agent gave.
struct AgentPoll {
  std::optional<AgentSnapshot> snapshot;  // absent: error says why
  std::string error;
};

// A session pod of this daemon, for attribution.
struct SessionPodRef {
  std::string session_id;  // from the pod's name sess-<id>
  std::string uid;
  std::string node;  // empty until scheduled
};

// Session pods (the session PodCache's pods) -> refs; pods not named
// <prefix><id> are left out.
std::vector<SessionPodRef> sessionPodRefs(const std::vector<PodView>& pods, const std::string& prefix = "sess-");

struct AgentFleetOptions {
  // An agent that answers with the same sample for this long is stuck (its
  // sampler or NVML hangs): its node counts as missing. Measured on the
  // daemon's clock between answers, so node clocks may differ.
  Millis stale_after{std::chrono::seconds(30)};
  // A node with neither an agent pod nor a session pod for this long is
  // forgotten (scaled away); until then it is reported missing.
  Millis forget_after{std::chrono::hours(1)};
};

class AgentFleet {
 public:
  explicit AgentFleet(AgentFleetOptions options = {}) : options_(options) {}

  // polls: by node, for targets with an address (a target without one, or
  // without a poll, counts as missing).
  TelemetrySnapshot merge(const std::vector<AgentTarget>& targets, const std::map<std::string, AgentPoll>& polls,
                          const std::vector<SessionPodRef>& sessions, TimePoint now);

 private:
  struct Known {
    TimePoint last_listed{};              // last cycle an agent or session pod named the node
    std::optional<TimePoint> last_seen;   // last fresh answer
    int64_t last_taken_ms = -1;           // the agent's last sample time (its clock)
    TimePoint taken_changed_at{};         // when (our clock) that last moved
  };
  const AgentFleetOptions options_;
  std::map<std::string, Known> nodes_;
};

}  // namespace sandman
