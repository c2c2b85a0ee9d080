#include "cost/rightsizing.h"

#include <algorithm>
#include <cmath>

#include "common/time_format.h"

namespace sandman {
namespace {

int64_t sumCost(const std::vector<LedgerEntry>& entries) {
  int64_t sum = 0;
  for (const auto& e : entries) sum += e.cost_micros;
  return sum;
}

int rank(FitVerdict v) { return v == FitVerdict::kSmaller ? 0 : v == FitVerdict::kUnknown ? 1 : 2; }

}  // namespace

const char* toString(FitVerdict v) {
  switch (v) {
    case FitVerdict::kSmaller: return "smaller";
    case FitVerdict::kRightSized: return "right_sized";
    case FitVerdict::kUnknown: return "unknown";
  }
  return "unknown";
}

std::optional<CatalogProfile> smallestFit(const FitInput& in, const CostRates& rates) {
  if (in.model == nullptr || !in.model->mig || in.model->profiles.empty()) return std::nullopt;
  const CatalogModel& m = *in.model;
  int held_slices = m.compute_slices;
  if (in.profile != "whole" && !in.profile.empty()) {
    const CatalogProfile* p = m.profile(in.profile);
    if (p == nullptr) return std::nullopt;
    held_slices = p->compute_slices;
  }
  const double need_mib = in.peak_memory_mib * in.headroom;
  const int need_slices =
      in.peak_utilization
          ? std::max(1, static_cast<int>(std::ceil(*in.peak_utilization / 100.0 * held_slices * in.headroom - 1e-9)))
          : 1;
  const double held_share = rates.share(m.key, in.profile.empty() ? "whole" : in.profile, held_slices);
  std::optional<CatalogProfile> best;
  double best_share = 0;
  for (const auto& p : m.profiles) {
    if (p.name.find('+') != std::string::npos) continue;  // media extensions: same slices, fewer instances
    if (static_cast<double>(p.memory_mib) < need_mib || p.compute_slices < need_slices) continue;
    const double share = rates.share(m.key, p.name, p.compute_slices);
    if (share >= held_share - 1e-12) continue;
    if (!best || share < best_share - 1e-12 || (std::abs(share - best_share) <= 1e-12 && p.memory_mib < best->memory_mib)) {
      best = p;
      best_share = share;
    }
  }
  return best;
}

Result<RightsizingReport> adviseRightsizing(CostLedger& ledger, int64_t from_ms, int64_t to_ms, double headroom) {
  if (to_ms <= from_ms) return invalid("'from' must be earlier than 'to'");
  RightsizingReport r;
  r.from_ms = from_ms;
  r.to_ms = to_ms;
  r.headroom = headroom;
  CostStore& store = ledger.store();
  auto ended = store.endedSessionsBetween(from_ms, to_ms);
  if (!ended.ok()) return ended.error();
  auto active = store.activeSessions();
  if (!active.ok()) return active.error();
  std::vector<CostSession> sessions = std::move(ended).value();
  for (auto& s : active.value()) sessions.push_back(std::move(s));

  const int64_t now = toUnixMillis(ledger.clock().now());
  const GpuCatalog* catalog = ledger.rates().catalog();
  for (const auto& s : sessions) {
    const int64_t end = s.ended_ms.value_or(std::max(now, s.created_ms));
    auto h = ledger.holdingOf(s, end);
    if (!h.ok()) return h.error();
    if (!h->has_value()) continue;  // never held a GPU
    RightsizingRow row;
    row.session = s;
    const Holding whole = **h;
    row.gpu_model = whole.gpu_model;
    row.profile = whole.profile;
    row.held_minutes = (whole.end_ms - whole.start_ms) / 60'000;
    auto peak = store.devicePeak(whole.device, s.id, whole.start_ms, whole.end_ms);
    if (!peak.ok()) return peak.error();
    row.telemetry_minutes = peak->minutes;
    row.peak_memory_mib = peak->memory_used_mib;
    row.peak_utilization = peak->utilization;

    Holding in_window = whole;
    in_window.start_ms = std::max(whole.start_ms, from_ms);
    in_window.end_ms = std::min(whole.end_ms, to_ms);
    if (in_window.end_ms > in_window.start_ms) {
      auto priced = ledger.price(in_window);
      if (!priced.ok()) return priced.error();
      row.cost_micros = sumCost(priced.value());
    } else {
      in_window.end_ms = in_window.start_ms;
    }
    row.holding = in_window;

    const CatalogModel* model = catalog != nullptr ? catalog->byKey(whole.gpu_model) : nullptr;
    if (row.telemetry_minutes == 0 || !row.peak_memory_mib) {
      row.verdict = FitVerdict::kUnknown;
      row.reason = "no telemetry of " + whole.device + " while the session held it";
    } else if (model == nullptr) {
      row.verdict = FitVerdict::kUnknown;
      row.reason = "GPU model " + whole.gpu_model + " is not in the catalog";
    } else {
      FitInput in{model, whole.profile, *row.peak_memory_mib, row.peak_utilization, headroom};
      row.basis = row.peak_utilization ? "memory+utilization" : "memory";
      auto fit = smallestFit(in, ledger.rates());
      if (!fit) {
        row.verdict = FitVerdict::kRightSized;
        row.reason = model->mig ? "no cheaper profile of " + model->key + " fits the peak with headroom"
                                : model->key + " has no MIG profiles";
      } else {
        row.verdict = FitVerdict::kSmaller;
        row.suggested_profile = fit->name;
        row.reason = "peak fits " + fit->name + " with headroom" +
                     (row.peak_utilization ? "" : " (utilisation unknown: judged on memory alone)");
        if (in_window.end_ms > in_window.start_ms) {
          Holding alt = in_window;
          alt.profile = fit->name;
          alt.share = ledger.rates().share(model->key, fit->name, fit->compute_slices);
          auto priced = ledger.price(alt);
          if (!priced.ok()) return priced.error();
          row.suggested_cost_micros = sumCost(priced.value());
        }
        row.saving_micros = row.cost_micros - row.suggested_cost_micros;
      }
    }
    switch (row.verdict) {
      case FitVerdict::kSmaller: ++r.smaller; r.saving_micros += row.saving_micros; break;
      case FitVerdict::kRightSized: ++r.right_sized; break;
      case FitVerdict::kUnknown: ++r.unknown; break;
    }
    r.rows.push_back(std::move(row));
  }
  std::stable_sort(r.rows.begin(), r.rows.end(), [](const RightsizingRow& a, const RightsizingRow& b) {
    if (rank(a.verdict) != rank(b.verdict)) return rank(a.verdict) < rank(b.verdict);
    return a.saving_micros > b.saving_micros;
  });
  return r;
}

}  // namespace sandman
