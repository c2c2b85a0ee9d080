// Exported NVML symbols: compute instances inside a GPU instance (profiles,
// capacity, create, list, look up, info, destroy).
#include <type_traits>

#include "api_util.h"
#include "mig_rules.h"

using namespace nvmlsim;

namespace {

// Legacy nvmlComputeInstanceGetInfo's struct: the v2 one without placement.
struct ComputeInstanceInfoV1 {
  nvmlDevice_t device;
  nvmlGpuInstance_t gpuInstance;
  unsigned int id;
  unsigned int profileId;
};

// Runs f(gi) for a live GPU-instance handle.
template <typename F>
nvmlReturn_t withGi(nvmlGpuInstance_t handle, bool mutate, F&& f) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(handle, HandleKind::kGpuInstance);
    if (h == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    return sim.withState(mutate, [&](MigState& state) {
      GiState* gi = sim.findGi(state, *h);
      if (gi == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
      return f(sim, state, *h, *gi);
    });
  });
}

// Runs f(gi, ci) for a live compute-instance handle.
template <typename F>
nvmlReturn_t withCi(nvmlComputeInstance_t handle, bool mutate, F&& f) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(handle, HandleKind::kComputeInstance);
    if (h == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    return sim.withState(mutate, [&](MigState& state) {
      GiState* gi = sim.findGi(state, *h);
      CiState* ci = sim.findCi(state, *h);
      if (gi == nullptr || ci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
      return f(sim, *h, *gi, *ci);
    });
  });
}

// CI profile ids equal their index; NOT_SUPPORTED when it does not fit the GI.
nvmlReturn_t ciProfile(const GiState& gi, unsigned id, const CiProfile** out) {
  if (id >= NVML_COMPUTE_INSTANCE_PROFILE_COUNT) return NVML_ERROR_INVALID_ARGUMENT;
  *out = ciProfileByIndex(id, gi.slices);
  return *out == nullptr ? NVML_ERROR_NOT_SUPPORTED : NVML_SUCCESS;
}

}  // namespace

