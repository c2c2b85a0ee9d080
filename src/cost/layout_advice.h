// Layout advice: for a host whose MIG instances are fixed (--mig-mode static),
// replays recorded demand (refused requests included) through the real
// allocator against candidate MIG layouts and proposes the one that would
// have served the most slice-hours. Pure functions; no clock, no I/O: the
// same demand and GPUs give the same advice. Thread-safe: stateless.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "cost/demand_store.h"
#include "gpu/allocator.h"
#include "gpu/need_allocator.h"

namespace sandman {

// One request as the replay sees it: when, for how long, what was asked.
struct ReplayRequest {
  int64_t at_ms = 0;
  int64_t duration_ms = 0;
  std::string mig_profile;  // "" with gpu_memory_gb, or for the default profile
  std::optional<double> gpu_memory_gb;
  std::string workload;
};

struct AdviceOptions {
  std::string default_profile = "3g";   // what a request without profile or memory got
  SlotPricer pricer;                    // for requests by need (cheapest fitting)
  int64_t fallback_duration_ms = 3'600'000;  // refused requests when no accepted one has a duration
  int max_passes = 2;                   // per-GPU improvement passes
};

// Requests of [from, to) from demand records, oldest first. Accepted ones
// last as long as their session held it (to its end, or to `to` while it
// runs); refused ones, and accepted ones whose session is gone, the median of
// the known durations (none known: options.fallback_duration_ms), which is
// returned in *default_ms.
std::vector<ReplayRequest> replayRequests(const std::vector<DemandRecord>& records, int64_t to_ms,
                                          const AdviceOptions& options, int64_t* default_ms);

struct ReplayScore {
  // Compute slices asked for x hours held, clipped to the window end. A
  // request counts for the size it asked (its profile; by memory, the
  // smallest profile with that memory; whole GPU: 7), not the slice it got.
  double served_slice_hours = 0;
  int served = 0;
  int requests = 0;
};

// One GPU's MIG layout: its instances' profiles, largest first.
struct GpuLayout {
  int gpu_index = 0;
  std::string model;
  std::vector<std::string> profiles;
};

struct LayoutCandidate {
  std::vector<GpuLayout> gpus;  // the MIG-enabled GPUs, by index
  ReplayScore score;
};

struct LayoutAdvice {
  LayoutCandidate current;
  LayoutCandidate proposed;  // the current one when nothing beats it
  bool change = false;
  double gain_slice_hours = 0;
  std::optional<double> gain_percent;  // none when the current layout served nothing
  int candidates_evaluated = 0;
};

// Every maximal layout of one GPU (no further instance of any profile fits;
// "+me" media profiles left out), one per multiset of profiles (a static
// host serves by profile, so placements that hold the same profiles are
// the same candidate), in a fixed order.
std::vector<std::vector<const MigProfile*>> candidateLayouts(const GpuInfo& gpu);

// Replays `requests` (oldest first) against `gpus` as they are laid out, in
// static mode, from an empty host; `window_end_ms` clips holdings.
ReplayScore replay(const std::vector<GpuInfo>& gpus, const std::vector<ReplayRequest>& requests,
                   const AdviceOptions& options, int64_t window_end_ms);

// The advice: the current layout, every GPU model's uniform layouts (each
// MIG GPU of that model alike), then per-GPU improvement passes from the
// best of those (each GPU in index order tries each of its candidates,
// keeping a change only when it serves strictly more slice-hours, then more
// requests). kInvalid when the host has no MIG-enabled GPU.
Result<LayoutAdvice> adviseLayout(const std::vector<GpuInfo>& gpus, const std::vector<ReplayRequest>& requests,
                                  const AdviceOptions& options, int64_t window_end_ms);

}  // namespace sandman
