// LedgerEntry: one piece of a session's holding of one device, at one price,
// within one UTC day: the unit the cost ledger stores and sums. Pure
// functions that cut a holding into entries; no state, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sandman {

// A whole GPU's price per hour from `from_ms` on (until the next point).
struct PricePoint {
  int64_t from_ms = 0;
  double usd_per_hour = 0;
};

// [start_ms, end_ms)
struct Span {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

// Who held which device, as what, and when.
struct Holding {
  std::string session_id;
  std::string user_id;
  std::string team;
  std::string project;
  std::string device;     // MIG-... or GPU-...
  std::string gpu_model;  // catalog key ("A100-SXM4-80GB"), or the model name when unknown
  std::string profile;    // "3g.40gb", "whole"
  double share = 1;       // of the GPU's price (slice basis)
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

struct LedgerEntry {
  Holding h;             // start_ms/end_ms: this piece
  double usd_per_hour = 0;  // the whole GPU's price in force
  int64_t cost_micros = 0;  // micro-USD, rounded once per entry
  int64_t idle_ms = 0;
  int64_t idle_cost_micros = 0;
};

inline constexpr int64_t kDayMs = 86'400'000;

// Cuts `h` at UTC midnights and at every price change, prices each piece by
// the point in force at its start (before the first point: the first point's
// price; no points: 0), and counts the idle time in it (`idle`: sorted,
// disjoint). Never looks at the clock: the same inputs give the same cents.
std::vector<LedgerEntry> priceHolding(const Holding& h, const std::vector<PricePoint>& prices,
                                      const std::vector<Span>& idle);

// micro-USD for `ms` at `usd_per_hour` x `share`, rounded half away from zero.
int64_t costMicros(int64_t ms, double usd_per_hour, double share);

enum class CostStep { kDay, kWeek, kMonth };
std::optional<CostStep> parseCostStep(const std::string& s);  // day|week|month
const char* toString(CostStep s);
// Start of the UTC day / ISO week (Monday) / calendar month holding `ms`.
int64_t bucketStart(int64_t ms, CostStep step);
// Start of the next bucket after the one starting at `start`.
int64_t nextBucket(int64_t start, CostStep step);

}  // namespace sandman