NVML_SIM_EXPORT nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfo(
    nvmlGpuInstance_t gpuInstance, unsigned int profile, unsigned int engProfile,
    nvmlComputeInstanceProfileInfo_t* info) {
  if (info == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (engProfile != NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED) return NVML_ERROR_NOT_SUPPORTED;
  return withGi(gpuInstance, false, [&](Simulator& sim, MigState&, const HandleRec& h,
                                        GiState& gi) {
    const CiProfile* cp = nullptr;
    nvmlReturn_t rc = ciProfile(gi, profile, &cp);
    if (rc != NVML_SUCCESS) return rc;
    const GiProfile* gp = giProfile(sim, h.gpu, gi.profile_id);
    if (gp == nullptr) return NVML_ERROR_UNKNOWN;
    *info = nvmlComputeInstanceProfileInfo_t{cp->id,     cp->slices, ciInstanceCount(gi, *cp),
                                             gp->sm * cp->slices / gi.slices,
                                             gp->ce,     gp->dec,    gp->enc,
                                             gp->jpg,    gp->ofa};
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlGpuInstanceGetComputeInstanceRemainingCapacity(
    nvmlGpuInstance_t gpuInstance, unsigned int profileId, unsigned int* count) {
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return withGi(gpuInstance, false, [&](Simulator&, MigState&, const HandleRec&, GiState& gi) {
    const CiProfile* cp = nullptr;
    nvmlReturn_t rc = ciProfile(gi, profileId, &cp);
    if (rc != NVML_SUCCESS) return rc;
    *count = remainingCiCapacity(gi, *cp);
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlGpuInstanceCreateComputeInstance(
    nvmlGpuInstance_t gpuInstance, unsigned int profileId, nvmlComputeInstance_t* computeInstance) {
  if (computeInstance == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return withGi(gpuInstance, true, [&](Simulator& sim, MigState& state, const HandleRec& h,
                                       GiState& gi) {
    const CiProfile* cp = nullptr;
    nvmlReturn_t rc = ciProfile(gi, profileId, &cp);
    if (rc != NVML_SUCCESS) return rc;
    CiState* ci = nullptr;
    rc = addCi(sim.gpu(h.gpu)->uuid, gi, *cp, state.next_serial++, &ci);
    if (rc != NVML_SUCCESS) return rc;
    *computeInstance = asCi(ciHandle(sim, h.gpu, gi, *ci));
    return NVML_SUCCESS;
  });
}

// IN_USE while a process (config telemetry) runs in its MIG device.
NVML_SIM_EXPORT nvmlReturn_t nvmlComputeInstanceDestroy(nvmlComputeInstance_t computeInstance) {
  return withCi(computeInstance, true, [&](Simulator& sim, const HandleRec& h, GiState& gi,
                                           CiState& ci) {
    for (const auto& p : sim.gpu(h.gpu)->telemetry.processes) {
      if (p.mig == ci.uuid) return NVML_ERROR_IN_USE;
    }
    gi.cis.erase(gi.cis.begin() + (&ci - gi.cis.data()));
    return NVML_SUCCESS;
  });
}

// Instances of one CI profile; the buffer must hold that profile's instanceCount.
NVML_SIM_EXPORT nvmlReturn_t nvmlGpuInstanceGetComputeInstances(
    nvmlGpuInstance_t gpuInstance, unsigned int profileId, nvmlComputeInstance_t* computeInstances,
    unsigned int* count) {
  if (computeInstances == nullptr || count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return withGi(gpuInstance, false, [&](Simulator& sim, MigState&, const HandleRec& h,
                                        GiState& gi) {
    const CiProfile* cp = nullptr;
    nvmlReturn_t rc = ciProfile(gi, profileId, &cp);
    if (rc != NVML_SUCCESS) return rc;
    unsigned n = 0;
    for (const auto& ci : gi.cis) {
      if (ci.profile_id != profileId || n >= ciInstanceCount(gi, *cp)) continue;
      computeInstances[n++] = asCi(ciHandle(sim, h.gpu, gi, ci));
    }
    *count = n;
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlGpuInstanceGetComputeInstanceById(
    nvmlGpuInstance_t gpuInstance, unsigned int id, nvmlComputeInstance_t* computeInstance) {
  if (computeInstance == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return withGi(gpuInstance, false, [&](Simulator& sim, MigState&, const HandleRec& h,
                                        GiState& gi) {
    for (const auto& ci : gi.cis) {
      if (ci.id != id) continue;
      *computeInstance = asCi(ciHandle(sim, h.gpu, gi, ci));
      return NVML_SUCCESS;
    }
    return NVML_ERROR_NOT_FOUND;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlComputeInstanceGetInfo_v2(nvmlComputeInstance_t computeInstance,
                                                           nvmlComputeInstanceInfo_t* info) {
  if (info == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return withCi(computeInstance, false, [&](Simulator& sim, const HandleRec& h, GiState& gi,
                                            CiState& ci) {
    info->device = asDevice(sim.handle({HandleKind::kGpu, h.gpu}));
    info->gpuInstance = asGi(giHandle(sim, h.gpu, gi));
    info->id = ci.id;
    info->profileId = ci.profile_id;
    info->placement = {ci.start, ci.size};
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlComputeInstanceGetInfo(nvmlComputeInstance_t computeInstance,
                                                        ComputeInstanceInfoV1* info) {
  if (info == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  nvmlComputeInstanceInfo_t v2{};
  nvmlReturn_t rc = nvmlComputeInstanceGetInfo_v2(computeInstance, &v2);
  if (rc == NVML_SUCCESS) *info = {v2.device, v2.gpuInstance, v2.id, v2.profileId};
  return rc;
}

static_assert(std::is_same_v<decltype(&nvmlGpuInstanceGetComputeInstanceProfileInfo),
                             nvmlGpuInstanceGetComputeInstanceProfileInfo_fn>);
static_assert(std::is_same_v<decltype(&nvmlGpuInstanceCreateComputeInstance),
                             nvmlGpuInstanceCreateComputeInstance_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlComputeInstanceDestroy), nvmlComputeInstanceDestroy_fn>);
static_assert(std::is_same_v<decltype(&nvmlGpuInstanceGetComputeInstances),
                             nvmlGpuInstanceGetComputeInstances_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlComputeInstanceGetInfo_v2), nvmlComputeInstanceGetInfo_v2_fn>);
