// Small helpers shared by the exported-call files: handle conversions and
// filling NVML structs from the catalog. Used under withSim only.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "simulator.h"

namespace nvmlsim {

inline nvmlDevice_t asDevice(void* p) { return static_cast<nvmlDevice_t>(p); }
inline nvmlGpuInstance_t asGi(void* p) { return static_cast<nvmlGpuInstance_t>(p); }
inline nvmlComputeInstance_t asCi(void* p) { return static_cast<nvmlComputeInstance_t>(p); }

inline void* giHandle(Simulator& sim, unsigned gpu, const GiState& gi) {
  return sim.handle({HandleKind::kGpuInstance, gpu, gi.id, 0, gi.serial});
}
inline void* ciHandle(Simulator& sim, unsigned gpu, const GiState& gi, const CiState& ci) {
  return sim.handle({HandleKind::kComputeInstance, gpu, gi.id, ci.id, ci.serial});
}
inline void* migHandle(Simulator& sim, unsigned gpu, const GiState& gi, const CiState& ci) {
  return sim.handle({HandleKind::kMigDevice, gpu, gi.id, ci.id, ci.serial});
}

// The GPU's catalog profile with this id (GIs only hold ids).
inline const GiProfile* giProfile(const Simulator& sim, unsigned gpu, unsigned profile_id) {
  return sim.gpu(gpu)->model->profileById(profile_id);
}

// MIG devices of a GPU in NVML index order: by GI id, then CI id.
struct MigDeviceRef {
  const GiState* gi;
  const CiState* ci;
};
inline std::vector<MigDeviceRef> migDevices(const GpuMigState& gpu) {
  std::vector<MigDeviceRef> out;
  for (const auto& gi : gpu.gis) {
    for (const auto& ci : gi.cis) out.push_back({&gi, &ci});
  }
  std::sort(out.begin(), out.end(), [](const MigDeviceRef& a, const MigDeviceRef& b) {
    return a.gi->id != b.gi->id ? a.gi->id < b.gi->id : a.ci->id < b.ci->id;
  });
  return out;
}

template <typename Info>
void fillGiProfileInfo(const GiProfile& p, Info* info) {
  info->id = p.id;
  info->isP2pSupported = 0;
  info->sliceCount = p.slices;
  info->instanceCount = p.instance_count;
  info->multiprocessorCount = p.sm;
  info->copyEngineCount = p.ce;
  info->decoderCount = p.dec;
  info->encoderCount = p.enc;
  info->jpegCount = p.jpg;
  info->ofaCount = p.ofa;
  info->memorySizeMB = p.memory_mb;
}

constexpr unsigned long long kMiB = 1024ull * 1024ull;

}  // namespace nvmlsim
