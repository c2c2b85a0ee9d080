// NvmlBackend: GpuBackend over NVML, loaded with dlopen (libnvidia-ml.so.1 in
// production, the project's NVML simulator in tests) and driven through the
// versioned symbols declared in gpu/nvml_api.h. Thread-safe: one mutex
// serialises every NVML call. Never changes a GPU's MIG mode.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpu/gpu_backend.h"
#include "gpu/nvml_api.h"

namespace sandman {
namespace nvml_internal {
struct BusyState;
}  // namespace nvml_internal

class NvmlBackend final : public GpuBackend {
 public:
  // dlopen + dlsym + nvmlInit_v2. A missing library, a missing symbol or a
  // failed init is kUnavailable with a message that names it.
  static Result<std::unique_ptr<NvmlBackend>> load(
      const std::string& library = "libnvidia-ml.so.1");
  ~NvmlBackend() override;  // nvmlShutdown, dlclose

  NvmlBackend(const NvmlBackend&) = delete;
  NvmlBackend& operator=(const NvmlBackend&) = delete;

  std::string description() const override;
  Result<std::vector<GpuInfo>> listGpus() override;
  Result<std::vector<GpuInfo>> sampleGpus() override;
  Result<MigInstance> createInstance(int gpu_index, int profile_id, int placement_start) override;
  Status destroyInstance(int gpu_index, int gpu_instance_id) override;
  Status destroyOwnedInstance(int gpu_index, const MigInstance& owned) override;

 private:
  // The NVML entry points, resolved once at load.
  struct Api {
    nvmlInit_v2_fn Init;
    nvmlShutdown_fn Shutdown;
    nvmlErrorString_fn ErrorString;
    nvmlSystemGetDriverVersion_fn SystemGetDriverVersion;
    nvmlSystemGetNVMLVersion_fn SystemGetNVMLVersion;
    nvmlDeviceGetCount_v2_fn DeviceGetCount;
    nvmlDeviceGetHandleByIndex_v2_fn DeviceGetHandleByIndex;
    nvmlDeviceGetUUID_fn DeviceGetUUID;
    nvmlDeviceGetName_fn DeviceGetName;
    nvmlDeviceGetMemoryInfo_fn DeviceGetMemoryInfo;
    nvmlDeviceGetMemoryInfo_v2_fn DeviceGetMemoryInfoV2;  // optional (R510+); null: v1 only
    nvmlDeviceGetUtilizationRates_fn DeviceGetUtilizationRates;
    nvmlDeviceGetTemperature_fn DeviceGetTemperature;
    nvmlDeviceGetPowerUsage_fn DeviceGetPowerUsage;
    nvmlDeviceGetEnforcedPowerLimit_fn DeviceGetEnforcedPowerLimit;
    nvmlDeviceGetMigMode_fn DeviceGetMigMode;
    nvmlDeviceGetGpuInstanceProfileInfo_fn DeviceGetGpuInstanceProfileInfo;
    nvmlDeviceGetGpuInstanceProfileInfoV_fn DeviceGetGpuInstanceProfileInfoV;  // optional
    nvmlDeviceGetGpuInstancePossiblePlacements_v2_fn DeviceGetGpuInstancePossiblePlacements;
    nvmlDeviceCreateGpuInstanceWithPlacement_fn DeviceCreateGpuInstanceWithPlacement;
    nvmlGpuInstanceDestroy_fn GpuInstanceDestroy;
    nvmlDeviceGetGpuInstances_fn DeviceGetGpuInstances;
    nvmlDeviceGetGpuInstanceById_fn DeviceGetGpuInstanceById;
    nvmlGpuInstanceGetInfo_fn GpuInstanceGetInfo;
    nvmlGpuInstanceGetComputeInstanceProfileInfo_fn GpuInstanceGetComputeInstanceProfileInfo;
    nvmlGpuInstanceCreateComputeInstance_fn GpuInstanceCreateComputeInstance;
    nvmlComputeInstanceDestroy_fn ComputeInstanceDestroy;
    nvmlGpuInstanceGetComputeInstances_fn GpuInstanceGetComputeInstances;
    nvmlComputeInstanceGetInfo_v2_fn ComputeInstanceGetInfo;
    nvmlDeviceGetMaxMigDeviceCount_fn DeviceGetMaxMigDeviceCount;
    nvmlDeviceGetMigDeviceHandleByIndex_fn DeviceGetMigDeviceHandleByIndex;
    nvmlDeviceGetGpuInstanceId_fn DeviceGetGpuInstanceId;
    nvmlDeviceGetComputeInstanceId_fn DeviceGetComputeInstanceId;
  };
  // Resolves every entry point; returns the required ones that are missing.
  static std::vector<std::string> bindAll(void* dl, Api* api);

  NvmlBackend(void* dl, std::string library, const Api& api);

  std::string error(const char* call, nvmlReturn_t rc) const;  // "nvmlX failed: Not Found (6)"
  Result<nvmlDevice_t> device(int index) const;
  Result<std::vector<GpuInfo>> inventory(bool gpm_sample);
  Result<GpuInfo> readGpu(unsigned index, bool gpm_sample) const;
  void readTelemetry(nvmlDevice_t dev, GpuInfo* gpu) const;
  // Memory of a GPU or MIG device, `used` without the driver's reservation
  // where the driver can say (v2), as nvidia-smi shows it.
  nvmlReturn_t memoryInfo(nvmlDevice_t dev, nvmlMemory_t* out) const;
  Result<std::vector<MigProfile>> readProfiles(nvmlDevice_t dev) const;
  Status readInstances(nvmlDevice_t dev, GpuInfo* gpu) const;
  // MIG device UUID and memory of each (gi, ci), from the MIG device handles.
  struct MigDevice {
    unsigned gi = 0, ci = 0;
    std::string uuid;
    uint64_t total_mib = 0, used_mib = 0;
  };
  std::vector<MigDevice> readMigDevices(nvmlDevice_t dev) const;
  // Compute instances of a GI across all CI profiles; what could not be read is left out.
  struct ComputeInstance {
    nvmlComputeInstance_t handle = nullptr;
    nvmlComputeInstanceInfo_t info{};
    unsigned slices = 0;  // of its CI profile
  };
  std::vector<ComputeInstance> computeInstances(nvmlGpuInstance_t gi) const;
  Status destroyGi(nvmlGpuInstance_t gi) const;

  void* dl_;
  std::string library_;
  Api api_;
  std::string description_;
  mutable std::mutex mu_;  // serialises NVML calls
  // Read and updated by every inventory, under mu_.
  std::unique_ptr<nvml_internal::BusyState> busy_;  // processes, GPM samples
  // A GPU's MIG profiles (with placements) by GPU uuid + name: fixed by the
  // hardware and driver, and the bulk of the NVML calls of an inventory.
  mutable std::map<std::string, std::vector<MigProfile>> profile_cache_;
};

using NvmlBackendPtr = std::unique_ptr<NvmlBackend>;

}  // namespace sandman
