// Exported NVML symbols: MIG device handles (one per compute instance), their
// GI/CI ids and parent GPU.
#include <type_traits>

#include "api_util.h"

using namespace nvmlsim;

namespace {

// Runs f(gi, ci) for a live MIG device handle; INVALID_ARGUMENT for a GPU handle.
template <typename F>
nvmlReturn_t withMig(nvmlDevice_t device, F&& f) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(device, HandleKind::kMigDevice);
    if (h == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    return sim.withState(false, [&](MigState& state) {
      GiState* gi = sim.findGi(state, *h);
      CiState* ci = sim.findCi(state, *h);
      if (gi == nullptr || ci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
      return f(sim, *h, *gi, *ci);
    });
  });
}

}  // namespace

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device,
                                                         unsigned int* isMigDevice) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolveAny(device);
    if (h == nullptr || isMigDevice == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    if (h->kind != HandleKind::kGpu && h->kind != HandleKind::kMigDevice) {
      return NVML_ERROR_INVALID_ARGUMENT;
    }
    *isMigDevice = h->kind == HandleKind::kMigDevice ? 1 : 0;
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int* id) {
  if (id == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return withMig(device, [&](Simulator&, const HandleRec&, const GiState& gi, const CiState&) {
    *id = gi.id;
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device,
                                                            unsigned int* id) {
  if (id == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return withMig(device, [&](Simulator&, const HandleRec&, const GiState&, const CiState& ci) {
    *id = ci.id;
    return NVML_SUCCESS;
  });
}

// As many MIG devices as compute slices (7, or 4 on A30); 0 with MIG off.
NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device,
                                                            unsigned int* count) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(device, HandleKind::kGpu);
    if (h == nullptr || count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    *count = sim.migEnabled(h->gpu) ? sim.gpu(h->gpu)->model->compute_slices : 0;
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device,
                                                                 unsigned int index,
                                                                 nvmlDevice_t* migDevice) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(device, HandleKind::kGpu);
    if (h == nullptr || migDevice == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    if (!sim.migEnabled(h->gpu)) return NVML_ERROR_NOT_SUPPORTED;
    if (index >= sim.gpu(h->gpu)->model->compute_slices) return NVML_ERROR_INVALID_ARGUMENT;
    return sim.withState(false, [&](MigState& state) {
      auto devices = migDevices(sim.gpuState(state, h->gpu));
      if (index >= devices.size()) return NVML_ERROR_NOT_FOUND;
      *migDevice = asDevice(migHandle(sim, h->gpu, *devices[index].gi, *devices[index].ci));
      return NVML_SUCCESS;
    });
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t migDevice,
                                                                          nvmlDevice_t* device) {
  if (device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return withMig(migDevice, [&](Simulator& sim, const HandleRec& h, const GiState&,
                                const CiState&) {
    *device = asDevice(sim.handle({HandleKind::kGpu, h.gpu}));
    return NVML_SUCCESS;
  });
}

static_assert(
    std::is_same_v<decltype(&nvmlDeviceIsMigDeviceHandle), nvmlDeviceIsMigDeviceHandle_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlDeviceGetGpuInstanceId), nvmlDeviceGetGpuInstanceId_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlDeviceGetComputeInstanceId), nvmlDeviceGetComputeInstanceId_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlDeviceGetMaxMigDeviceCount), nvmlDeviceGetMaxMigDeviceCount_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetMigDeviceHandleByIndex),
                             nvmlDeviceGetMigDeviceHandleByIndex_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetDeviceHandleFromMigDeviceHandle),
                             nvmlDeviceGetDeviceHandleFromMigDeviceHandle_fn>);
