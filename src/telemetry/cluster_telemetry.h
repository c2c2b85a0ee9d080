// ClusterTelemetry: telemetry of a Kubernetes cluster for `sandman serve
// --backend kubernetes`. It finds the node agents through the API server (a
// watch cache of the agent pods: label selector, one per node, pod IP + port
// annotation), polls each one's snapshot in parallel every sampler cycle, and
// merges the answers (AgentFleet) into the snapshot the sampler publishes. No
// membership protocol of its own: the agent DaemonSet's pods are the list.
// Thread-safe: collect() runs on the sampler's thread only; start/stop anywhere.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "common/http_client.h"
#include "common/result.h"
#include "runtime/kube_client.h"
#include "runtime/pod_cache.h"
#include "telemetry/agent_fleet.h"

namespace sandman {

struct ClusterTelemetryOptions {
  std::string agent_namespace = "sandman-agents";
  std::string agent_selector = "app.kubernetes.io/name=sandman,app.kubernetes.io/component=agent";
  std::string port_annotation = "sandman.io/agent-port";
  int default_port = 9410;
  std::string token;  // sent as a bearer token when set (--agent-token-file)
  Millis poll_timeout{2000};
  int max_parallel = 16;  // polls in flight at once
  AgentFleetOptions fleet;
};

class ClusterTelemetry {
 public:
  // address ("ip:port") -> the agent's snapshot body, or why not. The default
  // is HTTP GET http://<address>/api/v1/agent/snapshot; tests pass their own.
  using Fetch = std::function<Result<std::string>(const std::string& address)>;

  // sessions: the runtime's session pod cache (attribution: pod UID -> session).
  ClusterTelemetry(ClusterTelemetryOptions options, KubeClient& client, const PodCache& sessions,
                   const Clock& clock, Fetch fetch = nullptr);
  ~ClusterTelemetry();
  ClusterTelemetry(const ClusterTelemetry&) = delete;
  ClusterTelemetry& operator=(const ClusterTelemetry&) = delete;

  // Starts the agent pod cache and waits for its first list (a cluster with
  // no agents yet is fine; an API server that refuses the list is not).
  Status start(Millis sync_timeout);
  void stop();
  // One cycle: poll every agent, merge. The sampler's source.
  TelemetrySnapshot collect();
  const PodCache& agents() const { return *agents_; }

 private:
  Result<std::string> httpFetch(const std::string& address) const;

  const ClusterTelemetryOptions options_;
  const PodCache& sessions_;
  const Clock& clock_;
  Fetch fetch_;
  std::unique_ptr<PodCache> agents_;
  std::mutex mu_;     // one collect() at a time
  AgentFleet fleet_;  // guarded by mu_
  std::map<std::string, bool> was_up_;  // guarded by mu_: node -> up last cycle, for logging transitions
  HttpClient http_;
};

}  // namespace sandman
