// NvmlBackend's reads: per-GPU identity, telemetry, MIG profiles with their
// placements, and the GPU/compute instances that exist with MIG device UUIDs
// (how busy each is: nvml_busy.cc).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "gpu/nvml_backend.h"
#include "gpu/nvml_busy.h"

namespace sandman {
namespace {

constexpr uint64_t kMiB = 1024ull * 1024ull;

// go-nvlib's naming when the driver gives no name (no GetGpuInstanceProfileInfoV):
// memory as a fraction of the GPU rounded up to eighths, times its GB.
std::string profileName(const nvmlGpuInstanceProfileInfo_t& info, unsigned index,
                        uint64_t total_mib) {
  double total_gb = std::ceil(static_cast<double>(total_mib) / 1024.0);
  double frac = total_mib == 0 ? 0
                               : std::ceil(static_cast<double>(info.memorySizeMB) * 8.0 /
                                           static_cast<double>(total_mib)) / 8.0;
  std::string name = std::to_string(info.sliceCount) + "g." +
                     std::to_string(static_cast<long long>(std::llround(frac * total_gb))) + "gb";
  switch (index) {
    case NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1:
    case NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1: return name + "+me";
    case NVML_GPU_INSTANCE_PROFILE_1_SLICE_ALL_ME:
    case NVML_GPU_INSTANCE_PROFILE_2_SLICE_ALL_ME: return name + "+me.all";
    case NVML_GPU_INSTANCE_PROFILE_1_SLICE_NO_ME:
    case NVML_GPU_INSTANCE_PROFILE_2_SLICE_NO_ME: return name + "-me";
    case NVML_GPU_INSTANCE_PROFILE_1_SLICE_GFX:
    case NVML_GPU_INSTANCE_PROFILE_2_SLICE_GFX:
    case NVML_GPU_INSTANCE_PROFILE_4_SLICE_GFX:
    case NVML_GPU_INSTANCE_PROFILE_3_SLICE_GFX: return name + "+gfx";
    default: return name;
  }
}

// The driver says "MIG 1g.5gb"; Sandman says "1g.5gb".
std::string stripMig(const char* name) {
  std::string s(name, strnlen(name, NVML_DEVICE_NAME_V2_BUFFER_SIZE));
  return s.rfind("MIG ", 0) == 0 ? s.substr(4) : s;
}

template <typename Fn, typename... Args>
std::optional<unsigned> optionalValue(Fn fn, Args... args) {
  unsigned v = 0;
  if (fn(args..., &v) != NVML_SUCCESS) return std::nullopt;
  return v;
}

}  // namespace

Result<std::vector<GpuInfo>> NvmlBackend::listGpus() { return inventory(false); }

Result<std::vector<GpuInfo>> NvmlBackend::sampleGpus() { return inventory(true); }

Result<std::vector<GpuInfo>> NvmlBackend::inventory(bool gpm_sample) {
  std::lock_guard<std::mutex> lock(mu_);
  unsigned count = 0;
  nvmlReturn_t rc = api_.DeviceGetCount(&count);
  if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceGetCount_v2", rc));
  std::vector<GpuInfo> gpus;
  for (unsigned i = 0; i < count; ++i) {
    auto gpu = readGpu(i, gpm_sample);
    if (!gpu.ok()) return gpu.error();
    gpus.push_back(std::move(gpu).value());
  }
  return gpus;
}

Result<GpuInfo> NvmlBackend::readGpu(unsigned index, bool gpm_sample) const {
  const nvml_internal::MigWalk walk{api_.DeviceGetMaxMigDeviceCount, api_.DeviceGetMigDeviceHandleByIndex,
                                    api_.DeviceGetGpuInstanceId, api_.DeviceGetComputeInstanceId};
  GpuInfo gpu;
  gpu.index = static_cast<int>(index);
  auto dev = device(gpu.index);
  if (!dev.ok()) return dev.error();
  char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
  nvmlReturn_t rc = api_.DeviceGetUUID(*dev, buf, sizeof buf);
  if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceGetUUID", rc));
  gpu.uuid = buf;
  char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
  rc = api_.DeviceGetName(*dev, name, sizeof name);
  if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceGetName", rc));
  gpu.name = name;
  nvmlMemory_t mem{};
  rc = memoryInfo(*dev, &mem);
  if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceGetMemoryInfo", rc));
  gpu.memory_total_mib = mem.total / kMiB;
  gpu.memory_used_mib = mem.used / kMiB;
  gpu.memory_free_mib = mem.free / kMiB;
  readTelemetry(*dev, &gpu);

  unsigned current = 0, pending = 0;
  rc = api_.DeviceGetMigMode(*dev, &current, &pending);
  if (rc == NVML_SUCCESS) {
    gpu.mig_enabled = current == NVML_DEVICE_MIG_ENABLE;
    gpu.mig_pending = pending == NVML_DEVICE_MIG_ENABLE;
  } else if (rc != NVML_ERROR_NOT_SUPPORTED) {
    return unavailable(error("nvmlDeviceGetMigMode", rc));
  }
  if (!gpu.mig_enabled) {
    nvml_internal::readBusy(*busy_, walk, *dev, &gpu, gpm_sample);
    return gpu;
  }
  const std::string profile_key = gpu.uuid + "\n" + gpu.name;
  auto cached = profile_cache_.find(profile_key);
  if (cached != profile_cache_.end()) {
    gpu.profiles = cached->second;
  } else {
    auto profiles = readProfiles(*dev);
    if (!profiles.ok()) return profiles.error();
    gpu.profiles = std::move(profiles).value();
    // An empty list may be a driver still settling after a mode change: not cached.
    if (!gpu.profiles.empty()) profile_cache_.emplace(profile_key, gpu.profiles);
  }
  for (const auto& p : gpu.profiles) {
    for (int s : p.placement_starts) {
      gpu.memory_slice_count = std::max(gpu.memory_slice_count, s + p.memory_slices);
    }
  }
  Status st = readInstances(*dev, &gpu);
  if (!st.ok()) return st.error();
  nvml_internal::readBusy(*busy_, walk, *dev, &gpu, gpm_sample);
  return gpu;
}

// Each value is optional: NVML says NOT_SUPPORTED for some (utilisation in MIG mode).
void NvmlBackend::readTelemetry(nvmlDevice_t dev, GpuInfo* gpu) const {
  nvmlUtilization_t util{};
  if (api_.DeviceGetUtilizationRates(dev, &util) == NVML_SUCCESS) {
    gpu->telemetry.utilization_gpu = util.gpu;
    gpu->telemetry.utilization_memory = util.memory;
  }
  gpu->telemetry.temperature_c =
      optionalValue(api_.DeviceGetTemperature, dev, NVML_TEMPERATURE_GPU);
  gpu->telemetry.power_usage_mw = optionalValue(api_.DeviceGetPowerUsage, dev);
  gpu->telemetry.power_limit_mw = optionalValue(api_.DeviceGetEnforcedPowerLimit, dev);
}

nvmlReturn_t NvmlBackend::memoryInfo(nvmlDevice_t dev, nvmlMemory_t* out) const {
  if (api_.DeviceGetMemoryInfoV2 != nullptr) {
    nvmlMemory_v2_t v2{};
    v2.version = nvmlMemory_v2;
    if (api_.DeviceGetMemoryInfoV2(dev, &v2) == NVML_SUCCESS) {
      *out = nvmlMemory_t{v2.total, v2.free, v2.used};
      return NVML_SUCCESS;
    }
  }
  return api_.DeviceGetMemoryInfo(dev, out);
}

// Profile indices 0.. until INVALID_ARGUMENT; NOT_SUPPORTED ones are skipped.
Result<std::vector<MigProfile>> NvmlBackend::readProfiles(nvmlDevice_t dev) const {
  nvmlMemory_t mem{};
  uint64_t total_mib = memoryInfo(dev, &mem) == NVML_SUCCESS ? mem.total / kMiB : 0;
  std::vector<MigProfile> out;
  for (unsigned idx = 0; idx < 64; ++idx) {
    nvmlGpuInstanceProfileInfo_t info{};
    std::string name;
    nvmlReturn_t rc = NVML_ERROR_FUNCTION_NOT_FOUND;
    if (api_.DeviceGetGpuInstanceProfileInfoV != nullptr) {
      nvmlGpuInstanceProfileInfo_v2_t v2{};
      v2.version = nvmlGpuInstanceProfileInfo_v2;
      rc = api_.DeviceGetGpuInstanceProfileInfoV(dev, idx, &v2);
      if (rc == NVML_SUCCESS) {
        info = {v2.id,          v2.isP2pSupported, v2.sliceCount,    v2.instanceCount,
                v2.multiprocessorCount, v2.copyEngineCount, v2.decoderCount, v2.encoderCount,
                v2.jpegCount,   v2.ofaCount,       v2.memorySizeMB};
        name = stripMig(v2.name);
      }
    }
    if (rc == NVML_ERROR_FUNCTION_NOT_FOUND || rc == NVML_ERROR_ARGUMENT_VERSION_MISMATCH) {
      rc = api_.DeviceGetGpuInstanceProfileInfo(dev, idx, &info);
    }
    if (rc == NVML_ERROR_INVALID_ARGUMENT) break;
    if (rc == NVML_ERROR_NOT_SUPPORTED) continue;
    if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceGetGpuInstanceProfileInfo", rc));

    MigProfile p;
    p.profile_id = static_cast<int>(info.id);
    p.name = name.empty() ? profileName(info, idx, total_mib) : name;
    p.compute_slices = static_cast<int>(info.sliceCount);
    p.memory_mib = info.memorySizeMB;
    p.instance_count = static_cast<int>(info.instanceCount);
    unsigned n = 0;
    rc = api_.DeviceGetGpuInstancePossiblePlacements(dev, info.id, nullptr, &n);
    std::vector<nvmlGpuInstancePlacement_t> placements(n);
    if (rc == NVML_SUCCESS && n > 0) {
      rc = api_.DeviceGetGpuInstancePossiblePlacements(dev, info.id, placements.data(), &n);
      placements.resize(std::min<size_t>(n, placements.size()));
    }
    if (rc != NVML_SUCCESS) {
      return unavailable(error("nvmlDeviceGetGpuInstancePossiblePlacements_v2", rc));
    }
    for (const auto& pl : placements) {
      p.placement_starts.push_back(static_cast<int>(pl.start));
      p.memory_slices = static_cast<int>(pl.size);
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<NvmlBackend::ComputeInstance> NvmlBackend::computeInstances(
    nvmlGpuInstance_t gi) const {
  std::vector<ComputeInstance> out;
  for (unsigned idx = 0; idx < 64; ++idx) {
    nvmlComputeInstanceProfileInfo_t cp{};
    nvmlReturn_t rc = api_.GpuInstanceGetComputeInstanceProfileInfo(
        gi, idx, NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &cp);
    if (rc == NVML_ERROR_INVALID_ARGUMENT) break;
    if (rc != NVML_SUCCESS) continue;
    // The buffer must hold the profile's instanceCount; a little more costs nothing.
    std::vector<nvmlComputeInstance_t> cis(cp.instanceCount + 8);
    unsigned n = 0;
    if (api_.GpuInstanceGetComputeInstances(gi, cp.id, cis.data(), &n) != NVML_SUCCESS) continue;
    for (unsigned i = 0; i < n && i < cis.size(); ++i) {
      ComputeInstance ci;
      ci.handle = cis[i];
      ci.slices = cp.sliceCount;
      if (api_.ComputeInstanceGetInfo(cis[i], &ci.info) == NVML_SUCCESS) out.push_back(ci);
    }
  }
  return out;
}

std::vector<NvmlBackend::MigDevice> NvmlBackend::readMigDevices(nvmlDevice_t dev) const {
  std::vector<MigDevice> out;
  unsigned max = 0;
  if (api_.DeviceGetMaxMigDeviceCount(dev, &max) != NVML_SUCCESS) return out;
  for (unsigned i = 0; i < max; ++i) {
    nvmlDevice_t mig = nullptr;
    if (api_.DeviceGetMigDeviceHandleByIndex(dev, i, &mig) != NVML_SUCCESS) continue;
    MigDevice d;
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (api_.DeviceGetGpuInstanceId(mig, &d.gi) != NVML_SUCCESS ||
        api_.DeviceGetComputeInstanceId(mig, &d.ci) != NVML_SUCCESS ||
        api_.DeviceGetUUID(mig, uuid, sizeof uuid) != NVML_SUCCESS) {
      continue;
    }
    d.uuid = uuid;
    nvmlMemory_t mem{};
    if (memoryInfo(mig, &mem) == NVML_SUCCESS) {
      d.total_mib = mem.total / kMiB;
      d.used_mib = mem.used / kMiB;
    }
    out.push_back(std::move(d));
  }
  return out;
}

// One MigInstance per GPU instance, with its full-size compute instance (or,
// failing that, its first one; none: empty uuid and compute_instance_id -1).
Status NvmlBackend::readInstances(nvmlDevice_t dev, GpuInfo* gpu) const {
  const std::vector<MigDevice> devices = readMigDevices(dev);
  for (const auto& p : gpu->profiles) {
    std::vector<nvmlGpuInstance_t> gis(static_cast<size_t>(std::max(p.instance_count, 0)) + 8);
    unsigned n = 0;
    nvmlReturn_t rc =
        api_.DeviceGetGpuInstances(dev, static_cast<unsigned>(p.profile_id), gis.data(), &n);
    if (rc == NVML_ERROR_NOT_FOUND) continue;
    if (rc != NVML_SUCCESS) return unavailable(error("nvmlDeviceGetGpuInstances", rc));
    for (unsigned i = 0; i < n && i < gis.size(); ++i) {
      nvmlGpuInstanceInfo_t info{};
      if (api_.GpuInstanceGetInfo(gis[i], &info) != NVML_SUCCESS) continue;  // just destroyed
      MigInstance inst;
      inst.gpu_instance_id = static_cast<int>(info.id);
      inst.compute_instance_id = -1;
      inst.profile_id = p.profile_id;
      inst.profile_name = p.name;
      inst.placement_start = static_cast<int>(info.placement.start);
      inst.placement_size = static_cast<int>(info.placement.size);
      inst.memory_total_mib = p.memory_mib;
      auto cis = computeInstances(gis[i]);
      std::sort(cis.begin(), cis.end(), [&](const ComputeInstance& a, const ComputeInstance& b) {
        bool a_full = a.slices == static_cast<unsigned>(p.compute_slices);
        bool b_full = b.slices == static_cast<unsigned>(p.compute_slices);
        return a_full != b_full ? a_full : a.info.id < b.info.id;
      });
      if (!cis.empty()) {
        inst.compute_instance_id = static_cast<int>(cis.front().info.id);
        for (const auto& d : devices) {
          if (d.gi != info.id || d.ci != cis.front().info.id) continue;
          inst.uuid = d.uuid;
          if (d.total_mib > 0) inst.memory_total_mib = d.total_mib;
          inst.memory_used_mib = d.used_mib;
        }
      }
      gpu->instances.push_back(std::move(inst));
    }
  }
  std::sort(gpu->instances.begin(), gpu->instances.end(),
            [](const MigInstance& a, const MigInstance& b) {
              return a.placement_start < b.placement_start;
            });
  return Status();
}

}  // namespace sandman
