#include "gpu/allocator.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <set>
#include <span>
#include <tuple>

#include "gpu/allocator_layout.h"

namespace sandman {
namespace {

using mig::Host;
using mig::Model;
using mig::Occupancy;
using mig::Shape;

enum class Policy { kRoom, kFirstFit };

constexpr const char* kWhole = "whole";

struct Pick {
  size_t gpu = 0;
  int shape = -1;
  size_t placement = 0;
};

Allocation fromPlacement(const GpuInfo& gpu, const Shape& s, size_t p) {
  Allocation a;
  a.gpu_index = gpu.index;
  a.gpu_uuid = gpu.uuid;
  a.profile = s.profile->name;
  a.profile_id = s.profile->profile_id;
  a.placement_start = s.starts[p];
  a.placement_size = s.memory;
  a.create = true;
  return a;
}

Allocation fromInstance(const GpuInfo& gpu, const MigInstance& inst, const Shape& s) {
  Allocation a;
  a.gpu_index = gpu.index;
  a.gpu_uuid = gpu.uuid;
  a.profile = inst.profile_name.empty() ? s.profile->name : inst.profile_name;
  a.profile_id = inst.profile_id;
  a.placement_start = inst.placement_start;
  a.placement_size = inst.placement_size;
  a.device_uuid = inst.uuid;
  return a;
}

Allocation wholeOf(const GpuInfo& gpu) {
  Allocation a;
  a.gpu_index = gpu.index;
  a.gpu_uuid = gpu.uuid;
  a.profile = kWhole;
  a.device_uuid = gpu.uuid;
  a.whole = true;
  return a;
}

bool noSuffix(const Shape& s) { return s.profile->name.find('+') == std::string::npos; }

// The default profile on one model (see allocate() in the header).
int defaultShape(const Model& m, const std::string& cls) {
  if (const int exact = m.shapeByName(cls); exact >= 0) return exact;
  int want = 0;
  size_t i = 0;
  while (i < cls.size() && cls[i] >= '0' && cls[i] <= '9') want = want * 10 + (cls[i++] - '0');
  if (want == 0 || i >= cls.size() || cls[i] != 'g') return -1;
  int best = -1;
  auto better = [&](const Shape& s) {
    if (best < 0) return true;
    const Shape& b = m.shapes[best];
    const int ds = s.compute - want, db = b.compute - want;
    if ((ds <= 0) != (db <= 0)) return ds <= 0;                 // at or below the class first
    if (ds != db) return ds <= 0 ? ds > db : ds < db;           // closest size
    return s.profile->memory_mib < b.profile->memory_mib;       // then the smallest memory
  };
  for (size_t k = 0; k < m.shapes.size(); ++k)
    if (noSuffix(m.shapes[k]) && better(m.shapes[k])) best = static_cast<int>(k);
  return best;
}

std::optional<Pick> pickStatic(const Host& host, const std::vector<int>& shape_of) {
  for (size_t g = 0; g < host.size(); ++g) {
    const int k = host.modelIndex(g);
    if (k < 0 || shape_of[k] < 0 || !host.hasUnheld(g)) continue;
    const Shape& s = host.modelAt(k).shapes[shape_of[k]];
    const auto& insts = host.gpu(g).instances;
    size_t found = insts.size();
    for (size_t i = 0; i < insts.size(); ++i) {
      const MigInstance& inst = insts[i];
      if (inst.profile_id != s.profile->profile_id || inst.uuid.empty() || host.held(g, inst)) continue;
      if (found == insts.size() || inst.placement_start < insts[found].placement_start) found = i;
    }
    if (found < insts.size()) return Pick{g, shape_of[k], found};
  }
  return std::nullopt;
}

std::optional<Pick> pickDynamic(const Host& host, const std::vector<int>& shape_of, Policy policy) {
  // Smallest loss of room, then partly used before empty, fuller first, then order.
  using Key = std::tuple<int, int, int, size_t, size_t>;
  std::optional<Key> best;
  std::optional<Pick> pick;
  // A GPU in the same state as an earlier one cannot beat it (only the
  // index differs, and the lower wins): skip it.
  std::vector<std::vector<uint8_t>> seen(host.modelCount());
  for (size_t g = 0; g < host.size(); ++g) {
    const int k = host.modelIndex(g);
    if (k < 0 || shape_of[k] < 0) continue;
    Model& m = host.modelAt(k);
    const Shape& s = m.shapes[shape_of[k]];
    const Occupancy& o = host.occupancy(g);
    if (o.compute + s.compute > m.total_compute) continue;
    if (const int64_t key = policy == Policy::kRoom ? mig::stateKey(m, o) : -1; key >= 0) {
      if (seen[k].empty()) seen[k].assign(m.key_space, 0);
      if (seen[k][key]) continue;
      seen[k][key] = 1;
    }
    int base = -1;
    for (size_t p = 0; p < s.masks.size(); ++p) {
      if (!mig::fits(m, o, s, s.masks[p])) continue;
      if (policy == Policy::kFirstFit) return Pick{g, shape_of[k], p};
      if (base < 0) base = mig::room(m, o);
      const int loss = base - mig::room(m, mig::plus(m, o, s, s.masks[p]));
      const Key key{loss, o.used == 0 ? 1 : 0, -std::popcount(o.used), g, p};
      if (!best || key < *best) {
        best = key;
        pick = Pick{g, shape_of[k], p};
      }
    }
  }
  return pick;
}

std::optional<size_t> freeWholeGpu(const Host& host) {
  for (size_t g = 0; g < host.size(); ++g)
    if (!host.gpu(g).mig_enabled && !host.occupancy(g).whole_held) return g;
  return std::nullopt;
}

// "1g.10gb x3, 2g.20gb x1, whole GPU x1", or "nothing".
std::string freeNow(const Host& host, MigMode mode) {
  std::map<std::string, int> free;
  int whole = 0;
  for (size_t g = 0; g < host.size(); ++g) {
    const Occupancy& o = host.occupancy(g);
    if (!host.gpu(g).mig_enabled) {
      whole += o.whole_held ? 0 : 1;
      continue;
    }
    const Model* m = host.model(g);
    if (m == nullptr) continue;
    for (const MigInstance& inst : host.gpu(g).instances)
      if (!inst.uuid.empty() && !host.held(g, inst)) ++free[inst.profile_name];
    if (mode == MigMode::kDynamic)
      for (const Shape& s : m->shapes)
        if (const int c = mig::capacity(*m, o, s); c > 0) free[s.profile->name] += c;
  }
  std::string out;
  for (const auto& [name, n] : free) out += (out.empty() ? "" : ", ") + name + " x" + std::to_string(n);
  if (whole > 0) out += (out.empty() ? "" : ", ") + std::string("whole GPU x") + std::to_string(whole);
  if (out.empty()) return "nothing";
  return mode == MigMode::kDynamic && !free.empty() ? out + " (each counted alone)" : out;
}

std::string validProfiles(const Host& host) {
  std::set<std::tuple<int, int, std::string>> names;  // by size, then name
  bool whole = false;
  for (size_t g = 0; g < host.size(); ++g) {
    whole |= !host.gpu(g).mig_enabled;
    if (const Model* m = host.model(g))
      for (const Shape& s : m->shapes) names.insert({s.compute, s.memory, s.profile->name});
  }
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + std::get<2>(n);
  if (whole) out += (out.empty() ? "" : ", ") + std::string(kWhole);
  return out.empty() ? "none (this host has no GPUs)" : out;
}

Result<Allocation> byUuid(const Host& host, const std::string& uuid) {
  for (size_t g = 0; g < host.size(); ++g) {
    const Model* m = host.model(g);
    for (const MigInstance& inst : host.gpu(g).instances) {
      if (inst.uuid != uuid || m == nullptr) continue;
      if (host.held(g, inst)) return conflict("MIG instance " + uuid + " is held by another session");
      const int si = m->shapeById(inst.profile_id);
      if (si < 0) return internal("MIG instance " + uuid + " has a profile its GPU does not list");
      return fromInstance(host.gpu(g), inst, m->shapes[si]);
    }
    if (host.gpu(g).uuid == uuid)
      return invalid(uuid + " is a GPU, not a MIG instance; ask for mig_profile \"whole\" instead");
  }
  return invalid("no MIG instance " + uuid + " on this host; GET /gpus/available lists the free ones");
}

Result<Allocation> wholeGpu(const Host& host, MigMode mode) {
  if (auto g = freeWholeGpu(host)) return wholeOf(host.gpu(*g));
  for (size_t g = 0; g < host.size(); ++g)
    if (!host.gpu(g).mig_enabled) return conflict("every GPU with MIG off is held; free now: " + freeNow(host, mode));
  return invalid("no GPU on this host has MIG off; valid profiles: " + validProfiles(host));
}

Result<Allocation> decide(const std::vector<GpuInfo>& gpus, const std::vector<HeldSlot>& held,
                          const SlotRequest& req, MigMode mode, const std::string& default_class,
                          Policy policy) {
  if (req.mig_profile && req.mig_instance_uuid)
    return invalid("give mig_profile or mig_instance_uuid, not both");
  const Host host(std::span<const GpuInfo>(gpus), held);
  if (req.mig_instance_uuid) return byUuid(host, *req.mig_instance_uuid);
  if (req.mig_profile && *req.mig_profile == kWhole) return wholeGpu(host, mode);

  std::vector<int> shape_of(host.modelCount(), -1);
  bool offered = false;
  for (size_t k = 0; k < host.modelCount(); ++k) {
    const Model& m = host.modelAt(k);
    shape_of[k] = req.mig_profile ? m.shapeByName(*req.mig_profile) : defaultShape(m, default_class);
    offered |= shape_of[k] >= 0;
  }
  if (req.mig_profile && !offered)
    return invalid("unknown MIG profile \"" + *req.mig_profile + "\"; this host offers: " + validProfiles(host));

  if (!req.mig_profile && !offered && host.modelCount() > 0)
    return invalid("the default MIG profile \"" + default_class + "\" is neither a profile nor a class like \"3g\"");

  // An existing free instance first, in both modes: nothing to create, no room lost.
  if (auto pick = pickStatic(host, shape_of)) {
    const GpuInfo& gpu = host.gpu(pick->gpu);
    return fromInstance(gpu, gpu.instances[pick->placement], host.model(pick->gpu)->shapes[pick->shape]);
  }
  if (mode == MigMode::kDynamic) {
    if (auto pick = pickDynamic(host, shape_of, policy))
      return fromPlacement(host.gpu(pick->gpu), host.model(pick->gpu)->shapes[pick->shape], pick->placement);
  }
  std::set<std::string> names;
  for (size_t k = 0; k < host.modelCount(); ++k)
    if (shape_of[k] >= 0) names.insert(host.modelAt(k).shapes[shape_of[k]].profile->name);
  std::string label;
  for (const auto& n : names) label += (label.empty() ? "" : "/") + n;
  if (!req.mig_profile) {
    if (auto g = freeWholeGpu(host)) return wholeOf(host.gpu(*g));
    if (host.size() == 0) return invalid("this host has no GPUs");
    label = "the default profile" + (label.empty() ? "" : " (" + label + ")");
  }
  const char* what = mode == MigMode::kStatic ? "no free instance of " : "no room for ";
  return conflict(what + label + "; free now: " + freeNow(host, mode));
}

}  // namespace

Result<Allocation> allocate(const std::vector<GpuInfo>& gpus, const std::vector<HeldSlot>& held,
                            const SlotRequest& req, MigMode mode,
                            const std::string& default_profile_class) {
  return decide(gpus, held, req, mode, default_profile_class, Policy::kRoom);
}

Result<Allocation> allocateFirstFit(const std::vector<GpuInfo>& gpus,
                                    const std::vector<HeldSlot>& held, const SlotRequest& req,
                                    MigMode mode, const std::string& default_profile_class) {
  return decide(gpus, held, req, mode, default_profile_class, Policy::kFirstFit);
}

namespace {

std::map<std::string, int> roomOf(const Host& host, size_t g) {
  std::map<std::string, int> out;
  if (!host.gpu(g).mig_enabled) {
    out[kWhole] = host.occupancy(g).whole_held ? 0 : 1;
    return out;
  }
  if (const Model* m = host.model(g))
    for (const Shape& s : m->shapes) out[s.profile->name] = mig::capacity(*m, host.occupancy(g), s);
  return out;
}

}  // namespace

std::map<std::string, int> remainingCapacity(const GpuInfo& gpu, const std::vector<HeldSlot>& held) {
  return roomOf(Host(std::span<const GpuInfo>(&gpu, 1), held), 0);
}

std::vector<std::map<std::string, int>> remainingCapacities(const std::vector<GpuInfo>& gpus,
                                                            const std::vector<HeldSlot>& held) {
  const Host host(std::span<const GpuInfo>(gpus), held);
  std::vector<std::map<std::string, int>> out;
  for (size_t g = 0; g < host.size(); ++g) out.push_back(roomOf(host, g));
  return out;
}

}  // namespace sandman
