#include "gpu/allocator_layout.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace sandman::mig {
namespace {

SliceMask maskOf(int start, int size) {
  if (start < 0 || size <= 0 || start + size > 32) return 0;
  const SliceMask ones = size >= 32 ? ~SliceMask{0} : ((SliceMask{1} << size) - 1);
  return ones << start;
}

std::unique_ptr<Model> buildModel(const GpuInfo& gpu) {
  auto m = std::make_unique<Model>();
  m->name = gpu.name;
  m->profile_count = gpu.profiles.size();
  m->by_id.fill(-1);
  int slices = gpu.memory_slice_count;
  for (const MigProfile& p : gpu.profiles) {
    Shape s;
    s.profile = &p;
    s.compute = std::max(p.compute_slices, 1);
    s.memory = std::max(p.memory_slices, 1);
    s.weight = s.compute * s.memory;
    s.starts = p.placement_starts;
    std::sort(s.starts.begin(), s.starts.end());
    for (int st : s.starts) {
      s.masks.push_back(maskOf(st, s.memory));
      slices = std::max(slices, st + s.memory);
    }
    m->total_compute = std::max(m->total_compute, s.compute);
    if (p.instance_count < static_cast<int>(s.starts.size()) &&
        m->limited.size() < static_cast<size_t>(kMaxLimited)) {
      s.limit_slot = static_cast<int>(m->limited.size());
      m->limited.push_back(static_cast<int>(m->shapes.size()));
    }
    if (p.profile_id >= 0 && p.profile_id < static_cast<int>(m->by_id.size()))
      m->by_id[p.profile_id] = static_cast<int8_t>(m->shapes.size());
    m->shapes.push_back(std::move(s));
  }
  m->memory_slices = std::min(slices, 32);
  // Memo key: used slices | compute used | count of each limited profile.
  int bits = m->memory_slices;
  m->compute_shift = bits;
  bits += std::bit_width(static_cast<unsigned>(m->total_compute));
  m->limit_shift = bits;
  for (int idx : m->limited)
    bits += std::bit_width(static_cast<unsigned>(m->shapes[idx].profile->instance_count));
  if (bits <= 16) m->key_space = size_t{1} << bits;
  return m;
}

uint64_t hashUuid(std::string_view s) {
  // 8 bytes a step (UUIDs are ~40 bytes); the full compare after decides.
  uint64_t h = s.size() * 0x9E3779B97F4A7C15ull;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = std::rotl((h ^ w) * 0xD6E8FEB86659FD93ull, 29);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  h = (h ^ tail) * 0xD6E8FEB86659FD93ull;
  return h ^ (h >> 29);
}

}  // namespace

int Model::shapeByName(std::string_view profile_name) const {
  for (size_t i = 0; i < shapes.size(); ++i)
    if (shapes[i].profile->name == profile_name) return static_cast<int>(i);
  return -1;
}

int Model::shapeById(int profile_id) const {
  if (profile_id >= 0 && profile_id < static_cast<int>(by_id.size())) return by_id[profile_id];
  for (size_t i = 0; i < shapes.size(); ++i)
    if (shapes[i].profile->profile_id == profile_id) return static_cast<int>(i);
  return -1;
}

int Model::computeAt(int start, int size) const {
  int best = 0;
  for (const Shape& s : shapes)
    if (s.memory == size && std::find(s.starts.begin(), s.starts.end(), start) != s.starts.end())
      best = std::max(best, s.compute);
  return best > 0 ? best : std::min(size, total_compute);
}

bool fits(const Model& m, const Occupancy& o, const Shape& s, SliceMask placement) {
  if (o.whole_held || (o.used & placement) != 0) return false;
  if (o.compute + s.compute > m.total_compute) return false;
  return s.limit_slot < 0 || o.limited[s.limit_slot] < s.profile->instance_count;
}

Occupancy plus(const Model&, Occupancy o, const Shape& s, SliceMask placement) {
  o.used |= placement;
  o.compute += s.compute;
  if (s.limit_slot >= 0) ++o.limited[s.limit_slot];
  return o;
}

int capacity(const Model& m, const Occupancy& o, const Shape& s) {
  if (o.whole_held) return 0;
  const int free_compute = m.total_compute - o.compute;
  if (free_compute < s.compute) return 0;
  int left = free_compute / s.compute;
  if (s.limit_slot >= 0) left = std::min(left, s.profile->instance_count - o.limited[s.limit_slot]);
  // Placements of one profile are equal-sized intervals: taking the lowest
  // free one each time packs the most (interval scheduling).
  int n = 0;
  SliceMask taken = o.used;
  for (SliceMask pm : s.masks) {
    if (n >= left) break;
    if ((pm & taken) == 0) {
      taken |= pm;
      ++n;
    }
  }
  return n;
}

int64_t stateKey(const Model& m, const Occupancy& o) {
  if (m.key_space == 0 || o.whole_held) return -1;
  // Clamping keeps keys apart without changing the room: at the limit every
  // capacity it touches is 0 already.
  const SliceMask slices = (SliceMask{1} << m.memory_slices) - 1;  // memo implies <= 16 slices
  uint64_t key = (o.used & slices) |
                 (static_cast<uint64_t>(std::min(o.compute, m.total_compute)) << m.compute_shift);
  int shift = m.limit_shift;
  for (size_t i = 0; i < m.limited.size(); ++i) {
    const int count = m.shapes[m.limited[i]].profile->instance_count;
    key |= static_cast<uint64_t>(std::min<int>(o.limited[i], count)) << shift;
    shift += std::bit_width(static_cast<unsigned>(count));
  }
  return static_cast<int64_t>(key);
}

