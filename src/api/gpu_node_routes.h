// GpuNodeRoutes: the cluster's GPU nodes on the Kubernetes backend —
// GET /gpu-nodes, /gpu-nodes/{name}, the cluster-wide answers behind /gpus,
// /gpus/profiles and /gpus/available, and MIG layout proposals
// (GET/POST/DELETE /gpu-nodes/{name}/mig-layout, POST .../approve, GET /mig-layouts).
// Reads the node and pod watch caches only. Thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/http_util.h"
#include "core/mig_layouts.h"
#include "runtime/node_cache.h"
#include "runtime/node_inventory.h"
#include "runtime/pod_cache.h"
#include "store/mig_layout_store.h"

namespace sandman {

// JSON views (pure; exposed for unit tests).
nlohmann::json gpuNodeJson(const ClusterNode& node, bool detail);
nlohmann::json fitsJson(const std::vector<ResourceFit>& fits);
// view: "inventory" (/gpus), "profiles" (/gpus/profiles), "available" (/gpus/available).
nlohmann::json clusterGpusJson(const std::vector<ClusterNode>& nodes, const std::string& view);
nlohmann::json migProposalJson(const MigLayoutProposal& p);

class GpuNodeRoutes final : public RouteModule {
 public:
  // layouts may be null (no MIG layout routes then).
  GpuNodeRoutes(const NodeCache& nodes, const PodCache& pods, MigLayouts* layouts)
      : nodes_(nodes), pods_(pods), layouts_(layouts) {}
  void registerRoutes(Router& router) override;
  // The body of /gpus, /gpus/profiles or /gpus/available for the cluster.
  nlohmann::json gpus(const std::string& view) const;

 private:
  std::vector<ClusterNode> snapshot() const;
  void list(ApiResponse& res) const;
  void get(const ApiRequest& req, ApiResponse& res) const;
  void proposals(const ApiRequest& req, ApiResponse& res) const;
  void allProposals(ApiResponse& res) const;
  void propose(const ApiRequest& req, ApiResponse& res);
  void approve(const ApiRequest& req, ApiResponse& res);
  void release(const ApiRequest& req, ApiResponse& res);

  const NodeCache& nodes_;
  const PodCache& pods_;
  MigLayouts* layouts_;
};

}  // namespace sandman
