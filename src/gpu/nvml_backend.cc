// Loading NVML and changing MIG layouts; inventory reads live in
// nvml_inventory.cc.
#include "gpu/nvml_backend.h"

#include "gpu/nvml_busy.h"

#include <dlfcn.h>

#include <algorithm>
#include <utility>

namespace sandman {
namespace {

// Binds one symbol; records the first missing name.
template <typename Fn>
void bind(void* dl, const char* name, Fn* out, std::vector<std::string>* missing) {
  void* p = dlsym(dl, name);
  if (p == nullptr) missing->push_back(name);
  *out = reinterpret_cast<Fn>(p);
}

}  // namespace

std::vector<std::string> NvmlBackend::bindAll(void* dl, Api* a) {
  std::vector<std::string> missing;
  bind(dl, "nvmlInit_v2", &a->Init, &missing);
  bind(dl, "nvmlShutdown", &a->Shutdown, &missing);
  bind(dl, "nvmlErrorString", &a->ErrorString, &missing);
  bind(dl, "nvmlSystemGetDriverVersion", &a->SystemGetDriverVersion, &missing);
  bind(dl, "nvmlSystemGetNVMLVersion", &a->SystemGetNVMLVersion, &missing);
  bind(dl, "nvmlDeviceGetCount_v2", &a->DeviceGetCount, &missing);
  bind(dl, "nvmlDeviceGetHandleByIndex_v2", &a->DeviceGetHandleByIndex, &missing);
  bind(dl, "nvmlDeviceGetUUID", &a->DeviceGetUUID, &missing);
  bind(dl, "nvmlDeviceGetName", &a->DeviceGetName, &missing);
  bind(dl, "nvmlDeviceGetMemoryInfo", &a->DeviceGetMemoryInfo, &missing);
  bind(dl, "nvmlDeviceGetUtilizationRates", &a->DeviceGetUtilizationRates, &missing);
  bind(dl, "nvmlDeviceGetTemperature", &a->DeviceGetTemperature, &missing);
  bind(dl, "nvmlDeviceGetPowerUsage", &a->DeviceGetPowerUsage, &missing);
  bind(dl, "nvmlDeviceGetEnforcedPowerLimit", &a->DeviceGetEnforcedPowerLimit, &missing);
  bind(dl, "nvmlDeviceGetMigMode", &a->DeviceGetMigMode, &missing);
  bind(dl, "nvmlDeviceGetGpuInstanceProfileInfo", &a->DeviceGetGpuInstanceProfileInfo, &missing);
  bind(dl, "nvmlDeviceGetGpuInstancePossiblePlacements_v2",
       &a->DeviceGetGpuInstancePossiblePlacements, &missing);
  bind(dl, "nvmlDeviceCreateGpuInstanceWithPlacement", &a->DeviceCreateGpuInstanceWithPlacement,
       &missing);
  bind(dl, "nvmlGpuInstanceDestroy", &a->GpuInstanceDestroy, &missing);
  bind(dl, "nvmlDeviceGetGpuInstances", &a->DeviceGetGpuInstances, &missing);
  bind(dl, "nvmlDeviceGetGpuInstanceById", &a->DeviceGetGpuInstanceById, &missing);
  bind(dl, "nvmlGpuInstanceGetInfo", &a->GpuInstanceGetInfo, &missing);
  bind(dl, "nvmlGpuInstanceGetComputeInstanceProfileInfo",
       &a->GpuInstanceGetComputeInstanceProfileInfo, &missing);
  bind(dl, "nvmlGpuInstanceCreateComputeInstance", &a->GpuInstanceCreateComputeInstance, &missing);
  bind(dl, "nvmlComputeInstanceDestroy", &a->ComputeInstanceDestroy, &missing);
  bind(dl, "nvmlGpuInstanceGetComputeInstances", &a->GpuInstanceGetComputeInstances, &missing);
  bind(dl, "nvmlComputeInstanceGetInfo_v2", &a->ComputeInstanceGetInfo, &missing);
  bind(dl, "nvmlDeviceGetMaxMigDeviceCount", &a->DeviceGetMaxMigDeviceCount, &missing);
  bind(dl, "nvmlDeviceGetMigDeviceHandleByIndex", &a->DeviceGetMigDeviceHandleByIndex, &missing);
  bind(dl, "nvmlDeviceGetGpuInstanceId", &a->DeviceGetGpuInstanceId, &missing);
  bind(dl, "nvmlDeviceGetComputeInstanceId", &a->DeviceGetComputeInstanceId, &missing);
  // Optional (R510+): profile names straight from the driver.
  std::vector<std::string> optional;
  bind(dl, "nvmlDeviceGetGpuInstanceProfileInfoV", &a->DeviceGetGpuInstanceProfileInfoV, &optional);
  // Optional (R510+): memory used apart from the driver's reservation.
  bind(dl, "nvmlDeviceGetMemoryInfo_v2", &a->DeviceGetMemoryInfoV2, &optional);
  return missing;
}

Result<std::unique_ptr<NvmlBackend>> NvmlBackend::load(const std::string& library) {
  dlerror();
  void* dl = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char* why = dlerror();
    return unavailable("cannot load NVML library '" + library + "': " + (why ? why : "unknown") +
                       "; install the NVIDIA driver, point --nvml-library at libnvidia-ml.so.1,"
                       " or run with --gpu-backend none");
  }
  Api api{};
  std::vector<std::string> missing = bindAll(dl, &api);
  if (!missing.empty()) {
    dlclose(dl);
    std::string more = missing.size() > 1
                           ? " (and " + std::to_string(missing.size() - 1) + " more)"
                           : std::string();
    return unavailable("NVML library '" + library + "' lacks symbol " + missing.front() + more +
                       "; it is not NVML, or its driver predates R470 (MIG needs R470+)");
  }
  nvmlReturn_t rc = api.Init();
  if (rc != NVML_SUCCESS) {
    const char* why = api.ErrorString(rc);
    std::string message = "nvmlInit_v2 from '" + library + "' failed: " +
                          (why ? why : "unknown error") + " (" + std::to_string(rc) +
                          "); is the NVIDIA driver loaded (nvidia-smi)?";
    dlclose(dl);
    return unavailable(std::move(message));
  }
  return std::unique_ptr<NvmlBackend>(new NvmlBackend(dl, library, api));
}

