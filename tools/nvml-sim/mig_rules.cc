#include "mig_rules.h"

#include <algorithm>

#include "uuid5.h"

namespace nvmlsim {
namespace {

bool overlaps(unsigned a_start, unsigned a_size, unsigned b_start, unsigned b_size) {
  return a_start < b_start + b_size && b_start < a_start + a_size;
}

unsigned usedComputeSlices(const GpuMigState& gpu) {
  unsigned used = 0;
  for (const auto& gi : gpu.gis) used += gi.slices;
  return used;
}

// Driver preference for placements without an explicit one (8-slice GPUs,
// from captures in mig.md §1.8); any other valid start follows, lowest first.
std::vector<unsigned> preferredStarts(const Model& model, const GiProfile& profile) {
  std::vector<unsigned> order;
  if (model.memory_slices == 8) {
    switch (profile.placement_size) {
      case 1: order = {6, 4}; break;
      case 2: order = {4, 0}; break;
      case 4: order = {4, 0}; break;
      default: break;
    }
  }
  std::vector<unsigned> out;
  for (unsigned s : order) {
    if (profile.validStart(s)) out.push_back(s);
  }
  for (unsigned s : profile.placementStarts()) {
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

}  // namespace

unsigned giIdFor(const Model& model, unsigned start, unsigned size) {
  // Slots of a binary tree over the memory slices, root first.
  return model.memory_slices / size - 1 + start / size;
}

nvmlReturn_t checkGiPlacement(const Model& model, const GpuMigState& gpu, const GiProfile& profile,
                              unsigned start) {
  if (!profile.validStart(start)) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned same = 0;
  for (const auto& gi : gpu.gis) {
    if (gi.profile_id == profile.id) ++same;
    if (overlaps(gi.start, gi.size, start, profile.placement_size)) {
      return NVML_ERROR_INSUFFICIENT_RESOURCES;
    }
  }
  if (same >= profile.instance_count) return NVML_ERROR_INSUFFICIENT_RESOURCES;
  if (usedComputeSlices(gpu) + profile.slices > model.compute_slices) {
    return NVML_ERROR_INSUFFICIENT_RESOURCES;
  }
  return NVML_SUCCESS;
}

std::optional<unsigned> defaultGiStart(const Model& model, const GpuMigState& gpu,
                                       const GiProfile& profile) {
  for (unsigned s : preferredStarts(model, profile)) {
    if (checkGiPlacement(model, gpu, profile, s) == NVML_SUCCESS) return s;
  }
  return std::nullopt;
}

unsigned remainingGiCapacity(const Model& model, const GpuMigState& gpu, const GiProfile& profile) {
  // Same-size aligned placements: taking the lowest free start each time is optimal.
  GpuMigState trial = gpu;
  unsigned count = 0;
  for (bool added = true; added;) {
    added = false;
    for (unsigned s : profile.placementStarts()) {
      if (checkGiPlacement(model, trial, profile, s) == NVML_SUCCESS) {
        addGi(model, trial, profile, s, 0);
        ++count;
        added = true;
        break;
      }
    }
  }
  return count;
}

GiState& addGi(const Model& model, GpuMigState& gpu, const GiProfile& profile, unsigned start,
               unsigned long long serial) {
  GiState gi;
  gi.id = giIdFor(model, start, profile.placement_size);
  gi.profile_id = profile.id;
  gi.start = start;
  gi.size = profile.placement_size;
  gi.slices = profile.slices;
  gi.serial = serial;
  gpu.gis.push_back(gi);
  return gpu.gis.back();
}

unsigned ciInstanceCount(const GiState& gi, const CiProfile& ci) { return gi.slices / ci.slices; }

std::optional<unsigned> freeCiStart(const GiState& gi, const CiProfile& ci) {
  unsigned same = 0;
  for (const auto& c : gi.cis) same += c.profile_id == ci.id ? 1 : 0;
  if (same >= ciInstanceCount(gi, ci)) return std::nullopt;
  for (unsigned s = 0; s + ci.slices <= gi.slices; s += ci.slices) {
    bool taken = false;
    for (const auto& c : gi.cis) taken = taken || overlaps(c.start, c.size, s, ci.slices);
    if (!taken) return s;
  }
  return std::nullopt;
}

unsigned remainingCiCapacity(const GiState& gi, const CiProfile& ci) {
  GiState trial = gi;
  unsigned count = 0;
  while (auto s = freeCiStart(trial, ci)) {
    trial.cis.push_back(CiState{1000 + count, ci.id, *s, ci.slices, 0, ""});
    ++count;
  }
  return count;
}

nvmlReturn_t addCi(const std::string& gpu_uuid, GiState& gi, const CiProfile& ci,
                   unsigned long long serial, CiState** out) {
  auto start = freeCiStart(gi, ci);
  if (!start) return NVML_ERROR_INSUFFICIENT_RESOURCES;
  unsigned id = 0;
  while (std::any_of(gi.cis.begin(), gi.cis.end(), [&](const CiState& c) { return c.id == id; })) {
    ++id;
  }
  gi.cis.push_back(CiState{id, ci.id, *start, ci.slices, serial,
                           migUuid(gpu_uuid, gi.id, id, serial)});
  *out = &gi.cis.back();
  return NVML_SUCCESS;
}

std::string migUuid(const std::string& gpu_uuid, unsigned gi_id, unsigned ci_id,
                    unsigned long long serial) {
  return "MIG-" + uuid5(gpu_uuid + "/" + std::to_string(gi_id) + "/" + std::to_string(ci_id) +
                        "/" + std::to_string(serial));
}

bool seedGpu(const Model& model, const std::string& gpu_uuid,
             const std::vector<SeedInstance>& seeds, GpuMigState* out, std::string* error) {
  *out = GpuMigState{};
  for (size_t i = 0; i < seeds.size(); ++i) {
    const SeedInstance& seed = seeds[i];
    const std::string what = "mig_instances[" + std::to_string(i) + "] (" +
                             seed.profile->name + " at " + std::to_string(seed.start) + ")";
    nvmlReturn_t rc = checkGiPlacement(model, *out, *seed.profile, seed.start);
    if (rc == NVML_ERROR_INVALID_ARGUMENT) {
      *error = what + ": not a valid placement of the profile";
      return false;
    }
    if (rc != NVML_SUCCESS) {
      *error = what + ": Insufficient Resources (overlaps another instance or passes a limit)";
      return false;
    }
    GiState& gi = addGi(model, *out, *seed.profile, seed.start, 0);
    if (seed.compute_instances > 1) {
      *error = what + ": compute_instances must be 0 or 1 (one full-size compute instance)";
      return false;
    }
    if (seed.compute_instances == 1) {
      CiState* ci = nullptr;
      const CiProfile* full = nullptr;
      for (unsigned idx = 0; idx < NVML_COMPUTE_INSTANCE_PROFILE_COUNT && !full; ++idx) {
        const CiProfile* p = ciProfileByIndex(idx, gi.slices);
        if (p && p->slices == gi.slices) full = p;
      }
      if (!full || addCi(gpu_uuid, gi, *full, 0, &ci) != NVML_SUCCESS) {
        *error = what + ": no full-size compute instance profile";
        return false;
      }
    }
  }
  return true;
}

}  // namespace nvmlsim
