// Exported NVML symbols: per-device identity, memory and telemetry, for GPU
// handles and (where NVML allows) MIG device handles.
#include <string>
#include <type_traits>

#include "api_util.h"

using namespace nvmlsim;

namespace {

const HandleRec* deviceOrMig(Simulator& sim, nvmlDevice_t device) {
  const HandleRec* h = sim.resolveAny(device);
  if (h == nullptr || sim.gpu(h->gpu) == nullptr) return nullptr;
  return h->kind == HandleKind::kGpu || h->kind == HandleKind::kMigDevice ? h : nullptr;
}

// Runs f(gi, ci) for a live MIG device handle.
template <typename F>
nvmlReturn_t withMigDevice(Simulator& sim, const HandleRec& h, F&& f) {
  return sim.withState(false, [&](MigState& state) {
    GiState* gi = sim.findGi(state, h);
    CiState* ci = sim.findCi(state, h);
    if (gi == nullptr || ci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    return f(*gi, *ci);
  });
}

// A GPU-handle-only telemetry value: NOT_SUPPORTED for MIG handles and for
// values the config marked null.
template <typename Get>
nvmlReturn_t gpuValue(nvmlDevice_t device, unsigned* out, Get&& get) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = deviceOrMig(sim, device);
    if (h == nullptr || out == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    if (h->kind != HandleKind::kGpu) return NVML_ERROR_NOT_SUPPORTED;
    std::optional<unsigned> v = get(sim.gpu(h->gpu)->telemetry);
    if (!v) return NVML_ERROR_NOT_SUPPORTED;
    *out = *v;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t runningProcesses(nvmlDevice_t device, unsigned* count, nvmlProcessInfo_t* infos) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = deviceOrMig(sim, device);
    if (h == nullptr || count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    return sim.withState(false, [&](MigState& state) {
      std::vector<nvmlProcessInfo_t> found;
      const GpuMigState& layout = sim.gpuState(state, h->gpu);
      const CiState* only = h->kind == HandleKind::kMigDevice ? sim.findCi(state, *h) : nullptr;
      if (h->kind == HandleKind::kMigDevice && only == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
      for (const auto& p : sim.gpu(h->gpu)->telemetry.processes) {
        nvmlProcessInfo_t info{p.pid, p.used_memory_mib * kMiB, 0xFFFFFFFFu, 0xFFFFFFFFu};
        if (only != nullptr && p.mig != only->uuid) continue;
        for (const auto& d : migDevices(layout)) {
          if (d.ci->uuid == p.mig) info.gpuInstanceId = d.gi->id, info.computeInstanceId = d.ci->id;
        }
        found.push_back(info);
      }
      unsigned capacity = *count;
      *count = static_cast<unsigned>(found.size());
      if (found.empty()) return NVML_SUCCESS;
      if (infos == nullptr || capacity < found.size()) return NVML_ERROR_INSUFFICIENT_SIZE;
      std::copy(found.begin(), found.end(), infos);
      return NVML_SUCCESS;
    });
  });
}

}  // namespace

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int* index) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(device, HandleKind::kGpu);
    if (h == nullptr || index == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    *index = h->gpu;
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid,
                                               unsigned int length) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = deviceOrMig(sim, device);
    if (h == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    if (h->kind == HandleKind::kGpu) return copyString(sim.gpu(h->gpu)->uuid, uuid, length);
    return withMigDevice(sim, *h, [&](const GiState&, const CiState& ci) {
      return copyString(ci.uuid, uuid, length);
    });
  });
}

// MIG devices are named like the driver does: "<GPU name> MIG 1g.5gb".
NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name,
                                               unsigned int length) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = deviceOrMig(sim, device);
    if (h == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    const std::string& gpu_name = sim.gpu(h->gpu)->name;
    if (h->kind == HandleKind::kGpu) return copyString(gpu_name, name, length);
    return withMigDevice(sim, *h, [&](const GiState& gi, const CiState&) {
      const GiProfile* p = giProfile(sim, h->gpu, gi.profile_id);
      return copyString(gpu_name + " MIG " + (p ? p->name : "?"), name, length);
    });
  });
}