NvmlBackend::NvmlBackend(void* dl, std::string library, const Api& api)
    : dl_(dl), library_(std::move(library)), api_(api), busy_(nvml_internal::loadBusyState(dl)) {
  char nvml[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE] = "?";
  char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = "?";
  if (api_.SystemGetNVMLVersion(nvml, sizeof nvml) != NVML_SUCCESS) nvml[0] = '\0';
  if (api_.SystemGetDriverVersion(driver, sizeof driver) != NVML_SUCCESS) driver[0] = '\0';
  description_ = std::string("NVML ") + nvml + ", driver " + driver;
}

NvmlBackend::~NvmlBackend() {
  busy_.reset();  // GPM samples go before NVML does
  api_.Shutdown();
  dlclose(dl_);
}

std::string NvmlBackend::description() const { return description_; }

std::string NvmlBackend::error(const char* call, nvmlReturn_t rc) const {
  const char* why = api_.ErrorString(rc);
  return std::string(call) + " failed: " + (why ? why : "unknown error") + " (" +
         std::to_string(rc) + ")";
}

Result<nvmlDevice_t> NvmlBackend::device(int index) const {
  unsigned count = 0;
  nvmlReturn_t rc = api_.DeviceGetCount(&count);
  if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceGetCount_v2", rc));
  if (index < 0 || static_cast<unsigned>(index) >= count) {
    return invalid("no GPU with index " + std::to_string(index) + " (this host has " +
                   std::to_string(count) + ")");
  }
  nvmlDevice_t dev = nullptr;
  rc = api_.DeviceGetHandleByIndex(static_cast<unsigned>(index), &dev);
  if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceGetHandleByIndex_v2", rc));
  return dev;
}

