// GpuBackend: the GPUs of this host as core sees them (NVML in production,
// the same loader over the NVML simulator in tests): inventory, MIG layout,
// telemetry, and creating/destroying MIG instances. Never changes MIG mode.
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace sandman {

// One GPU-instance profile of a GPU, as NVML reports it.
struct MigProfile {
  int profile_id = 0;       // NVML info.id (what nvidia-smi -cgi takes), e.g. 19 for 1g.* on A100
  std::string name;         // "1g.10gb", "1g.10gb+me", "3g.40gb"
  int compute_slices = 0;   // info.sliceCount
  int memory_slices = 0;    // placement size (all placements of a profile share it)
  uint64_t memory_mib = 0;  // info.memorySizeMB
  int instance_count = 0;   // info.instanceCount: most instances of this profile a GPU can hold
  std::vector<int> placement_starts;  // every valid placement start (memory slice index)
};

// One MIG device = one GPU instance with its full-size compute instance.
struct MigInstance {
  std::string uuid;  // "MIG-<uuid>" of the compute instance's MIG device; empty for a GI without CI
  int gpu_instance_id = 0;
  int compute_instance_id = 0;
  int profile_id = 0;
  std::string profile_name;
  int placement_start = 0;
  int placement_size = 0;
  uint64_t memory_total_mib = 0;
  uint64_t memory_used_mib = 0;
  // Busy-ness of this instance alone: SM utilisation over the last sample
  // period where the driver can tell (GPM on Hopper and later), and the CUDA
  // processes running in it.
  std::optional<unsigned> utilization_gpu;
  int compute_processes = 0;
  // Their pids as the driver sees them (the host's pid namespace): on a
  // cluster node the agent maps them to the pods holding the instance.
  std::vector<unsigned> pids;
};

struct GpuTelemetry {
  std::optional<unsigned> utilization_gpu;     // %; NVML says NOT_SUPPORTED in MIG mode
  std::optional<unsigned> utilization_memory;  // %
  std::optional<unsigned> temperature_c;
  std::optional<unsigned> power_usage_mw;
  std::optional<unsigned> power_limit_mw;      // enforced limit
  int compute_processes = 0;                   // CUDA processes on the whole GPU (all instances)
  std::vector<unsigned> pids;                  // their pids (host pid namespace)
};

struct GpuInfo {
  int index = 0;
  std::string uuid;  // "GPU-..."
  std::string name;  // "NVIDIA A100-SXM4-40GB"
  uint64_t memory_total_mib = 0;
  uint64_t memory_used_mib = 0;
  uint64_t memory_free_mib = 0;
  bool mig_enabled = false;  // current mode
  bool mig_pending = false;  // pending mode (differs until the operator resets the GPU)
  int memory_slice_count = 0;  // 8 on A100/H100/H200, 4 on A30; 0 when MIG is unsupported
  std::vector<MigProfile> profiles;  // empty when MIG is off/unsupported
  std::vector<MigInstance> instances;
  GpuTelemetry telemetry;
};

class GpuBackend {
 public:
  virtual ~GpuBackend() = default;
  virtual std::string description() const = 0;  // "NVML 12.550.54.15, driver 550.54.15"
  // The GPUs now. Each MIG instance's utilisation is the one the last
  // sampleGpus() measured: reading never starts a new measurement period.
  virtual Result<std::vector<GpuInfo>> listGpus() = 0;
  // listGpus() that also closes a measurement period (a GPM sample) and
  // starts the next: the telemetry sampler's call alone, on its interval.
  virtual Result<std::vector<GpuInfo>> sampleGpus() { return listGpus(); }
  // Creates a GPU instance of profile_id at placement_start on GPU gpu_index,
  // and its full-size compute instance. kConflict when the placement is taken
  // (NVML_ERROR_INSUFFICIENT_RESOURCES); kInvalid for a bad profile/placement.
  virtual Result<MigInstance> createInstance(int gpu_index, int profile_id, int placement_start) = 0;
  // Destroys the GPU instance's compute instances, then the GPU instance.
  // Absent is success.
  virtual Status destroyInstance(int gpu_index, int gpu_instance_id) = 0;
  // Destroys the GPU instance `owned.gpu_instance_id` only if it is still the
  // one its owner recorded: same MIG device uuid, placement and profile,
  // checked under the same lock as the destroy. NVML hands a freed GI id (and
  // placement) to the next creator, so a retried or late release by id alone
  // would destroy another session's instance. kNotFound when that instance
  // is gone (whatever holds the id now is left alone).
  virtual Status destroyOwnedInstance(int gpu_index, const MigInstance& owned) = 0;
};

using GpuBackendPtr = std::unique_ptr<GpuBackend>;

}  // namespace sandman
