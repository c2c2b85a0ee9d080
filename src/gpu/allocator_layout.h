// The allocator's model of MIG occupancy (internal to gpu/allocator): each
// GPU's used memory slices as a bitmask, per-profile placement masks, and the
// "room left" score. Built per allocate() call; not shared between threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "gpu/allocator.h"

namespace sandman::mig {

using SliceMask = uint32_t;  // bit i = memory slice i

inline constexpr int kMaxLimited = 4;  // profiles whose instance_count binds (+me)

// One profile of one GPU model, with a mask per valid placement.
struct Shape {
  const MigProfile* profile = nullptr;
  int compute = 0;
  int memory = 0;
  int weight = 0;       // compute * memory: how much a lost instance of it costs
  int limit_slot = -1;  // index into Occupancy::limited when instance_count < placements
  std::vector<int> starts;        // ascending
  std::vector<SliceMask> masks;   // parallel to starts
};

// The profile table of one GPU model, shared by the GPUs of that model.
struct Model {
  std::string_view name;
  size_t profile_count = 0;
  int total_compute = 0;  // 7, or 4 on A30
  int memory_slices = 0;  // 8, or 4 on A30
  std::vector<Shape> shapes;  // GpuInfo::profiles order
  std::vector<int> limited;   // shape index per limit slot
  std::array<int8_t, 64> by_id;  // shape index by profile id below 64, -1 = none
  size_t key_space = 0;  // number of occupancy keys; 0 when they are too wide to memoise
  std::vector<int32_t> memo;  // room by key, -1 = not computed; allocated on first use
  int compute_shift = 0, limit_shift = 0;

  int shapeByName(std::string_view profile_name) const;  // -1 when absent
  int shapeById(int profile_id) const;
  // Compute slices of whatever sits at a placement whose profile is unknown:
  // the most any profile with that placement takes (conservative).
  int computeAt(int start, int size) const;
};

// What is in use on one GPU: instances and held slots together.
struct Occupancy {
  SliceMask used = 0;
  int compute = 0;
  std::array<uint8_t, kMaxLimited> limited{};  // instances of each limited profile
  bool whole_held = false;   // a session holds the whole (MIG-off) GPU
  SliceMask held_starts = 0; // placement starts that sessions hold
};

bool fits(const Model& m, const Occupancy& o, const Shape& s, SliceMask placement);
Occupancy plus(const Model& m, Occupancy o, const Shape& s, SliceMask placement);
// How many more instances of `s` fit, counted alone.
int capacity(const Model& m, const Occupancy& o, const Shape& s);
// The occupancy's index into Model::memo (equal keys, equal room), or -1.
int64_t stateKey(const Model& m, const Occupancy& o);
// Sum over shapes of weight * capacity: the room left on the GPU. Memoised.
int room(Model& m, const Occupancy& o);

// The host for one call: a model and an occupancy per GPU, held slots applied.
class Host {
 public:
  Host(std::span<const GpuInfo> gpus, const std::vector<HeldSlot>& held);
  size_t size() const { return gpus_.size(); }
  const GpuInfo& gpu(size_t i) const { return gpus_[i]; }
  Model* model(size_t i) const { return per_[i].model < 0 ? nullptr : models_[per_[i].model].get(); }
  int modelIndex(size_t i) const { return per_[i].model; }
  size_t modelCount() const { return models_.size(); }
  Model& modelAt(size_t k) const { return *models_[k]; }
  const Occupancy& occupancy(size_t i) const { return per_[i].occ; }
  bool held(size_t i, const MigInstance& inst) const;
  // Whether GPU i has an existing MIG device that no session holds.
  bool hasUnheld(size_t i) const { return (per_[i].device_starts & ~per_[i].occ.held_starts) != 0; }

 private:
  int modelFor(const GpuInfo& gpu);
  void addInstances(size_t i);
  void addHeld(const HeldSlot& h);
  int findGpu(std::string_view uuid) const;
  int findByDevice(std::string_view device_uuid) const;

  std::span<const GpuInfo> gpus_;
  std::vector<std::unique_ptr<Model>> models_;
  struct PerGpu {
    Occupancy occ;
    SliceMask inst_used = 0;      // by listed instances only (dedupes held slots)
    SliceMask device_starts = 0;  // starts of listed instances that have a MIG device uuid
    int model = -1;           // -1 without MIG
  };
  std::vector<PerGpu> per_;
  struct Entry {
    uint32_t tag = 0;  // high hash bits: most probes end without a string compare
    int32_t gpu = -1;
  };
  std::vector<Entry> table_;  // open-addressed GPU uuid -> index
  uint64_t table_mask_ = 0;
};

}  // namespace sandman::mig
