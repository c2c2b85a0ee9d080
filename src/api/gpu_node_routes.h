// GpuNodeRoutes: the cluster's GPU nodes on the Kubernetes backend —
// GET /gpu-nodes, /gpu-nodes/{name}, the cluster-wide answers behind /gpus,
// /gpus/profiles and /gpus/available, and MIG layout proposals
// (GET/POST/DELETE /gpu-nodes/{name}/mig-layout, POST .../approve, GET /mig-layouts).
// Sandman's metadata and status of a node (PUT /gpu-nodes/{name}, PATCH
// .../status) are its own sandman.io/ annotations on the Node object; a node
// in maintenance or drained is held like a MIG layout change (a nodeAffinity
// NotIn on new session pods). Reads the node and pod watch caches; writes
// only annotations. Thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/http_util.h"
#include "api/list_query.h"
#include "api/node_listing.h"
#include "common/clock.h"
#include "core/mig_layouts.h"
#include "runtime/node_cache.h"
#include "runtime/node_inventory.h"
#include "runtime/pod_cache.h"
#include "store/mig_layout_store.h"
#include "store/node_meta_store.h"

namespace sandman {

// JSON views (pure; exposed for unit tests).
nlohmann::json gpuNodeJson(const ClusterNode& node, bool detail);
nlohmann::json fitsJson(const std::vector<ResourceFit>& fits);
// view: "inventory" (/gpus), "profiles" (/gpus/profiles), "available" (/gpus/available).
nlohmann::json clusterGpusJson(const std::vector<ClusterNode>& nodes, const std::string& view);
nlohmann::json migProposalJson(const MigLayoutProposal& p);
// Sandman's record of a cluster node, from its sandman.io/ annotations;
// *stored: whether any is set.
NodeMeta nodeMetaFromAnnotations(const NodeView& n, bool* stored);
// The merge patch that writes `m` as annotations (empty values removed).
nlohmann::json nodeMetaPatch(const NodeMeta& m);
// Nodes in maintenance or drained, with why (the holds a create respects).
NodeHolds maintenanceHolds(const std::vector<NodeView>& nodes);

class GpuNodeRoutes final : public RouteModule {
 public:
  // layouts may be null (no MIG layout routes then).
  // client, meta and clock may be null: no metadata or status edits then.
  GpuNodeRoutes(const NodeCache& nodes, const PodCache& pods, MigLayouts* layouts, KubeClient* client = nullptr,
                NodeMetaStore* meta = nullptr, const Clock* clock = nullptr)
      : nodes_(nodes), pods_(pods), layouts_(layouts), client_(client), meta_(meta), clock_(clock) {}
  void registerRoutes(Router& router) override;
  // The body of /gpus, /gpus/profiles or /gpus/available for the cluster.
  nlohmann::json gpus(const std::string& view) const;
  // Every GPU node as GET /gpu-nodes lists it (the dashboard's clusters).
  std::vector<nlohmann::json> nodesJson() const;
  // Node names Sandman keeps new sessions off: MIG layout holds and maintenance.
  NodeHolds refusedNodes() const;
  void setChangeListener(NodeChangeListener f) { on_change_ = std::move(f); }

 private:
  std::vector<ClusterNode> snapshot() const;
  void list(const ApiRequest& req, ApiResponse& res) const;
  void update(const ApiRequest& req, ApiResponse& res);
  void setStatus(const ApiRequest& req, ApiResponse& res);
  void recent(const ApiRequest& req, ApiResponse& res);
  Status patchMeta(const NodeMeta& m, const NodeEvent& event);
  void get(const ApiRequest& req, ApiResponse& res) const;
  void proposals(const ApiRequest& req, ApiResponse& res) const;
  void allProposals(ApiResponse& res) const;
  void propose(const ApiRequest& req, ApiResponse& res);
  void approve(const ApiRequest& req, ApiResponse& res);
  void release(const ApiRequest& req, ApiResponse& res);

  const NodeCache& nodes_;
  const PodCache& pods_;
  MigLayouts* layouts_;
  KubeClient* client_;
  NodeMetaStore* meta_;
  const Clock* clock_;
  const CursorCodec cursors_;
  NodeChangeListener on_change_;
};

}  // namespace sandman
