#include "gpu/need_allocator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

namespace sandman {
namespace {

constexpr double kBytesPerMib = 1024.0 * 1024.0;
constexpr size_t kWhyListed = 4;  // options named in "why" besides the count

// "40" of "3g.40gb"; 0 when the name has no such number.
double gbInName(const std::string& name) {
  const size_t dot = name.find('.');
  if (dot == std::string::npos) return 0;
  double v = 0;
  bool any = false;
  for (size_t i = dot + 1; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
    v = v * 10 + (name[i] - '0');
    any = true;
  }
  return any ? v : 0;
}

std::string gbText(double gb) {
  char buf[32];
  if (std::fabs(gb - std::round(gb)) < 1e-9) {
    std::snprintf(buf, sizeof buf, "%.0f GB", gb);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f GB", gb);
  }
  return buf;
}

// One kind of device: a profile of a model (MIG on) or a whole GPU model (MIG off).
struct Kind {
  std::string model;
  bool mig = false;
  std::string profile;  // "whole" when !mig
  int compute = 0;
  double memory_gb = 0;
};

std::string optionText(const NeedOption& o) {
  const std::string what = o.profile == "whole" ? "whole " + o.model : o.profile + " on " + o.model;
  return what + " " + usdPerHourText(o.usd_per_hour);
}

int64_t micros(double usd) { return std::llround(usd * 1e6); }

}  // namespace

std::optional<Workload> parseWorkload(const std::string& s) {
  if (s == "inference") return Workload::kInference;
  if (s == "training") return Workload::kTraining;
  return std::nullopt;
}

const char* toString(Workload w) { return w == Workload::kTraining ? "training" : "inference"; }

double profileMemoryGb(const MigProfile& p) {
  if (p.memory_mib > 0) return static_cast<double>(p.memory_mib) * kBytesPerMib / 1e9;
  return gbInName(p.name);
}

double wholeMemoryGb(const GpuInfo& g) {
  return static_cast<double>(g.memory_total_mib) * kBytesPerMib / 1e9;
}

std::string usdPerHourText(double usd) {
  char buf[48];
  if (usd != 0 && std::fabs(usd) < 0.01) {
    std::snprintf(buf, sizeof buf, "$%.4f/h", usd);
  } else {
    std::snprintf(buf, sizeof buf, "$%.2f/h", usd);
  }
  return buf;
}

Result<NeedChoice> allocateByNeed(const std::vector<GpuInfo>& gpus, const std::vector<HeldSlot>& held,
                                  const GpuNeed& need, MigMode mode, const SlotPricer& price) {
  if (!std::isfinite(need.memory_gb) || need.memory_gb <= 0) {
    return invalid("gpu_memory_gb must be a number greater than 0");
  }
  if (gpus.empty()) return invalid("this host has no GPUs: drop gpu_memory_gb");

  // Kinds in first-seen order (GPU index order), deduplicated.
  std::vector<Kind> kinds;
  std::map<std::tuple<std::string, bool, std::string>, bool> seen;
  double largest = 0;
  std::string largest_name;
  auto consider = [&](const Kind& k) {
    if (k.memory_gb > largest) {
      largest = k.memory_gb;
      largest_name = k.mig ? k.profile + " on " + k.model : "whole " + k.model;
    }
    if (k.memory_gb + 1e-9 < need.memory_gb) return;
    if (seen.emplace(std::make_tuple(k.model, k.mig, k.profile), true).second) kinds.push_back(k);
  };
  for (const GpuInfo& g : gpus) {
    if (g.mig_enabled) {
      for (const MigProfile& p : g.profiles)
        consider({g.name, true, p.name, std::max(p.compute_slices, 1), profileMemoryGb(p)});
    } else {
      consider({g.name, false, "whole", 0, wholeMemoryGb(g)});
    }
  }
  if (kinds.empty()) {
    return invalid("no device on this host has " + gbText(need.memory_gb) + " of GPU memory; the largest is " +
                   (largest_name.empty() ? "none" : largest_name + " (" + gbText(largest) + ")"));
  }

  std::vector<NeedOption> options;
  std::string would_fit;
  // The GPUs of one model, copied once for all of its profiles (replays call this a lot).
  std::map<std::pair<std::string, bool>, std::vector<GpuInfo>> subsets;
  for (const Kind& k : kinds) {
    bool all = true;
    for (const GpuInfo& g : gpus) all = all && g.name == k.model && g.mig_enabled == k.mig;
    auto [it, fresh] = subsets.try_emplace({k.model, k.mig});
    if (fresh && !all) {
      for (const GpuInfo& g : gpus)
        if (g.name == k.model && g.mig_enabled == k.mig) it->second.push_back(g);
    }
    const std::vector<GpuInfo>& subset = all ? gpus : it->second;
    SlotRequest req;
    req.mig_profile = k.profile;
    auto a = allocate(subset, held, req, mode, "3g");
    if (!a.ok()) {
      would_fit += (would_fit.empty() ? "" : ", ") + (k.mig ? k.profile + " on " + k.model : "whole " + k.model);
      continue;
    }
    NeedOption o;
    o.model = k.model;
    o.profile = k.profile;
    o.compute_slices = k.compute;
    o.memory_gb = k.memory_gb;
    o.usd_per_hour = price ? price(k.model, k.profile, k.compute) : 0;
    o.allocation = std::move(a).value();
    options.push_back(std::move(o));
  }
  if (options.empty()) {
    return conflict("nothing with " + gbText(need.memory_gb) + " of GPU memory is free now; would fit: " + would_fit +
                    (mode == MigMode::kStatic ? " (static MIG: only existing instances are handed out)" : ""));
  }

  const bool training = need.workload == Workload::kTraining;
  std::sort(options.begin(), options.end(), [&](const NeedOption& a, const NeedOption& b) {
    if (micros(a.usd_per_hour) != micros(b.usd_per_hour)) return micros(a.usd_per_hour) < micros(b.usd_per_hour);
    const int64_t ma = std::llround(a.memory_gb * 1000), mb = std::llround(b.memory_gb * 1000);
    if (training) {
      if (a.compute_slices != b.compute_slices) {
        // A whole GPU (0) counts as more compute than any slice.
        const int ca = a.compute_slices == 0 ? 1000 : a.compute_slices;
        const int cb = b.compute_slices == 0 ? 1000 : b.compute_slices;
        if (ca != cb) return ca > cb;
      }
      if (ma != mb) return ma > mb;
    } else {
      if (ma != mb) return ma < mb;
      if (a.compute_slices != b.compute_slices) return a.compute_slices < b.compute_slices;
    }
    if (a.allocation.gpu_index != b.allocation.gpu_index) return a.allocation.gpu_index < b.allocation.gpu_index;
    if (a.allocation.placement_start != b.allocation.placement_start)
      return a.allocation.placement_start < b.allocation.placement_start;
    return a.profile < b.profile;
  });

  NeedChoice c;
  const NeedOption& best = options.front();
  c.allocation = best.allocation;
  c.profile = best.profile;
  c.usd_per_hour = best.usd_per_hour;
  const std::string gpu = "GPU " + std::to_string(best.allocation.gpu_index) + " (" + best.model + ")";
  c.device = best.allocation.whole ? gpu : "MIG " + best.profile + " on " + gpu;
  std::string why = options.size() == 1 ? "the only fitting option"
                                          : "cheapest of " + std::to_string(options.size()) + " fitting options";
  why += " for " + gbText(need.memory_gb) + " (" + toString(need.workload) + ": " +
         (training ? "more compute slices, then more memory" : "least memory, then fewest compute slices") +
         " on a price tie): ";
  for (size_t i = 0; i < options.size() && i < kWhyListed; ++i) why += (i ? "; " : "") + optionText(options[i]);
  if (options.size() > kWhyListed) why += "; +" + std::to_string(options.size() - kWhyListed) + " more";
  c.why = std::move(why);
  c.options = std::move(options);
  return c;
}

}  // namespace sandman
