#include "cost/layout_advice.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>

namespace sandman {
namespace {

constexpr double kMsPerHour = 3'600'000.0;
constexpr int kWholeSlices = 7;  // a MIG-off GPU counts as a full A100/H100's seven slices

bool mediaProfile(const MigProfile& p) { return p.name.find('+') != std::string::npos; }

int memorySlicesOf(const GpuInfo& g) {
  int m = g.memory_slice_count;
  for (const MigProfile& p : g.profiles)
    for (int s : p.placement_starts) m = std::max(m, s + std::max(p.memory_slices, 1));
  return std::min(m, 32);
}

int totalComputeOf(const GpuInfo& g) {
  int c = 0;
  for (const MigProfile& p : g.profiles) c = std::max(c, p.compute_slices);
  return c;
}

uint32_t maskOf(int start, int size) { return ((size >= 32 ? ~0u : ((1u << size) - 1u))) << start; }

// Largest first (compute, then memory), then by name: the order layouts are shown and compared in.
bool biggerFirst(const MigProfile* a, const MigProfile* b) {
  if (a->compute_slices != b->compute_slices) return a->compute_slices > b->compute_slices;
  if (a->memory_slices != b->memory_slices) return a->memory_slices > b->memory_slices;
  return a->name < b->name;
}

struct Enumerator {
  const GpuInfo& gpu;
  std::vector<const MigProfile*> shapes;  // without +me
  int slices = 0;
  int total_compute = 0;
  std::vector<std::pair<const MigProfile*, int>> placed;
  std::map<std::vector<std::string>, std::vector<const MigProfile*>> found;  // by sorted names

  bool fits(const MigProfile& p, int start, uint32_t used, int compute, const std::map<const MigProfile*, int>& n) const {
    if (start + p.memory_slices > slices) return false;
    if ((maskOf(start, std::max(p.memory_slices, 1)) & used) != 0) return false;
    if (compute + std::max(p.compute_slices, 1) > total_compute) return false;
    auto it = n.find(&p);
    return it == n.end() || it->second < p.instance_count;
  }

  bool maximal(uint32_t used, int compute, const std::map<const MigProfile*, int>& n) const {
    for (const MigProfile* p : shapes)
      for (int s : p->placement_starts)
        if (fits(*p, s, used, compute, n)) return false;
    return true;
  }

