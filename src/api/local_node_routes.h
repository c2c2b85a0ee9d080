// LocalNodeRoutes: /gpu-nodes on the Docker backend, where the local host is
// the one node: its GPUs from the latest telemetry snapshot (the GPU
// backend), its metadata and status (active, maintenance, drained) in the
// store. GET list/get/recent, PUT metadata, PATCH status; POST and DELETE
// answer 400 (a single host has one node, which cannot be removed). The
// session create asks takesSessions() through SessionManager's host check.
// Thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/http_util.h"
#include "api/list_query.h"
#include "api/node_listing.h"
#include "common/clock.h"
#include "store/node_meta_store.h"
#include "store/store.h"
#include "telemetry/sampler.h"

namespace sandman {

// The record of a node that has none yet: active, filed under `cluster`.
NodeMeta defaultNodeMeta(const std::string& name, const std::string& cluster);
// Metadata and status as the node JSON carries them (both backends).
void addNodeMetaJson(nlohmann::json& out, const NodeMeta& m, bool stored);
// The refusal a create gets on a node in maintenance or drained.
Error nodeRefusal(const NodeMeta& m);

class LocalNodeRoutes final : public RouteModule {
 public:
  LocalNodeRoutes(std::string host, NodeMetaStore& meta, Store& store, const TelemetrySampler& sampler,
                  const Clock& clock)
      : host_(std::move(host)), meta_(meta), store_(store), sampler_(sampler), clock_(clock) {}
  void registerRoutes(Router& router) override;

  const std::string& host() const { return host_; }
  // ok when the host takes new sessions; else kConflict naming it and its status.
  Status takesSessions();
  // Every node as GET /gpu-nodes shows it (one here).
  std::vector<nlohmann::json> nodes();
  // The node's JSON; detail adds its GPUs and the sessions still running.
  Result<nlohmann::json> nodeJson(bool detail);
  void setChangeListener(NodeChangeListener f) { on_change_ = std::move(f); }

 private:
  Result<NodeMeta> meta(bool* stored);
  void list(const ApiRequest& req, ApiResponse& res);
  void get(const ApiRequest& req, ApiResponse& res);
  void recent(const ApiRequest& req, ApiResponse& res);
  void update(const ApiRequest& req, ApiResponse& res);
  void setStatus(const ApiRequest& req, ApiResponse& res);
  void refuseCreate(ApiResponse& res) const;
  void refuseDelete(const ApiRequest& req, ApiResponse& res) const;
  // kNotFound unless the path names this host.
  Status isHost(const ApiRequest& req) const;

  const std::string host_;
  NodeMetaStore& meta_;
  Store& store_;
  const TelemetrySampler& sampler_;
  const Clock& clock_;
  const CursorCodec cursors_;
  NodeChangeListener on_change_;
};

// GET /gpu-nodes/recent: the node changes (status, metadata, MIG) newest
// first, ?hours= (default 24, at most 744) and ?limit=.
Result<nlohmann::json> recentNodeChanges(const ApiRequest& req, NodeMetaStore& meta, const Clock& clock);

}  // namespace sandman
