// Exported NVML symbols: MIG mode, GPU-instance profiles and placements, and
// GPU instances (create with/without placement, list, look up, destroy).
#include <string>
#include <type_traits>

#include "api_util.h"
#include "mig_rules.h"

using namespace nvmlsim;

namespace {

// The GPU handle of a MIG-enabled GPU, or the NVML error for device.
nvmlReturn_t migGpu(Simulator& sim, nvmlDevice_t device, const HandleRec** out) {
  const HandleRec* h = sim.resolve(device, HandleKind::kGpu);
  if (h == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (!sim.migEnabled(h->gpu)) return NVML_ERROR_NOT_SUPPORTED;
  *out = h;
  return NVML_SUCCESS;
}

// Profile info by index; MIG must be on.
nvmlReturn_t profileAt(Simulator& sim, nvmlDevice_t device, unsigned index, const GiProfile** out) {
  if (index >= NVML_GPU_INSTANCE_PROFILE_COUNT) return NVML_ERROR_INVALID_ARGUMENT;
  const HandleRec* h = nullptr;
  nvmlReturn_t rc = migGpu(sim, device, &h);
  if (rc != NVML_SUCCESS) return rc;
  *out = sim.gpu(h->gpu)->model->profileByIndex(index);
  return *out == nullptr ? NVML_ERROR_NOT_SUPPORTED : NVML_SUCCESS;
}

nvmlReturn_t createGi(nvmlDevice_t device, unsigned profileId,
                      const nvmlGpuInstancePlacement_t* placement, nvmlGpuInstance_t* out) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = nullptr;
    nvmlReturn_t rc = migGpu(sim, device, &h);
    if (rc != NVML_SUCCESS) return rc;
    const Model& model = *sim.gpu(h->gpu)->model;
    const GiProfile* p = model.profileById(profileId);
    if (p == nullptr || out == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    if (placement != nullptr && placement->size != p->placement_size) {
      return NVML_ERROR_INVALID_ARGUMENT;
    }
    return sim.withState(true, [&](MigState& state) {
      GpuMigState& gpu = sim.gpuState(state, h->gpu);
      unsigned start = 0;
      if (placement != nullptr) {
        start = placement->start;
        nvmlReturn_t check = checkGiPlacement(model, gpu, *p, start);
        if (check != NVML_SUCCESS) return check;
      } else {
        auto chosen = defaultGiStart(model, gpu, *p);
        if (!chosen) return NVML_ERROR_INSUFFICIENT_RESOURCES;
        start = *chosen;
      }
      GiState& gi = addGi(model, gpu, *p, start, state.next_serial++);
      *out = asGi(giHandle(sim, h->gpu, gi));
      return NVML_SUCCESS;
    });
  });
}

}  // namespace

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int* currentMode,
                                                  unsigned int* pendingMode) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(device, HandleKind::kGpu);
    if (h == nullptr || currentMode == nullptr || pendingMode == nullptr) {
      return NVML_ERROR_INVALID_ARGUMENT;
    }
    const GpuConfig& gpu = *sim.gpu(h->gpu);
    if (!gpu.model->migCapable()) return NVML_ERROR_NOT_SUPPORTED;
    *currentMode = gpu.mig_mode ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
    *pendingMode = gpu.mig_mode_pending ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(
    nvmlDevice_t device, unsigned int profile, nvmlGpuInstanceProfileInfo_t* info) {
  return withSim([&](Simulator& sim) {
    const GiProfile* p = nullptr;
    nvmlReturn_t rc = profileAt(sim, device, profile, &p);
    if (rc != NVML_SUCCESS) return rc;
    if (info == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    fillGiProfileInfo(*p, info);
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(
    nvmlDevice_t device, unsigned int profile, nvmlGpuInstanceProfileInfo_v2_t* info) {
  return withSim([&](Simulator& sim) {
    if (info == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    if (info->version != nvmlGpuInstanceProfileInfo_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    const GiProfile* p = nullptr;
    nvmlReturn_t rc = profileAt(sim, device, profile, &p);
    if (rc != NVML_SUCCESS) return rc;
    fillGiProfileInfo(*p, info);
    return copyString(std::string("MIG ") + p->name, info->name, sizeof info->name);
  });
}

// Every placement of the profile, whatever is occupied, and whatever the MIG mode.
NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstancePossiblePlacements_v2(
    nvmlDevice_t device, unsigned int profileId, nvmlGpuInstancePlacement_t* placements,
    unsigned int* count) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(device, HandleKind::kGpu);
    if (h == nullptr || count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    const Model& model = *sim.gpu(h->gpu)->model;
    if (!model.migCapable()) return NVML_ERROR_NOT_SUPPORTED;
    const GiProfile* p = model.profileById(profileId);
    if (p == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned capacity = *count;
    *count = p->start_count;
    if (placements == nullptr) return NVML_SUCCESS;
    if (capacity < p->start_count) return NVML_ERROR_INSUFFICIENT_SIZE;
    for (unsigned i = 0; i < p->start_count; ++i) placements[i] = {p->starts[i], p->placement_size};
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceRemainingCapacity(nvmlDevice_t device,
                                                                       unsigned int profileId,
                                                                       unsigned int* count) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = nullptr;
    nvmlReturn_t rc = migGpu(sim, device, &h);
    if (rc != NVML_SUCCESS) return rc;
    const Model& model = *sim.gpu(h->gpu)->model;
    const GiProfile* p = model.profileById(profileId);
    if (p == nullptr || count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    return sim.withState(false, [&](MigState& state) {
      *count = remainingGiCapacity(model, sim.gpuState(state, h->gpu), *p);
      return NVML_SUCCESS;
    });
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceCreateGpuInstance(nvmlDevice_t device,
                                                         unsigned int profileId,
                                                         nvmlGpuInstance_t* gpuInstance) {
  return createGi(device, profileId, nullptr, gpuInstance);
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceCreateGpuInstanceWithPlacement(
    nvmlDevice_t device, unsigned int profileId, const nvmlGpuInstancePlacement_t* placement,
    nvmlGpuInstance_t* gpuInstance) {
  if (placement == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return createGi(device, profileId, placement, gpuInstance);
}

NVML_SIM_EXPORT nvmlReturn_t nvmlGpuInstanceDestroy(nvmlGpuInstance_t gpuInstance) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(gpuInstance, HandleKind::kGpuInstance);
    if (h == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    return sim.withState(true, [&](MigState& state) {
      GiState* gi = sim.findGi(state, *h);
      if (gi == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
      if (!gi->cis.empty()) return NVML_ERROR_IN_USE;
      auto& gis = sim.gpuState(state, h->gpu).gis;
      gis.erase(gis.begin() + (gi - gis.data()));
      return NVML_SUCCESS;
    });
  });
}

// Instances of one profile id; the buffer must hold the profile's instanceCount.
NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstances(nvmlDevice_t device, unsigned int profileId,
                                                       nvmlGpuInstance_t* gpuInstances,
                                                       unsigned int* count) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = nullptr;
    nvmlReturn_t rc = migGpu(sim, device, &h);
    if (rc != NVML_SUCCESS) return rc;
    const GiProfile* p = giProfile(sim, h->gpu, profileId);
    if (p == nullptr || gpuInstances == nullptr || count == nullptr) {
      return NVML_ERROR_INVALID_ARGUMENT;
    }
    return sim.withState(false, [&](MigState& state) {
      std::vector<const GiState*> found;
      for (const auto& gi : sim.gpuState(state, h->gpu).gis) {
        if (gi.profile_id == profileId) found.push_back(&gi);
      }
      std::sort(found.begin(), found.end(),
                [](const GiState* a, const GiState* b) { return a->id < b->id; });
      unsigned n = std::min<unsigned>(static_cast<unsigned>(found.size()), p->instance_count);
      for (unsigned i = 0; i < n; ++i) gpuInstances[i] = asGi(giHandle(sim, h->gpu, *found[i]));
      *count = n;
      return NVML_SUCCESS;
    });
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceById(nvmlDevice_t device, unsigned int id,
                                                          nvmlGpuInstance_t* gpuInstance) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = nullptr;
    nvmlReturn_t rc = migGpu(sim, device, &h);
    if (rc != NVML_SUCCESS) return rc;
    if (gpuInstance == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    return sim.withState(false, [&](MigState& state) {
      for (const auto& gi : sim.gpuState(state, h->gpu).gis) {
        if (gi.id != id) continue;
        *gpuInstance = asGi(giHandle(sim, h->gpu, gi));
        return NVML_SUCCESS;
      }
      return NVML_ERROR_NOT_FOUND;
    });
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlGpuInstanceGetInfo(nvmlGpuInstance_t gpuInstance,
                                                    nvmlGpuInstanceInfo_t* info) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(gpuInstance, HandleKind::kGpuInstance);
    if (h == nullptr || info == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    return sim.withState(false, [&](MigState& state) {
      GiState* gi = sim.findGi(state, *h);
      if (gi == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
      info->device = asDevice(sim.handle({HandleKind::kGpu, h->gpu}));
      info->id = gi->id;
      info->profileId = gi->profile_id;
      info->placement = {gi->start, gi->size};
      return NVML_SUCCESS;
    });
  });
}

static_assert(std::is_same_v<decltype(&nvmlDeviceGetMigMode), nvmlDeviceGetMigMode_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetGpuInstanceProfileInfo),
                             nvmlDeviceGetGpuInstanceProfileInfo_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetGpuInstanceProfileInfoV),
                             nvmlDeviceGetGpuInstanceProfileInfoV_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetGpuInstancePossiblePlacements_v2),
                             nvmlDeviceGetGpuInstancePossiblePlacements_v2_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetGpuInstanceRemainingCapacity),
                             nvmlDeviceGetGpuInstanceRemainingCapacity_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlDeviceCreateGpuInstance), nvmlDeviceCreateGpuInstance_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceCreateGpuInstanceWithPlacement),
                             nvmlDeviceCreateGpuInstanceWithPlacement_fn>);
static_assert(std::is_same_v<decltype(&nvmlGpuInstanceDestroy), nvmlGpuInstanceDestroy_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetGpuInstances), nvmlDeviceGetGpuInstances_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlDeviceGetGpuInstanceById), nvmlDeviceGetGpuInstanceById_fn>);
static_assert(std::is_same_v<decltype(&nvmlGpuInstanceGetInfo), nvmlGpuInstanceGetInfo_fn>);
