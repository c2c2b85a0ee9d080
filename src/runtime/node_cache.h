// NodeCache: the cluster's Node objects, kept current by the same list+watch
// reflector as the session pods, each held as a compact NodeView of what GPU
// scheduling needs (GPU feature discovery labels, GPU capacity, Ready, cordon,
// taints, the GPU operator's MIG layout labels). Every node is listed; GPU
// nodes are those with nvidia.com/ capacity or labels. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/kube_client.h"
#include "runtime/watch_cache.h"

namespace sandman {

// The GPU operator's MIG labels and GFD's.
inline constexpr const char* kMigConfigLabel = "nvidia.com/mig.config";
inline constexpr const char* kMigConfigStateLabel = "nvidia.com/mig.config.state";
inline constexpr const char* kGpuProductLabel = "nvidia.com/gpu.product";

struct NodeTaint {
  std::string key, value, effect;  // effect: NoSchedule, PreferNoSchedule, NoExecute
};

// One MIG profile as GFD labels it under the mixed strategy (nvidia.com/mig-<profile>.*).
struct MigProfileLabels {
  int64_t count = 0;
  int64_t memory_mib = 0;
  int64_t multiprocessors = 0;
  int64_t slices_gi = 0;
};

struct NodeView {
  std::string name, uid, resource_version;
  // GFD, parsed (nvidia.com/gpu.product, gpu.count, gpu.memory, mig.strategy, mig.capable).
  std::string product;
  int64_t gpu_count = 0;
  int64_t gpu_memory_mib = 0;
  std::string mig_strategy;  // none, single, mixed; empty: no GFD
  bool mig_capable = false;
  std::map<std::string, MigProfileLabels> mig_profiles;  // "1g.10gb" -> its labels
  std::string mig_config, mig_config_state;             // the GPU operator's MIG manager
  // Every nvidia.com/ label, as read (detail views show them).
  std::map<std::string, std::string> gpu_labels;
  // Per GPU resource (nvidia.com/gpu, nvidia.com/mig-*): whole units.
  std::map<std::string, int64_t> capacity, allocatable;
  bool ready = false;  // condition Ready=True
  std::string ready_reason, ready_message;
  bool unschedulable = false;  // spec.unschedulable (kubectl cordon)
  std::vector<NodeTaint> taints;
  // Sandman's own annotations (sandman.io/...): an admin's metadata and
  // status for the node (maintenance keeps sessions off it).
  std::map<std::string, std::string> sandman_annotations;
};

NodeView nodeViewFromJson(const nlohmann::json& node);
bool isGpuNode(const NodeView& node);
size_t approximateBytes(const NodeView& node);
// A whole-number resource quantity ("7", "2k"); -1 when it is not one.
int64_t parseCount(const std::string& quantity);
// A taint session pods do not tolerate (they tolerate nvidia.com/gpu:NoSchedule only): its "key=value:effect".
std::string untoleratedTaint(const NodeView& node);

class NodeCache : public WatchCache<NodeView> {
 public:
  // label_selector: empty lists every node (GPU or not).
  explicit NodeCache(KubeClient& client, std::string label_selector = "");
};

}  // namespace sandman