Result<MigInstance> NvmlBackend::createInstance(int gpu_index, int profile_id,
                                                int placement_start) {
  std::lock_guard<std::mutex> lock(mu_);
  auto dev = device(gpu_index);
  if (!dev.ok()) return dev.error();
  const std::string gpu = "GPU " + std::to_string(gpu_index);
  unsigned current = 0, pending = 0;
  if (api_.DeviceGetMigMode(*dev, &current, &pending) != NVML_SUCCESS ||
      current != NVML_DEVICE_MIG_ENABLE) {
    return invalid("MIG is off on " + gpu + "; only whole-GPU sessions can use it");
  }
  auto profiles = readProfiles(*dev);
  if (!profiles.ok()) return profiles.error();
  auto profile = std::find_if(profiles->begin(), profiles->end(),
                              [&](const MigProfile& p) { return p.profile_id == profile_id; });
  if (profile == profiles->end()) {
    std::string valid;
    for (const auto& p : *profiles) {
      valid += (valid.empty() ? "" : ", ") + std::to_string(p.profile_id) + " (" + p.name + ")";
    }
    return invalid(gpu + " has no MIG profile id " + std::to_string(profile_id) +
                   "; valid: " + valid);
  }
  const auto& starts = profile->placement_starts;
  if (std::find(starts.begin(), starts.end(), placement_start) == starts.end()) {
    std::string valid;
    for (int s : starts) valid += (valid.empty() ? "" : ", ") + std::to_string(s);
    return invalid("placement " + std::to_string(placement_start) + " is not valid for " +
                   profile->name + " on " + gpu + "; valid starts: " + valid);
  }

  nvmlGpuInstancePlacement_t placement{static_cast<unsigned>(placement_start),
                                       static_cast<unsigned>(profile->memory_slices)};
  nvmlGpuInstance_t gi = nullptr;
  nvmlReturn_t rc = api_.DeviceCreateGpuInstanceWithPlacement(
      *dev, static_cast<unsigned>(profile_id), &placement, &gi);
  if (rc == NVML_ERROR_INSUFFICIENT_RESOURCES) {
    return conflict(profile->name + " at memory slice " + std::to_string(placement_start) +
                    " does not fit on " + gpu +
                    " now (taken, or the profile's instance limit is reached)");
  }
  if (rc == NVML_ERROR_INVALID_ARGUMENT || rc == NVML_ERROR_NOT_SUPPORTED) {
    return invalid(error("nvmlDeviceCreateGpuInstanceWithPlacement", rc));
  }
  if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceCreateGpuInstanceWithPlacement", rc));

  // The full-size compute instance makes the GPU instance usable (nvidia-smi -cgi ... -C).
  nvmlGpuInstanceInfo_t gi_info{};
  rc = api_.GpuInstanceGetInfo(gi, &gi_info);
  nvmlComputeInstance_t ci = nullptr;
  const char* failed = "nvmlGpuInstanceGetInfo";
  if (rc == NVML_SUCCESS) {
    failed = "nvmlGpuInstanceGetComputeInstanceProfileInfo";
    rc = NVML_ERROR_NOT_FOUND;
    for (unsigned idx = 0; idx < 64; ++idx) {
      nvmlComputeInstanceProfileInfo_t cp{};
      nvmlReturn_t prc = api_.GpuInstanceGetComputeInstanceProfileInfo(
          gi, idx, NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &cp);
      if (prc == NVML_ERROR_INVALID_ARGUMENT) break;
      if (prc != NVML_SUCCESS || cp.sliceCount != static_cast<unsigned>(profile->compute_slices)) {
        continue;
      }
      failed = "nvmlGpuInstanceCreateComputeInstance";
      rc = api_.GpuInstanceCreateComputeInstance(gi, cp.id, &ci);
      break;
    }
  }
  nvmlComputeInstanceInfo_t ci_info{};
  if (rc == NVML_SUCCESS) {
    failed = "nvmlComputeInstanceGetInfo_v2";
    rc = api_.ComputeInstanceGetInfo(ci, &ci_info);
  }
  if (rc != NVML_SUCCESS) {
    std::string message = error(failed, rc) + " for a new " + profile->name + " on " + gpu;
    if (ci != nullptr) api_.ComputeInstanceDestroy(ci);
    Status rolled_back = destroyGi(gi);
    if (!rolled_back.ok()) message += "; rolling back also failed: " + rolled_back.error().message;
    return unavailable(std::move(message));
  }

  MigInstance out;
  out.gpu_instance_id = static_cast<int>(gi_info.id);
  out.compute_instance_id = static_cast<int>(ci_info.id);
  out.profile_id = profile_id;
  out.profile_name = profile->name;
  out.placement_start = static_cast<int>(gi_info.placement.start);
  out.placement_size = static_cast<int>(gi_info.placement.size);
  out.memory_total_mib = profile->memory_mib;
  for (const auto& d : readMigDevices(*dev)) {
    if (d.gi != gi_info.id || d.ci != ci_info.id) continue;
    out.uuid = d.uuid;
    if (d.total_mib > 0) out.memory_total_mib = d.total_mib;
    out.memory_used_mib = d.used_mib;
  }
  return out;
}

