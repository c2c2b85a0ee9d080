// The cluster's GPU nodes as Sandman schedules onto them: each node's GPU
// resources with what this daemon's session pods hold there, and whether a new
// session may land on it now; then, per resource, how many more sessions fit
// and where. Pure functions over the node and pod caches' views; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/node_cache.h"
#include "runtime/pod_cache.h"

namespace sandman {

struct ClusterNode {
  NodeView node;
  // This daemon's session pods bound to the node and not finished, per GPU
  // resource (from their sandman.io/gpu-resource annotation: one unit each).
  std::map<std::string, int64_t> in_use;
  std::vector<std::string> sessions;  // their session ids
  // Why no new session is placed there now ("" when one may be): not Ready,
  // cordoned, a taint sessions do not tolerate, a MIG layout change.
  std::string refusal;
};

// Node name -> why Sandman itself holds it (a MIG layout change).
using NodeHolds = std::map<std::string, std::string>;

// GPU nodes only (isGpuNode), by name.
std::vector<ClusterNode> clusterNodes(const std::vector<NodeView>& nodes, const std::vector<PodView>& pods,
                                      const NodeHolds& holds);

struct ResourceFit {
  std::string resource;  // "nvidia.com/mig-1g.10gb", "nvidia.com/gpu"
  std::string profile;   // "1g.10gb"; empty for nvidia.com/gpu
  int64_t fits = 0;      // more sessions that fit now, all nodes together
  std::map<std::string, int64_t> nodes;  // node -> how many there (only nodes with room)
  std::map<std::string, std::string> products;  // node -> its GPU model (what gpu_product selects)
};

// What fits now, per resource any GPU node offers: allocatable minus this
// daemon's sessions, on nodes that take sessions now. Other workloads' pods
// are not seen (no cluster-wide pod read right), so it is an upper bound.
std::vector<ResourceFit> fitsNow(const std::vector<ClusterNode>& nodes);

// "nvidia.com/mig-1g.10gb" -> "1g.10gb"; "" for anything else.
std::string migProfileOf(const std::string& resource);

}  // namespace sandman
