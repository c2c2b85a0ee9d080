// WorkspaceRoutes: disk use of workspaces — GET /workspaces (every workspace
// with its usage and quota state, the quota setting, the free space of the
// state and workspace file systems) and GET /users/{user}/workspace (one).
// Figures come from the background monitor; no request walks a disk.
// Thread-safe (its sources are).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "api/http_util.h"
#include "telemetry/disk_readings.h"
#include "workspace/workspace_usage.h"

namespace sandman {

// The quota and free-space settings as the daemon applied them at start-up.
struct DiskPolicyView {
  uint64_t quota_bytes = 0;  // --workspace-quota; 0: none
  bool quota_enforced = false;
  std::string quota_note;  // why it is not enforced (empty when it is, or there is none)
  std::string min_free_disk;  // "1 GiB", "5%", "off"
};

class WorkspaceRoutes final : public RouteModule {
 public:
  WorkspaceRoutes(const WorkspaceUsageMonitor& monitor, const DiskReader& disk, DiskPolicyView policy)
      : monitor_(monitor), disk_(disk), policy_(std::move(policy)) {}
  void registerRoutes(Router& router) override;

  // The JSON of one workspace (what both routes return per workspace).
  static nlohmann::json workspaceJson(const WorkspaceUsage& u, const std::string& root, const DiskPolicyView& p);

 private:
  void list(ApiResponse& res);
  void one(const ApiRequest& req, ApiResponse& res);

  const WorkspaceUsageMonitor& monitor_;
  const DiskReader& disk_;
  const DiskPolicyView policy_;
};

}  // namespace sandman