  void dfs(int pos, uint32_t used, int compute, std::map<const MigProfile*, int>& n) {
    if (pos >= slices) {
      if (placed.empty() || !maximal(used, compute, n)) return;
      std::vector<const MigProfile*> layout;
      for (const auto& pl : placed) layout.push_back(pl.first);
      std::sort(layout.begin(), layout.end(), biggerFirst);
      std::vector<std::string> key;
      for (const MigProfile* p : layout) key.push_back(p->name);
      found.emplace(std::move(key), std::move(layout));
      return;
    }
    if ((used >> pos) & 1u) return dfs(pos + 1, used, compute, n);
    for (const MigProfile* p : shapes) {
      if (std::find(p->placement_starts.begin(), p->placement_starts.end(), pos) == p->placement_starts.end()) continue;
      if (!fits(*p, pos, used, compute, n)) continue;
      placed.emplace_back(p, pos);
      ++n[p];
      dfs(pos + 1, used | maskOf(pos, std::max(p->memory_slices, 1)), compute + std::max(p->compute_slices, 1), n);
      --n[p];
      placed.pop_back();
    }
    dfs(pos + 1, used, compute, n);  // this slice left empty
  }
};

// `gpu` laid out as `layout`: each profile at its first free placement.
GpuInfo laidOut(const GpuInfo& gpu, const std::vector<const MigProfile*>& layout) {
  GpuInfo g = gpu;
  g.instances.clear();
  uint32_t used = 0;
  int gi = 1;
  for (const MigProfile* p : layout) {
    for (int s : p->placement_starts) {
      const uint32_t m = maskOf(s, std::max(p->memory_slices, 1));
      if ((m & used) != 0) continue;
      used |= m;
      MigInstance inst;
      inst.uuid = "MIG-layout-" + std::to_string(gpu.index) + "-" + std::to_string(s);
      inst.gpu_instance_id = gi++;
      inst.profile_id = p->profile_id;
      inst.profile_name = p->name;
      inst.placement_start = s;
      inst.placement_size = std::max(p->memory_slices, 1);
      inst.memory_total_mib = p->memory_mib;
      g.instances.push_back(inst);
      break;
    }
  }
  return g;
}

std::vector<std::string> profilesOf(const GpuInfo& g) {
  std::vector<const MigProfile*> ps;
  for (const MigInstance& inst : g.instances) {
    const MigProfile* match = nullptr;
    for (const MigProfile& p : g.profiles)
      if (p.profile_id == inst.profile_id) match = &p;
    if (match != nullptr) ps.push_back(match);
  }
  std::sort(ps.begin(), ps.end(), biggerFirst);
  std::vector<std::string> out;
  for (const MigProfile* p : ps) out.push_back(p->name);
  return out;
}

// The size of what a request asked for, in compute slices, whatever it was
// handed: a served request counts for its ask, so that handing a small ask
// a big slice never looks like more service. A profile: its compute slices
// ("whole": 7); by memory: the fewest compute slices of any profile of the
// host with that much memory (7 when only a whole GPU holds it); the
// default: its class ("3g" -> 3).
int askedSlices(const std::vector<GpuInfo>& gpus, const ReplayRequest& q, const AdviceOptions& o) {
  auto leading = [](const std::string& name) {
    int n = 0;
    for (char c : name) {
      if (c < '0' || c > '9') break;
      n = n * 10 + (c - '0');
    }
    return n;
  };
  if (q.gpu_memory_gb) {
    int best = 0;
    for (const GpuInfo& g : gpus) {
      if (!g.mig_enabled) continue;
      for (const MigProfile& p : g.profiles)
        if (profileMemoryGb(p) + 1e-9 >= *q.gpu_memory_gb && (best == 0 || p.compute_slices < best))
          best = std::max(p.compute_slices, 1);
    }
    return best > 0 ? best : kWholeSlices;
  }
  const std::string& name = q.mig_profile.empty() ? o.default_profile : q.mig_profile;
  if (name == "whole") return kWholeSlices;
  const int n = leading(name);
  return n > 0 ? n : 1;
}

bool better(const ReplayScore& a, const ReplayScore& b) {
  // Slice-hours compared to the millisecond-slice: float sums in another order must not flip a tie.
  const int64_t ha = static_cast<int64_t>(a.served_slice_hours * kMsPerHour + 0.5);
  const int64_t hb = static_cast<int64_t>(b.served_slice_hours * kMsPerHour + 0.5);
  if (ha != hb) return ha > hb;
  return a.served > b.served;
}

LayoutCandidate candidateOf(const std::vector<GpuInfo>& gpus, const ReplayScore& score) {
  LayoutCandidate c;
  for (const GpuInfo& g : gpus)
    if (g.mig_enabled && !g.profiles.empty()) c.gpus.push_back({g.index, g.name, profilesOf(g)});
  c.score = score;
  return c;
}

}  // namespace

std::vector<ReplayRequest> replayRequests(const std::vector<DemandRecord>& records, int64_t to_ms,
                                          const AdviceOptions& options, int64_t* default_ms) {
  std::vector<int64_t> known;
  for (const DemandRecord& r : records) {
    if (r.outcome != "accepted" || !r.session_created_ms) continue;
    known.push_back(std::max<int64_t>(0, r.session_ended_ms.value_or(to_ms) - *r.session_created_ms));
  }
  int64_t fallback = options.fallback_duration_ms;
  if (!known.empty()) {
    std::sort(known.begin(), known.end());
    fallback = known[(known.size() - 1) / 2];  // the lower median: an observed duration
  }
  if (default_ms != nullptr) *default_ms = fallback;
  std::vector<ReplayRequest> out;
  for (const DemandRecord& r : records) {
    if (r.outcome == "refused_budget") continue;  // money, not the layout, refused it
    ReplayRequest q;
    q.at_ms = r.at_ms;
    q.mig_profile = r.mig_profile;
    q.gpu_memory_gb = r.gpu_memory_gb;
    q.workload = r.workload;
    if (r.outcome == "accepted" && r.session_created_ms) {
      q.duration_ms = std::max<int64_t>(0, r.session_ended_ms.value_or(to_ms) - *r.session_created_ms);
    } else {
      q.duration_ms = fallback;
    }
    out.push_back(std::move(q));
  }
  std::stable_sort(out.begin(), out.end(), [](const ReplayRequest& a, const ReplayRequest& b) { return a.at_ms < b.at_ms; });
  return out;
}

std::vector<std::vector<const MigProfile*>> candidateLayouts(const GpuInfo& gpu) {
  Enumerator e{gpu, {}, memorySlicesOf(gpu), totalComputeOf(gpu), {}, {}};
  for (const MigProfile& p : gpu.profiles)
    if (!mediaProfile(p)) e.shapes.push_back(&p);
  std::sort(e.shapes.begin(), e.shapes.end(), biggerFirst);
  std::map<const MigProfile*, int> n;
  e.dfs(0, 0, 0, n);
  std::vector<std::vector<const MigProfile*>> out;
  for (auto& [key, layout] : e.found) out.push_back(std::move(layout));
  return out;
}

ReplayScore replay(const std::vector<GpuInfo>& gpus, const std::vector<ReplayRequest>& requests,
                   const AdviceOptions& options, int64_t window_end_ms) {
  struct Live {
    int64_t end_ms;
    HeldSlot slot;
  };
  ReplayScore score;
  std::vector<Live> live;
  std::vector<HeldSlot> held;
  for (const ReplayRequest& q : requests) {
    ++score.requests;
    live.erase(std::remove_if(live.begin(), live.end(), [&](const Live& l) { return l.end_ms <= q.at_ms; }), live.end());
    held.clear();
    for (const Live& l : live) held.push_back(l.slot);
    Result<Allocation> a = internal("unset");
    if (q.gpu_memory_gb) {
      GpuNeed need{*q.gpu_memory_gb, parseWorkload(q.workload).value_or(Workload::kInference)};
      auto c = allocateByNeed(gpus, held, need, MigMode::kStatic, options.pricer);
      if (c.ok()) a = c->allocation;
    } else {
      SlotRequest req;
      if (!q.mig_profile.empty()) req.mig_profile = q.mig_profile;
      a = allocate(gpus, held, req, MigMode::kStatic, options.default_profile);
    }
    if (!a.ok()) continue;
    const int64_t end = std::min(q.at_ms + q.duration_ms, std::max(window_end_ms, q.at_ms));
    ++score.served;
    score.served_slice_hours += askedSlices(gpus, q, options) * static_cast<double>(end - q.at_ms) / kMsPerHour;
    live.push_back({q.at_ms + q.duration_ms,
                    HeldSlot{a->gpu_uuid, a->device_uuid, a->placement_start, a->placement_size, a->whole, a->profile}});
  }
  return score;
}

Result<LayoutAdvice> adviseLayout(const std::vector<GpuInfo>& gpus, const std::vector<ReplayRequest>& requests,
                                  const AdviceOptions& options, int64_t window_end_ms) {
  std::vector<size_t> mig;
  std::vector<std::vector<std::vector<const MigProfile*>>> layouts;  // per entry of `mig`
  for (size_t i = 0; i < gpus.size(); ++i) {
    if (!gpus[i].mig_enabled || gpus[i].profiles.empty()) continue;
    mig.push_back(i);
    layouts.push_back(candidateLayouts(gpus[i]));
  }
  if (mig.empty()) return invalid("layout advice needs a GPU with MIG enabled; this host has none");

  LayoutAdvice advice;
  const ReplayScore current = replay(gpus, requests, options, window_end_ms);
  advice.current = candidateOf(gpus, current);
  int evaluated = 1;
  std::vector<GpuInfo> best = gpus;
  ReplayScore best_score = current;
  auto consider = [&](std::vector<GpuInfo> trial) {
    const ReplayScore s = replay(trial, requests, options, window_end_ms);
    ++evaluated;
    if (!better(s, best_score)) return false;
    best = std::move(trial);
    best_score = s;
    return true;
  };

  // Uniform layouts: every MIG GPU of a model alike (the usual way a fleet is set up).
  std::set<std::string> models;
  for (size_t k = 0; k < mig.size(); ++k) models.insert(gpus[mig[k]].name);
  for (const std::string& model : models) {
    size_t first = 0;
    while (gpus[mig[first]].name != model) ++first;
    for (const auto& layout : layouts[first]) {
      std::vector<GpuInfo> trial = best;
      for (size_t k = 0; k < mig.size(); ++k) {
        if (gpus[mig[k]].name != model) continue;
        // The same profiles, by name, on this GPU's own profile table.
        std::vector<const MigProfile*> mine;
        for (const MigProfile* p : layout)
          for (const MigProfile& q : gpus[mig[k]].profiles)
            if (q.name == p->name) mine.push_back(&q);
        trial[mig[k]] = laidOut(gpus[mig[k]], mine);
      }
      consider(std::move(trial));
    }
  }
  // Then one GPU at a time: a mixed fleet can beat every uniform one.
  for (int pass = 0; pass < options.max_passes; ++pass) {
    bool changed = false;
    for (size_t k = 0; k < mig.size(); ++k) {
      for (const auto& layout : layouts[k]) {
        std::vector<GpuInfo> trial = best;
        trial[mig[k]] = laidOut(gpus[mig[k]], layout);
        changed |= consider(std::move(trial));
      }
    }
    if (!changed) break;
  }

  advice.proposed = candidateOf(best, best_score);
  advice.change = better(best_score, current);
  advice.gain_slice_hours = best_score.served_slice_hours - current.served_slice_hours;
  if (current.served_slice_hours > 0) {
    advice.gain_percent = advice.gain_slice_hours / current.served_slice_hours * 100.0;
  }
  advice.candidates_evaluated = evaluated;
  return advice;
}

}  // namespace sandman
