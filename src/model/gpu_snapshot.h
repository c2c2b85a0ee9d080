// TelemetrySnapshot: one sample of every GPU and MIG instance, attributed to
// the session and user holding it. The sampler produces one per interval;
// /metrics, history, alerts and the idle policy all read the same snapshot.
// Plain value types; a published snapshot is immutable (SnapshotPtr).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"

namespace sandman {

// One physical GPU or one MIG instance.
struct DeviceReading {
  std::string uuid;        // "GPU-..." or "MIG-..."
  std::string gpu_uuid;    // the physical GPU (== uuid for a GPU)
  int gpu_index = 0;       // NVML index of the physical GPU
  std::string model_name;  // "NVIDIA A100-SXM4-80GB"
  bool is_mig = false;
  bool mig_enabled = false;  // GPU rows: MIG mode is on (its own utilisation is then unknown)
  std::string profile;       // MIG rows: "1g.10gb"
  int gpu_instance_id = -1;  // MIG rows
  int compute_slices = 0;    // MIG rows: the profile's share of the GPU's 7 (4 on A30)
  // Absent when the driver does not report it (utilisation of a MIG-mode GPU,
  // per-instance utilisation without GPM). MIG rows carry their parent's
  // temperature; power is per GPU only.
  std::optional<double> utilization_pct;
  std::optional<double> memory_utilization_pct;
  std::optional<double> temperature_c;
  std::optional<double> power_w;
  std::optional<double> power_limit_w;
  uint64_t memory_used_mib = 0;
  uint64_t memory_total_mib = 0;
  int compute_processes = 0;  // running CUDA processes on this device
  // Holder, when an active session holds this device (for a MIG-mode GPU row:
  // empty; its instances carry the holders).
  std::string session_id;
  std::string user_id;
  // On a cluster: the node the device is on (the agent's --node), the pids
  // of its CUDA processes (host pid namespace) and the pod they belong to
  // (its UID, from the process's cgroup). Empty on a single host.
  std::string node;
  std::vector<unsigned> pids;
  std::string pod_uid;
};

// One node's agent, as the control daemon last reached it (cluster only).
struct NodeReading {
  std::string node;
  std::string agent_pod;   // the agent's pod name; empty once its pod is gone
  std::string address;     // ip:port polled
  bool up = false;         // this cycle's poll answered with a snapshot
  std::optional<TimePoint> last_seen;  // the last answered poll
  std::string error;       // why it is not up ("no agent pod", "connect ...", "HTTP 401")
  int gpus = 0;            // devices the node contributed this cycle
  int instances = 0;
};

// Space on a file system Sandman writes to.
struct FilesystemReading {
  std::string name;  // "state", "workspace", or "state+workspace" when both are one file system
  std::string path;
  uint64_t size_bytes = 0;
  uint64_t avail_bytes = 0;
};

// One user's workspace, as last measured (in the background, not per sample).
struct WorkspaceReading {
  std::string user_id;
  uint64_t used_bytes = 0;
  uint64_t quota_bytes = 0;  // --workspace-quota; 0: none
  bool quota_enforced = false;
};

struct DiskReadings {
  std::vector<FilesystemReading> filesystems;
  std::vector<WorkspaceReading> workspaces;  // measured ones, by user id
};

// One monthly budget as last evaluated (cost/budgets), for the alert engine.
struct BudgetReading {
  std::string budget;  // "team/lab"
  std::string scope;   // user | team | project
  std::string name;
  double limit_usd = 0;
  double used_usd = 0;      // month to date, running sessions accrued
  double forecast_usd = 0;  // the month's end at the recent daily rate
};

struct TelemetrySnapshot {
  TimePoint taken_at{};
  // The backend failed this cycle (NVML error, driver gone): the device lists
  // are empty and backend_error says why.
  bool backend_ok = true;
  std::string backend_error;
  bool mig_dynamic = false;  // instances without a holder are leaks in dynamic mode
  std::vector<DeviceReading> gpus;       // one per physical GPU, by index
  std::vector<DeviceReading> instances;  // MIG instances, by GPU index then instance id
  std::vector<std::string> lost_gpus;    // UUIDs seen by an earlier sample, absent now
  double sample_seconds = 0;             // how long this cycle took (backend + attribution)
  DiskReadings disk;                     // empty when the sampler has no disk source
  // Cluster (sandman serve --backend kubernetes): devices come from the node
  // agents; `nodes` says which answered. A node that did not has no devices
  // here (old readings would mislead alerts and the idle policy), and the
  // sessions running on it are listed as unobserved: their busy-ness is
  // unknown this cycle, not idle.
  bool cluster = false;
  std::vector<NodeReading> nodes;
  std::vector<std::string> unobserved_sessions;
  std::vector<BudgetReading> budgets;    // empty when there is no budget source
};

using SnapshotPtr = std::shared_ptr<const TelemetrySnapshot>;

}  // namespace sandman
