// NvmlBusy: what NVML says about how busy a GPU and each MIG instance are,
// beyond the basic telemetry: CUDA processes per device and, where GPM exists
// (Hopper and later), each MIG instance's own SM utilisation. Internal to
// NvmlBackend, which owns the state and serialises its use.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gpu/gpu_backend.h"
#include "gpu/nvml_api.h"

namespace sandman::nvml_internal {

// Calls newer than the required set (R470), looked up once per backend: a
// driver without them still inventories, with processes or per-instance
// utilisation left unknown.
struct OptionalCalls {
  nvmlDeviceGetComputeRunningProcesses_v3_fn procs = nullptr;
  nvmlGpmQueryDeviceSupport_fn gpm_support = nullptr;
  nvmlGpmSampleAlloc_fn gpm_alloc = nullptr;
  nvmlGpmSampleFree_fn gpm_free = nullptr;
  nvmlGpmMigSampleGet_fn gpm_mig_sample = nullptr;
  nvmlGpmMetricsGet_fn gpm_metrics = nullptr;
  bool gpm() const {
    return gpm_support && gpm_alloc && gpm_free && gpm_mig_sample && gpm_metrics;
  }
};

// What a backend keeps between listGpus() calls. GPM needs the previous
// sample of each instance: utilisation is a rate over the period between two.
struct BusyState {
  OptionalCalls calls;
  std::map<std::string, std::map<std::string, nvmlGpmSample_t>> gpm_prev;  // GPU uuid -> MIG uuid -> sample
  // What the last sample measured, reported by reads between samples.
  std::map<std::string, std::optional<unsigned>> gpm_last;  // MIG uuid -> SM %
  ~BusyState();  // frees the GPM samples: destroy before nvmlShutdown
};

// Looks up the optional calls in the loaded library.
std::unique_ptr<BusyState> loadBusyState(void* dl);

// The MIG-device walk, for the per-handle process fallback.
struct MigWalk {
  nvmlDeviceGetMaxMigDeviceCount_fn max_mig;
  nvmlDeviceGetMigDeviceHandleByIndex_fn mig_handle;
  nvmlDeviceGetGpuInstanceId_fn gi_id;
  nvmlDeviceGetComputeInstanceId_fn ci_id;
};

// Fills gpu->telemetry.compute_processes and each instance's
// compute_processes and utilization_gpu (instances must be read already).
// Only with gpm_sample is a new GPM sample taken (utilisation over the time
// since the previous one); otherwise the last measured value is reported.
void readBusy(BusyState& state, const MigWalk& walk, nvmlDevice_t dev, GpuInfo* gpu, bool gpm_sample);

}  // namespace sandman::nvml_internal