int room(Model& m, const Occupancy& o) {
  const int64_t key = stateKey(m, o);
  if (key >= 0 && m.memo.empty()) m.memo.assign(m.key_space, -1);
  if (key >= 0 && m.memo[key] >= 0) return m.memo[key];
  int total = 0;
  for (const Shape& s : m.shapes) total += s.weight * capacity(m, o, s);
  if (key >= 0) m.memo[key] = total;
  return total;
}

Host::Host(std::span<const GpuInfo> gpus, const std::vector<HeldSlot>& held)
    : gpus_(gpus), per_(gpus.size()) {
  for (size_t i = 0; i < gpus_.size(); ++i) {
    if (gpus_[i].mig_enabled && !gpus_[i].profiles.empty()) per_[i].model = modelFor(gpus_[i]);
    addInstances(i);
  }
  if (held.empty()) return;
  if (gpus_.size() > 8) {
    size_t cap = 16;
    while (cap < gpus_.size() * 2) cap *= 2;
    table_.assign(cap, Entry{});
    table_mask_ = cap - 1;
    for (size_t i = 0; i < gpus_.size(); ++i) {
      const uint64_t hash = hashUuid(gpus_[i].uuid);
      uint64_t h = hash & table_mask_;
      while (table_[h].gpu >= 0) h = (h + 1) & table_mask_;
      table_[h] = Entry{static_cast<uint32_t>(hash >> 32), static_cast<int32_t>(i)};
    }
  }
  for (const HeldSlot& h : held) addHeld(h);
}

int Host::modelFor(const GpuInfo& gpu) {
  for (size_t k = models_.size(); k-- > 0;)
    if (models_[k]->profile_count == gpu.profiles.size() && models_[k]->name == gpu.name)
      return static_cast<int>(k);
  models_.push_back(buildModel(gpu));
  return static_cast<int>(models_.size() - 1);
}

void Host::addInstances(size_t i) {
  Occupancy& o = per_[i].occ;
  const Model* m = model(i);
  if (m == nullptr) return;
  for (const MigInstance& inst : gpus_[i].instances) {
    const SliceMask pm = maskOf(inst.placement_start, inst.placement_size);
    o.used |= pm;
    if (pm != 0 && !inst.uuid.empty()) per_[i].device_starts |= SliceMask{1} << inst.placement_start;
    const int si = m->shapeById(inst.profile_id);
    if (si < 0) {
      o.compute += m->computeAt(inst.placement_start, inst.placement_size);
      continue;
    }
    const Shape& s = m->shapes[si];
    o.compute += s.compute;
    if (s.limit_slot >= 0) ++o.limited[s.limit_slot];
  }
  per_[i].inst_used = o.used;
}

void Host::addHeld(const HeldSlot& h) {
  int g = h.gpu_uuid.empty() ? -1 : findGpu(h.gpu_uuid);
  if (g < 0) g = findByDevice(h.device_uuid);
  if (g < 0) return;  // its GPU is gone; reconciliation ends such sessions
  Occupancy& o = per_[g].occ;
  if (h.whole) {
    o.whole_held = true;
    return;
  }
  int start = h.placement_start, size = h.placement_size;
  if (start < 0 || size <= 0) {  // static slot known by device uuid only
    for (const MigInstance& inst : gpus_[g].instances)
      if (!h.device_uuid.empty() && inst.uuid == h.device_uuid) {
        start = inst.placement_start;
        size = inst.placement_size;
      }
    if (start < 0 || size <= 0) return;
  }
  const SliceMask pm = maskOf(start, size);
  if (pm == 0) return;  // not a placement on any GPU
  o.held_starts |= SliceMask{1} << start;
  if ((pm & ~per_[g].inst_used) == 0) return;  // an existing instance: counted already
  o.used |= pm;
  const Model* m = model(g);
  if (m == nullptr) return;
  const int si = h.profile.empty() ? -1 : m->shapeByName(h.profile);
  if (si < 0) {
    o.compute += m->computeAt(start, size);
    return;
  }
  o.compute += m->shapes[si].compute;
  if (m->shapes[si].limit_slot >= 0) ++o.limited[m->shapes[si].limit_slot];
}

int Host::findGpu(std::string_view uuid) const {
  if (table_.empty()) {
    for (size_t i = 0; i < gpus_.size(); ++i)
      if (gpus_[i].uuid == uuid) return static_cast<int>(i);
    return -1;
  }
  const uint64_t hash = hashUuid(uuid);
  const auto tag = static_cast<uint32_t>(hash >> 32);
  for (uint64_t h = hash & table_mask_; table_[h].gpu >= 0; h = (h + 1) & table_mask_)
    if (table_[h].tag == tag && gpus_[table_[h].gpu].uuid == uuid) return table_[h].gpu;
  return -1;
}

int Host::findByDevice(std::string_view device_uuid) const {
  if (device_uuid.empty()) return -1;
  for (size_t i = 0; i < gpus_.size(); ++i) {
    if (gpus_[i].uuid == device_uuid) return static_cast<int>(i);
    for (const MigInstance& inst : gpus_[i].instances)
      if (inst.uuid == device_uuid) return static_cast<int>(i);
  }
  return -1;
}

bool Host::held(size_t i, const MigInstance& inst) const {
  return inst.placement_start >= 0 && inst.placement_start < 32 &&
         (per_[i].occ.held_starts >> inst.placement_start) & 1;
}

}  // namespace sandman::mig
