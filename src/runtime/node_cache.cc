#include "runtime/node_cache.h"

#include <charconv>

namespace sandman {
namespace {

using json = nlohmann::json;
using watch_cache_detail::str;

const json& field(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

bool startsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::map<std::string, int64_t> gpuResources(const json& list) {
  std::map<std::string, int64_t> out;
  if (!list.is_object()) return out;
  for (const auto& [k, v] : list.items()) {
    if (!startsWith(k, "nvidia.com/") || !v.is_string()) continue;
    int64_t n = parseCount(v.get<std::string>());
    if (n >= 0) out.emplace(k, n);
  }
  return out;
}

size_t stringBytes(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

int64_t labelNumber(const std::map<std::string, std::string>& labels, const std::string& key) {
  auto it = labels.find(key);
  if (it == labels.end()) return 0;
  int64_t n = parseCount(it->second);
  return n < 0 ? 0 : n;
}

}  // namespace

int64_t parseCount(const std::string& q) {
  if (q.empty()) return -1;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(q.data(), q.data() + q.size(), n);
  if (ec != std::errc() || n < 0) return -1;
  std::string suffix(end, q.data() + q.size());
  if (suffix.empty()) return n;
  if (suffix == "k") return n * 1000;
  if (suffix == "M") return n * 1000000;
  return -1;  // fractions ("500m") are not whole devices
}

NodeView nodeViewFromJson(const json& node) {
  NodeView v;
  const json& meta = field(node, "metadata");
  v.name = str(meta, "name");
  v.uid = str(meta, "uid");
  v.resource_version = str(meta, "resourceVersion");
  const json& labels = field(meta, "labels");
  if (labels.is_object()) {
    for (const auto& [k, val] : labels.items()) {
      if (startsWith(k, "nvidia.com/") && val.is_string()) v.gpu_labels.emplace(k, val.get<std::string>());
    }
  }
  auto label = [&](const std::string& k) {
    auto it = v.gpu_labels.find(k);
    return it == v.gpu_labels.end() ? std::string() : it->second;
  };
  v.product = label(kGpuProductLabel);
  v.gpu_count = labelNumber(v.gpu_labels, "nvidia.com/gpu.count");
  v.gpu_memory_mib = labelNumber(v.gpu_labels, "nvidia.com/gpu.memory");
  v.mig_strategy = label("nvidia.com/mig.strategy");
  v.mig_capable = label("nvidia.com/mig.capable") == "true";
  v.mig_config = label(kMigConfigLabel);
  v.mig_config_state = label(kMigConfigStateLabel);
  // nvidia.com/mig-<profile>.<attribute>: the profile is everything before the last
  // attribute (profiles hold dots themselves: "1g.10gb").
  for (const auto& [k, val] : v.gpu_labels) {
    if (!startsWith(k, "nvidia.com/mig-")) continue;
    std::string rest = k.substr(std::string("nvidia.com/mig-").size());
    for (const char* attr : {".count", ".memory", ".multiprocessors", ".slices.gi"}) {
      const std::string a = attr;
      if (rest.size() <= a.size() || rest.compare(rest.size() - a.size(), a.size(), a) != 0) continue;
      MigProfileLabels& p = v.mig_profiles[rest.substr(0, rest.size() - a.size())];
      int64_t n = std::max<int64_t>(0, parseCount(val));
      if (a == ".count") p.count = n;
      else if (a == ".memory") p.memory_mib = n;
      else if (a == ".multiprocessors") p.multiprocessors = n;
      else p.slices_gi = n;
      break;
    }
  }
  const json& annotations = field(meta, "annotations");
  if (annotations.is_object()) {
    for (const auto& [k, val] : annotations.items()) {
      if (startsWith(k, "sandman.io/") && val.is_string()) v.sandman_annotations.emplace(k, val.get<std::string>());
    }
  }
  const json& spec = field(node, "spec");
  const json& unsched = field(spec, "unschedulable");
  v.unschedulable = unsched.is_boolean() && unsched.get<bool>();
  const json& taints = field(spec, "taints");
  if (taints.is_array()) {
    for (const auto& t : taints) v.taints.push_back({str(t, "key"), str(t, "value"), str(t, "effect")});
  }
  const json& status = field(node, "status");
  v.capacity = gpuResources(field(status, "capacity"));
  v.allocatable = gpuResources(field(status, "allocatable"));
  const json& conditions = field(status, "conditions");
  if (conditions.is_array()) {
    for (const auto& c : conditions) {
      if (str(c, "type") != "Ready") continue;
      v.ready = str(c, "status") == "True";
      v.ready_reason = str(c, "reason");
      v.ready_message = str(c, "message");
    }
  }
  return v;
}

bool isGpuNode(const NodeView& n) { return !n.capacity.empty() || !n.gpu_labels.empty(); }

size_t approximateBytes(const NodeView& n) {
  constexpr size_t kNode = 4 * sizeof(void*);
  size_t b = sizeof(NodeView);
  for (const std::string* s : {&n.name, &n.uid, &n.resource_version, &n.product, &n.mig_strategy, &n.mig_config,
                               &n.mig_config_state, &n.ready_reason, &n.ready_message}) {
    b += stringBytes(*s);
  }
  for (const auto& [k, v] : n.sandman_annotations) b += kNode + sizeof(std::pair<const std::string, std::string>) + stringBytes(k) + stringBytes(v);
  for (const auto& [k, v] : n.gpu_labels) b += kNode + sizeof(std::pair<const std::string, std::string>) + stringBytes(k) + stringBytes(v);
  for (const auto& [k, v] : n.mig_profiles) b += kNode + sizeof(std::pair<const std::string, MigProfileLabels>) + stringBytes(k);
  for (const auto* m : {&n.capacity, &n.allocatable}) {
    for (const auto& [k, v] : *m) b += kNode + sizeof(std::pair<const std::string, int64_t>) + stringBytes(k);
  }
  for (const auto& t : n.taints) b += sizeof(NodeTaint) + stringBytes(t.key) + stringBytes(t.value) + stringBytes(t.effect);
  return b;
}

std::string untoleratedTaint(const NodeView& n) {
  for (const auto& t : n.taints) {
    if (t.effect != "NoSchedule" && t.effect != "NoExecute") continue;
    if (t.key == "nvidia.com/gpu" && t.effect == "NoSchedule") continue;
    return t.key + (t.value.empty() ? "" : "=" + t.value) + ":" + t.effect;
  }
  return "";
}

NodeCache::NodeCache(KubeClient& client, std::string label_selector)
    : WatchCache<NodeView>(client, "/api/v1/nodes", std::move(label_selector), "node", nodeViewFromJson,
                           [](const NodeView& n) { return approximateBytes(n); }) {}

}  // namespace sandman
