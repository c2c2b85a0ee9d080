// MIG allocator: decides which GPU slice a new session gets (an existing MIG
// instance, a placement for a new one, or a whole GPU). Pure rules over
// GpuInfo and what sessions hold; no I/O. Thread-safe: stateless functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "gpu/gpu_backend.h"

namespace sandman {

// kStatic: hand out MIG instances that already exist; never create.
// kDynamic: create an instance for the session, unless an existing one that
// no session holds fits the request (then it is handed out, create=false).
enum class MigMode { kStatic, kDynamic };

// What a session asks for. mig_profile "whole" asks for a whole GPU with MIG
// off. Neither field set: the default profile (see allocate()).
struct SlotRequest {
  std::optional<std::string> mig_profile;
  std::optional<std::string> mig_instance_uuid;
  std::optional<std::string> gpu_product;  // Kubernetes only: the model (GPU feature discovery's product label)
  // Allocation by need (gpu/need_allocator.h) instead of a profile: memory in
  // decimal GB and "inference" | "training". allocate() itself ignores them.
  std::optional<double> gpu_memory_gb{};
  std::optional<std::string> workload{};
};

// What an active session holds or has reserved. A dynamic reservation may
// not exist in NVML yet, so its placement counts as occupied on its own.
struct HeldSlot {
  std::string gpu_uuid;
  std::string device_uuid;  // MIG uuid (static/created), GPU uuid (whole), "" (not created yet)
  int placement_start = -1;
  int placement_size = 0;
  bool whole = false;
  // Profile name when known (a dynamic reservation not created yet). Lets the
  // per-profile instance limits (the +me profiles allow 1) and the compute
  // limit count it exactly; without it the compute is taken conservatively.
  std::string profile;
};

struct Allocation {
  int gpu_index = -1;
  std::string gpu_uuid;       // the physical GPU
  std::string profile;        // MIG profile name, or "whole"
  int profile_id = -1;        // NVML profile id; -1 for whole
  int placement_start = -1;   // -1 for whole
  int placement_size = 0;
  std::string device_uuid;    // existing MIG uuid, or the GPU uuid when whole; "" when create
  bool create = false;        // dynamic: the caller creates the instance at this placement
  bool whole = false;
};

// Chooses a slot for `req` with Sandman's placement policy.
//
// Request rules:
// - both fields set: kInvalid.
// - mig_instance_uuid: that instance, in either mode, unless a session holds
//   it (kConflict). An uuid that names no MIG instance on this host is
//   kInvalid, not kNotFound: the request (POST /sessions) is well-addressed,
//   one of its fields refers to nothing, exactly like an unknown profile.
// - mig_profile that no MIG-enabled GPU of the host has: kInvalid listing
//   the valid names (and "whole" where a GPU has MIG off). An explicit
//   profile is only ever served by a MIG GPU.
// - "whole": a GPU with MIG off that nobody holds; kInvalid if the host has
//   none, kConflict if all are held.
// - neither: the default profile. `default_profile_class` is a class such as
//   "3g" or a full name such as "3g.20gb"; on each GPU it resolves to the
//   profile of that exact name if the GPU has it, else to the profile with
//   that many compute slices and no "+" suffix (smallest memory first:
//   3g.20gb on A100-40GB, 3g.40gb on 80 GB parts, 3g.71gb on H200). A GPU
//   without such a profile (A30 has no 3g) falls back to its largest profile
//   below that size (2g.12gb on A30), else its smallest above. If no MIG GPU
//   has room, a free MIG-off GPU is handed out whole (the seed's FAQ: GPUs
//   without MIG fall back to whole-GPU allocation). MIG GPUs go first so
//   whole GPUs stay free for those who ask for one.
// - no room: kConflict naming what is free now (free instances, and in
//   dynamic mode how many of each profile could still be created).
// - a default class that is neither a profile nor "<n>g": kInvalid.
//
// Both modes first hand out an existing instance of the profile that no
// session holds (lowest GPU index, lowest placement); static mode stops
// there. Dynamic mode otherwise picks a placement over all GPUs, keeping
// room for larger profiles: each candidate is scored by the
// weighted room it destroys, i.e. the drop in sum over profiles q of
// weight(q) * (how many more q instances still fit on that GPU), with
// weight = compute slices * memory slices (7g 56, 4g 16, 3g 12, 2g 4, ...).
// The smallest drop wins; ties go to a partly used GPU over an empty one
// (pack), then the fuller GPU, then the lowest GPU index and placement.
// Held placements count as occupied in addition to GpuInfo's instances;
// the limits are memory-slice overlap, the GPU's compute slices (7, A30 4)
// and each profile's instance count.
//
// `gpus` is taken in GPU index order.
Result<Allocation> allocate(const std::vector<GpuInfo>& gpus, const std::vector<HeldSlot>& held,
                            const SlotRequest& req, MigMode mode,
                            const std::string& default_profile_class);

// The baseline: same request rules, but dynamic mode takes the first GPU and
// its lowest free valid placement.
Result<Allocation> allocateFirstFit(const std::vector<GpuInfo>& gpus,
                                    const std::vector<HeldSlot>& held, const SlotRequest& req,
                                    MigMode mode, const std::string& default_profile_class);

// How many more instances of each profile (by name) fit on `gpu` now, each
// counted alone (dynamic-mode room; GET /gpus/profiles). Only the slots in
// `held` whose gpu_uuid is this GPU's count. A GPU with MIG off gives
// {"whole": 1} when free and {"whole": 0} when held.
std::map<std::string, int> remainingCapacity(const GpuInfo& gpu, const std::vector<HeldSlot>& held);
// The same for every GPU of the host, in `gpus` order, matching `held` to
// GPUs once (linear, where calling the one-GPU form per GPU is quadratic).
std::vector<std::map<std::string, int>> remainingCapacities(const std::vector<GpuInfo>& gpus,
                                                            const std::vector<HeldSlot>& held);

}  // namespace sandman
