// The MIG rules the driver enforces, over one GPU's layout: valid placements,
// per-profile instance counts, memory-slice overlap, the compute-slice limit,
// driver-like GPU-instance ids and default placements, and compute instances
// within a GPU instance. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "catalog.h"
#include "gpu/nvml_api.h"
#include "mig_state.h"

namespace nvmlsim {

// The GI id the driver gives a placement: 7g 0; 4-slice at 0/4 -> 1/2;
// 2-slice at 0/2/4/6 -> 3..6; 1-slice at s -> 7+s (A100 captures, mig.md §1.8).
unsigned giIdFor(const Model& model, unsigned start, unsigned size);

// NVML_SUCCESS when profile can be created at start now; INVALID_ARGUMENT for
// a start that is no placement of the profile; INSUFFICIENT_RESOURCES when the
// profile's instanceCount is reached, memory slices overlap, or the compute
// slices would pass the GPU's total.
nvmlReturn_t checkGiPlacement(const Model& model, const GpuMigState& gpu, const GiProfile& profile,
                              unsigned start);

// Where nvmlDeviceCreateGpuInstance (no placement) puts the profile, like the
// driver: 1g first at 6 then 4, 2g first at 4:2, 3g first at 4:4.
std::optional<unsigned> defaultGiStart(const Model& model, const GpuMigState& gpu,
                                       const GiProfile& profile);

// How many more instances of the profile can be created now.
unsigned remainingGiCapacity(const Model& model, const GpuMigState& gpu, const GiProfile& profile);

// Adds a GI (caller checked it) and returns it.
GiState& addGi(const Model& model, GpuMigState& gpu, const GiProfile& profile, unsigned start,
               unsigned long long serial);

// Compute instances: profile `ci` fits gi (ciProfileByIndex said so).
unsigned ciInstanceCount(const GiState& gi, const CiProfile& ci);
std::optional<unsigned> freeCiStart(const GiState& gi, const CiProfile& ci);
unsigned remainingCiCapacity(const GiState& gi, const CiProfile& ci);
// Adds a CI at the first free placement; INSUFFICIENT_RESOURCES when none.
nvmlReturn_t addCi(const std::string& gpu_uuid, GiState& gi, const CiProfile& ci,
                   unsigned long long serial, CiState** out);

// "MIG-<v5 uuid>" of a MIG device: stable per creation, new when recreated.
std::string migUuid(const std::string& gpu_uuid, unsigned gi_id, unsigned ci_id,
                    unsigned long long serial);

// Pre-existing instances from the config.
struct SeedInstance {
  const GiProfile* profile = nullptr;
  unsigned start = 0;
  unsigned compute_instances = 1;  // full-size CIs; 0 = GI without CI
};
// Builds a GPU's layout from seeds under the same rules; false + error on a
// seed the driver would refuse.
bool seedGpu(const Model& model, const std::string& gpu_uuid,
             const std::vector<SeedInstance>& seeds, GpuMigState* out, std::string* error);

}  // namespace nvmlsim