namespace {

// Total, reservation and use of a GPU or MIG device, in MiB (MIG devices
// reserve nothing here).
struct SimMemory {
  unsigned long long total = 0, reserved = 0, used = 0;
};

nvmlReturn_t simMemory(Simulator& sim, nvmlDevice_t device, SimMemory* out) {
  const HandleRec* h = deviceOrMig(sim, device);
  if (h == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const GpuConfig& gpu = *sim.gpu(h->gpu);
  if (h->kind == HandleKind::kGpu) {
    out->total = gpu.model->memory_mib;
    out->reserved = std::min(gpu.telemetry.memory_reserved_mib, out->total);
    out->used = gpu.telemetry.memory_used_mib;
    for (const auto& p : gpu.telemetry.processes) out->used += p.used_memory_mib;
    out->used = std::min(out->used, out->total - out->reserved);
    return NVML_SUCCESS;
  }
  return withMigDevice(sim, *h, [&](const GiState& gi, const CiState& ci) {
    const GiProfile* p = giProfile(sim, h->gpu, gi.profile_id);
    out->total = p ? p->memory_mb : 0;
    out->used = 0;
    for (const auto& proc : gpu.telemetry.processes) {
      if (proc.mig == ci.uuid) out->used += proc.used_memory_mib;
    }
    out->used = std::min(out->used, out->total);
    return NVML_SUCCESS;
  });
}

}  // namespace

// v1 counts the driver's reservation as used, as the real library does.
NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  return withSim([&](Simulator& sim) {
    if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    SimMemory m;
    nvmlReturn_t rc = simMemory(sim, device, &m);
    if (rc != NVML_SUCCESS) return rc;
    const unsigned long long used = m.used + m.reserved;
    *memory = nvmlMemory_t{m.total * kMiB, (m.total - used) * kMiB, used * kMiB};
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  return withSim([&](Simulator& sim) {
    if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    SimMemory m;
    nvmlReturn_t rc = simMemory(sim, device, &m);
    if (rc != NVML_SUCCESS) return rc;
    memory->total = m.total * kMiB;
    memory->reserved = m.reserved * kMiB;
    memory->used = m.used * kMiB;
    memory->free = (m.total - m.reserved - m.used) * kMiB;
    return NVML_SUCCESS;
  });
}

// "On MIG-enabled GPUs, querying device utilization rates is not currently supported."
NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                           nvmlUtilization_t* utilization) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = deviceOrMig(sim, device);
    if (h == nullptr || utilization == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    if (h->kind != HandleKind::kGpu || sim.migEnabled(h->gpu)) return NVML_ERROR_NOT_SUPPORTED;
    const Telemetry& t = sim.gpu(h->gpu)->telemetry;
    if (!t.utilization_gpu || !t.utilization_memory) return NVML_ERROR_NOT_SUPPORTED;
    *utilization = nvmlUtilization_t{*t.utilization_gpu, *t.utilization_memory};
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device,
                                                      nvmlTemperatureSensors_t sensorType,
                                                      unsigned int* temp) {
  if (sensorType != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
  return gpuValue(device, temp, [](const Telemetry& t) { return t.temperature; });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
  return gpuValue(device, power, [](const Telemetry& t) { return t.power_usage_mw; });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device,
                                                             unsigned int* limit) {
  return gpuValue(device, limit, [](const Telemetry& t) { return t.power_limit_mw; });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device,
                                                               unsigned int* limit) {
  return gpuValue(device, limit, [](const Telemetry& t) { return t.power_limit_mw; });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                                     unsigned int* infoCount,
                                                                     nvmlProcessInfo_t* infos) {
  return runningProcesses(device, infoCount, infos);
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                                     unsigned int* infoCount,
                                                                     nvmlProcessInfo_t* infos) {
  return runningProcesses(device, infoCount, infos);
}

static_assert(std::is_same_v<decltype(&nvmlDeviceGetIndex), nvmlDeviceGetIndex_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetUUID), nvmlDeviceGetUUID_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetName), nvmlDeviceGetName_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetMemoryInfo), nvmlDeviceGetMemoryInfo_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetMemoryInfo_v2), nvmlDeviceGetMemoryInfo_v2_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlDeviceGetUtilizationRates), nvmlDeviceGetUtilizationRates_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetTemperature), nvmlDeviceGetTemperature_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetPowerUsage), nvmlDeviceGetPowerUsage_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetEnforcedPowerLimit),
                             nvmlDeviceGetEnforcedPowerLimit_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetComputeRunningProcesses_v3),
                             nvmlDeviceGetComputeRunningProcesses_v3_fn>);
