// MIG GPUs as NVML reports them (../shared/reference/mig.md section 1), for
// tests of allocation by need and layout advice. Header-only; not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "gpu/gpu_backend.h"

namespace sandman::testing {

inline GpuInfo migA100_80(int index) {
  const std::vector<int> one{0, 1, 2, 3, 4, 5, 6};
  GpuInfo g;
  g.index = index;
  g.uuid = "GPU-a80-" + std::to_string(index);
  g.name = "NVIDIA A100-SXM4-80GB";
  g.memory_total_mib = 81920;
  g.mig_enabled = true;
  g.memory_slice_count = 8;
  g.profiles = {{19, "1g.10gb", 1, 1, 9728, 7, one},      {14, "2g.20gb", 2, 2, 19968, 3, {0, 2, 4}},
                {9, "3g.40gb", 3, 4, 40192, 2, {0, 4}},     {5, "4g.40gb", 4, 4, 40192, 1, {0}},
                {0, "7g.80gb", 7, 8, 80896, 1, {0}},        {20, "1g.10gb+me", 1, 1, 9728, 1, one},
                {15, "1g.20gb", 1, 2, 19968, 4, {0, 2, 4, 6}}};
  return g;
}

inline GpuInfo wholeGpu(int index, const std::string& name, uint64_t mib) {
  GpuInfo g;
  g.index = index;
  g.uuid = "GPU-whole-" + std::to_string(index);
  g.name = name;
  g.memory_total_mib = mib;
  return g;
}

// Adds an existing instance of `profile` at `start` (static layouts).
inline void addMig(GpuInfo& g, const std::string& profile, int start) {
  for (const MigProfile& p : g.profiles) {
    if (p.name != profile) continue;
    MigInstance inst;
    inst.uuid = "MIG-" + g.uuid + "-" + std::to_string(start);
    inst.gpu_instance_id = start + 1;
    inst.profile_id = p.profile_id;
    inst.profile_name = p.name;
    inst.placement_start = start;
    inst.placement_size = p.memory_slices;
    inst.memory_total_mib = p.memory_mib;
    g.instances.push_back(inst);
  }
}

}  // namespace sandman::testing
