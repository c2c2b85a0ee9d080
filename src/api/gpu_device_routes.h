// GpuDeviceRoutes: the documents' GPU resources — GET /gpu/overview (totals
// by the documents' field names), GET /gpu/devices?nodeName= (every GPU with
// its MIG instances and holders, from the latest telemetry snapshot), and
// POST /gpu/devices/{id}/mig: lay out MIG instances on one GPU of this host
// in static mode, through the GPU backend, checked against the GPU's
// profiles and placements and refused (409) where a session holds a slice it
// would touch. On the Kubernetes backend layouts go through the MIG layout
// proposals instead (400 pointing there). Thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/http_util.h"
#include "api/list_query.h"
#include "common/clock.h"
#include "core/gpu_leases.h"
#include "store/node_meta_store.h"
#include "store/store.h"
#include "telemetry/sampler.h"

namespace sandman {

// One instance a MIG request asks for; placement_start -1: the first free one.
struct MigRequestItem {
  std::string profile;
  int placement_start = -1;
};
struct MigRequest {
  std::vector<MigRequestItem> items;
  bool replace = false;  // destroy the GPU's present instances first
};
// The seeds' form (["H100_2G20GB", "1g.10gb"]) or
// {"profiles": [...]} / {"instances": [{"profile", "placement_start"?}], "replace"?}.
Result<MigRequest> parseMigRequest(const std::string& body);
// "H100_2G20GB" -> "2g.20gb"; "1g.10gb" unchanged; "A100_1G10GB_ME" -> "1g.10gb+me".
std::string normalizeMigProfile(const std::string& name);

struct MigPlanItem {
  int profile_id = 0;
  std::string profile;
  int placement_start = 0;
  int placement_size = 0;
};
struct MigPlan {
  std::vector<MigInstance> destroy;  // present instances replaced
  std::vector<MigPlanItem> create;
};
// Checks the request against the GPU and what sessions hold (pure; exposed
// for tests): kInvalid for a profile or placement the GPU does not offer,
// kConflict for a slice a session holds or a placement taken.
Result<MigPlan> planMigLayout(const GpuInfo& gpu, const MigRequest& req, const std::vector<HeldSlot>& held);

// /gpu/overview from a snapshot and the count of sessions holding a device.
nlohmann::json gpuOverviewJson(const TelemetrySnapshot* snap, int64_t allocations);

class GpuDeviceRoutes final : public RouteModule {
 public:
  // leases null (Kubernetes): no MIG creation here. meta may be null.
  GpuDeviceRoutes(const TelemetrySampler& sampler, Store& store, const GpuLeases* leases, std::string local_node,
                  NodeMetaStore* meta, const Clock& clock, bool kubernetes)
      : sampler_(sampler), store_(store), leases_(leases), local_node_(std::move(local_node)), meta_(meta),
        clock_(clock), kubernetes_(kubernetes) {}
  void registerRoutes(Router& router) override;

 private:
  void overview(ApiResponse& res) const;
  void devices(const ApiRequest& req, ApiResponse& res) const;
  void createMig(const ApiRequest& req, ApiResponse& res);

  const TelemetrySampler& sampler_;
  Store& store_;
  const GpuLeases* leases_;
  const std::string local_node_;
  NodeMetaStore* meta_;
  const Clock& clock_;
  const bool kubernetes_;
  const CursorCodec cursors_;
};

}  // namespace sandman
