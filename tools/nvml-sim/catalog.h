// The simulator's catalog of GPU models: names, memory, power, and for MIG
// models every GPU-instance profile with its NVML index, id, sizes, limits and
// valid placements (reference/mig.md §1). Constant tables; thread-safe.
#pragma once

#include <span>
#include <string_view>

namespace nvmlsim {

struct GiProfile {
  unsigned index;  // NVML_GPU_INSTANCE_PROFILE_* (what GetGpuInstanceProfileInfo takes)
  unsigned id;     // info.id (what Create*/GetGpuInstances/PossiblePlacements take)
  const char* name;  // "1g.5gb"; NVML's v2 struct says "MIG 1g.5gb"
  unsigned slices;   // compute slices
  unsigned long long memory_mb;
  unsigned instance_count;
  unsigned sm, ce, dec, enc, jpg, ofa;
  unsigned placement_size;  // memory slices
  unsigned starts[8];
  unsigned start_count;

  std::span<const unsigned> placementStarts() const { return {starts, start_count}; }
  bool validStart(unsigned start) const;
};

struct Model {
  const char* key;       // config "model" value, e.g. "A100-SXM4-40GB"
  const char* aliases;   // comma-separated other accepted keys
  const char* name;      // nvmlDeviceGetName
  unsigned long long memory_mib;
  unsigned power_limit_mw;  // default enforced limit
  unsigned memory_slices;   // 0: no MIG
  unsigned compute_slices;
  std::span<const GiProfile> profiles;

  bool migCapable() const { return memory_slices > 0; }
  // GPU Performance Monitoring arrived with Hopper (H100, H200).
  bool hasGpm() const { return key[0] == 'H'; }
  const GiProfile* profileByIndex(unsigned index) const;
  const GiProfile* profileById(unsigned id) const;
  const GiProfile* profileByName(std::string_view name) const;
};

// Case-insensitive match on key or alias; nullptr when unknown.
const Model* findModel(std::string_view key);
// "A100-SXM4-40GB, A100-SXM4-80GB, ..." for error messages.
const char* knownModels();

// Compute-instance profiles (index == id): slices {1,2,3,4,7} that fit the GI.
struct CiProfile {
  unsigned id;
  unsigned slices;
};
const CiProfile* ciProfileByIndex(unsigned index, unsigned gi_slices);

}  // namespace nvmlsim
