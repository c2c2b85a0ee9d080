#include "runtime/node_inventory.h"

#include <algorithm>

namespace sandman {

std::string migProfileOf(const std::string& resource) {
  const std::string prefix = "nvidia.com/mig-";
  return resource.rfind(prefix, 0) == 0 ? resource.substr(prefix.size()) : "";
}

std::vector<ClusterNode> clusterNodes(const std::vector<NodeView>& nodes, const std::vector<PodView>& pods,
                                      const NodeHolds& holds) {
  std::map<std::string, ClusterNode> by_name;
  for (const auto& n : nodes) {
    if (!isGpuNode(n)) continue;
    ClusterNode c;
    c.node = n;
    if (!n.ready) {
      c.refusal = "not Ready" + (n.ready_reason.empty() ? std::string() : " (" + n.ready_reason + ")");
    } else if (auto h = holds.find(n.name); h != holds.end()) {
      c.refusal = h->second;
    } else if (n.unschedulable) {
      c.refusal = "cordoned (spec.unschedulable)";
    } else if (n.mig_config_state == "pending") {
      c.refusal = "the GPU operator is applying MIG layout " + n.mig_config;
    } else if (auto t = untoleratedTaint(n); !t.empty()) {
      c.refusal = "tainted " + t;
    }
    by_name.emplace(n.name, std::move(c));
  }
  for (const auto& p : pods) {
    if (p.node_name.empty() || p.phase == "Succeeded" || p.phase == "Failed") continue;
    auto it = by_name.find(p.node_name);
    if (it == by_name.end()) continue;
    auto res = p.annotations.find("sandman.io/gpu-resource");
    if (res != p.annotations.end() && !res->second.empty()) it->second.in_use[res->second] += 1;
    auto sid = p.labels.find("sandman.io/session");
    it->second.sessions.push_back(sid != p.labels.end() ? sid->second : p.name);
  }
  std::vector<ClusterNode> out;
  out.reserve(by_name.size());
  for (auto& [name, c] : by_name) {
    std::sort(c.sessions.begin(), c.sessions.end());
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<ResourceFit> fitsNow(const std::vector<ClusterNode>& nodes) {
  std::map<std::string, ResourceFit> by_resource;
  for (const auto& c : nodes) {
    for (const auto& [res, alloc] : c.node.allocatable) {
      ResourceFit& f = by_resource[res];
      f.resource = res;
      f.profile = migProfileOf(res);
      if (!c.refusal.empty()) continue;
      auto used = c.in_use.find(res);
      int64_t room = alloc - (used == c.in_use.end() ? 0 : used->second);
      if (room <= 0) continue;
      f.fits += room;
      f.nodes[c.node.name] = room;
      f.products[c.node.name] = c.node.product;
    }
  }
  std::vector<ResourceFit> out;
  for (auto& [_, f] : by_resource) out.push_back(std::move(f));
  return out;
}

}  // namespace sandman
