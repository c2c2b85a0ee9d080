// Right-sizing: which sessions' measured peak (GPU memory, utilisation, from
// the device's telemetry minutes) would have fit a smaller MIG profile of
// their GPU, or a slice instead of the whole GPU, and what that would have
// saved at the prices in force (priced by the ledger). Thread-safe as the
// ledger is; holds no state of its own.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cost/cost_ledger.h"
#include "gpu/gpu_catalog.h"

namespace sandman {

// The headroom rule: a profile fits when
//   peak memory (MiB) x headroom <= the profile's memory, and
//   ceil(peak utilisation / 100 x compute slices held x headroom) <= its compute slices
// (utilisation as NVML reports it for the device held: of the slice for a
// MIG instance, of the GPU for a whole one). Peak memory: the largest sample;
// peak utilisation: the busiest minute's mean, so a single-sample spike does
// not pin a session to its profile while a sustained minute does. NVML
// reports no utilisation for a MIG instance (only DCGM's profiling does): a
// session whose utilisation is unknown is judged on memory alone, and says so.
inline constexpr double kRightsizingHeadroom = 1.2;

struct FitInput {
  const CatalogModel* model = nullptr;
  std::string profile;  // held: "whole" or a MIG profile
  double peak_memory_mib = 0;
  std::optional<double> peak_utilization;  // %; unknown: memory alone decides
  double headroom = kRightsizingHeadroom;
};

// The cheapest profile of the model that fits (ties: less memory), when it
// costs less than the one held (share under `basis` via `share_of`);
// nullopt when nothing smaller fits or the model has no MIG.
std::optional<CatalogProfile> smallestFit(const FitInput& in, const CostRates& rates);

enum class FitVerdict { kSmaller, kRightSized, kUnknown };
const char* toString(FitVerdict v);

struct RightsizingRow {
  CostSession session;
  Holding holding;  // clipped to the window (to now when running)
  std::string gpu_model;
  std::string profile;
  int64_t telemetry_minutes = 0;
  int64_t held_minutes = 0;
  std::optional<double> peak_memory_mib;
  std::optional<double> peak_utilization;
  FitVerdict verdict = FitVerdict::kUnknown;
  std::string reason;
  std::string basis;  // "memory+utilization", or "memory" when utilisation is unknown
  std::string suggested_profile;
  int64_t cost_micros = 0;            // in the window, as held
  int64_t suggested_cost_micros = 0;  // in the window, as the suggested profile
  int64_t saving_micros = 0;
};

struct RightsizingReport {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  double headroom = kRightsizingHeadroom;
  std::vector<RightsizingRow> rows;  // smaller first (largest saving first), then unknown, then right-sized
  int smaller = 0, right_sized = 0, unknown = 0;
  int64_t saving_micros = 0;
};

// Sessions that ended in [from, to) and those running now, each judged on
// its whole holding's telemetry; costs and savings over the part of the
// holding inside the window.
Result<RightsizingReport> adviseRightsizing(CostLedger& ledger, int64_t from_ms, int64_t to_ms,
                                            double headroom = kRightsizingHeadroom);

}  // namespace sandman