Status NvmlBackend::destroyGi(nvmlGpuInstance_t gi) const {
  for (const auto& ci : computeInstances(gi)) {
    nvmlReturn_t rc = api_.ComputeInstanceDestroy(ci.handle);
    if (rc == NVML_ERROR_IN_USE) {
      return conflict("compute instance " + std::to_string(ci.info.id) +
                      " still has processes running (" + error("nvmlComputeInstanceDestroy", rc) +
                      ")");
    }
    if (rc != NVML_SUCCESS && rc != NVML_ERROR_NOT_FOUND && rc != NVML_ERROR_INVALID_ARGUMENT) {
      return unavailable(error("nvmlComputeInstanceDestroy", rc));
    }
  }
  nvmlReturn_t rc = api_.GpuInstanceDestroy(gi);
  if (rc == NVML_SUCCESS || rc == NVML_ERROR_NOT_FOUND || rc == NVML_ERROR_INVALID_ARGUMENT) {
    return Status();  // gone, by us or someone else
  }
  if (rc == NVML_ERROR_IN_USE) return conflict(error("nvmlGpuInstanceDestroy", rc));
  return unavailable(error("nvmlGpuInstanceDestroy", rc));
}

Status NvmlBackend::destroyInstance(int gpu_index, int gpu_instance_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto dev = device(gpu_index);
  if (!dev.ok()) return dev.error();
  if (gpu_instance_id < 0) return invalid("GPU instance ids are >= 0");
  nvmlGpuInstance_t gi = nullptr;
  nvmlReturn_t rc =
      api_.DeviceGetGpuInstanceById(*dev, static_cast<unsigned>(gpu_instance_id), &gi);
  // Absent (or MIG off, so no instances at all) is what the caller wants.
  if (rc == NVML_ERROR_NOT_FOUND || rc == NVML_ERROR_NOT_SUPPORTED) return Status();
  if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceGetGpuInstanceById", rc));
  return destroyGi(gi);
}

Status NvmlBackend::destroyOwnedInstance(int gpu_index, const MigInstance& owned) {
  std::lock_guard<std::mutex> lock(mu_);
  auto dev = device(gpu_index);
  if (!dev.ok()) return dev.error();
  if (owned.uuid.empty()) return invalid("an owned MIG instance is named by its MIG uuid");
  const std::string what = "MIG instance " + owned.uuid + " (GPU instance " +
                           std::to_string(owned.gpu_instance_id) + " on GPU " + std::to_string(gpu_index) + ")";
  nvmlGpuInstance_t gi = nullptr;
  nvmlReturn_t rc = owned.gpu_instance_id < 0 ? NVML_ERROR_NOT_FOUND
                                              : api_.DeviceGetGpuInstanceById(
                                                    *dev, static_cast<unsigned>(owned.gpu_instance_id), &gi);
  if (rc == NVML_ERROR_NOT_FOUND || rc == NVML_ERROR_NOT_SUPPORTED) return notFound(what + " is gone");
  if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceGetGpuInstanceById", rc));
  nvmlGpuInstanceInfo_t info{};
  rc = api_.GpuInstanceGetInfo(gi, &info);
  if (rc != NVML_SUCCESS) return unavailable(error("nvmlGpuInstanceGetInfo", rc));
  bool same_uuid = false;
  for (const auto& d : readMigDevices(*dev)) {
    if (d.gi == info.id && d.uuid == owned.uuid) same_uuid = true;
  }
  if (!same_uuid || static_cast<int>(info.placement.start) != owned.placement_start ||
      static_cast<int>(info.profileId) != owned.profile_id) {
    return notFound(what + " is gone; GPU instance " + std::to_string(owned.gpu_instance_id) +
                    " now belongs to someone else and is left alone");
  }
  return destroyGi(gi);
}

}  // namespace sandman
