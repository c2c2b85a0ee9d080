#include "cost/ledger_entry.h"

#include <algorithm>
#include <cmath>

namespace sandman {
namespace {

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Days since 1970-01-01 <-> civil date (proleptic Gregorian), after H. Hinnant's algorithms.
void civilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yy + (*m <= 2);
}

int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

double priceAt(const std::vector<PricePoint>& prices, int64_t ms) {
  if (prices.empty()) return 0;
  double p = prices.front().usd_per_hour;
  for (const auto& pt : prices) {
    if (pt.from_ms > ms) break;
    p = pt.usd_per_hour;
  }
  return p;
}

int64_t overlap(const std::vector<Span>& spans, int64_t a, int64_t b) {
  int64_t total = 0;
  for (const auto& s : spans) {
    if (s.end_ms <= a) continue;
    if (s.start_ms >= b) break;
    total += std::min(s.end_ms, b) - std::max(s.start_ms, a);
  }
  return total;
}

}  // namespace

int64_t costMicros(int64_t ms, double usd_per_hour, double share) {
  // USD/h x h x 1e6 = USD/h x ms / 3.6; long double keeps whole cents whole.
  const long double v = static_cast<long double>(ms) * usd_per_hour * share / 3.6L;
  return static_cast<int64_t>(std::llround(v));
}

std::vector<LedgerEntry> priceHolding(const Holding& h, const std::vector<PricePoint>& prices,
                                      const std::vector<Span>& idle) {
  std::vector<LedgerEntry> out;
  int64_t at = h.start_ms;
  while (at < h.end_ms) {
    int64_t cut = std::min(h.end_ms, bucketStart(at, CostStep::kDay) + kDayMs);
    for (const auto& pt : prices) {
      if (pt.from_ms > at && pt.from_ms < cut) {
        cut = pt.from_ms;
        break;
      }
    }
    LedgerEntry e;
    e.h = h;
    e.h.start_ms = at;
    e.h.end_ms = cut;
    e.usd_per_hour = priceAt(prices, at);
    e.cost_micros = costMicros(cut - at, e.usd_per_hour, h.share);
    e.idle_ms = overlap(idle, at, cut);
    e.idle_cost_micros = costMicros(e.idle_ms, e.usd_per_hour, h.share);
    out.push_back(std::move(e));
    at = cut;
  }
  return out;
}

std::optional<CostStep> parseCostStep(const std::string& s) {
  if (s == "day") return CostStep::kDay;
  if (s == "week") return CostStep::kWeek;
  if (s == "month") return CostStep::kMonth;
  return std::nullopt;
}

const char* toString(CostStep s) {
  switch (s) {
    case CostStep::kDay: return "day";
    case CostStep::kWeek: return "week";
    case CostStep::kMonth: return "month";
  }
  return "day";
}

int64_t bucketStart(int64_t ms, CostStep step) {
  const int64_t day = floorDiv(ms, kDayMs);
  switch (step) {
    case CostStep::kDay: return day * kDayMs;
    case CostStep::kWeek: {
      // 1970-01-01 was a Thursday: Monday-based weeks start 3 days earlier.
      const int64_t week = floorDiv(day + 3, 7);
      return (week * 7 - 3) * kDayMs;
    }
    case CostStep::kMonth: {
      int64_t y = 0;
      unsigned m = 0, d = 0;
      civilFromDays(day, &y, &m, &d);
      return daysFromCivil(y, m, 1) * kDayMs;
    }
  }
  return day * kDayMs;
}

int64_t nextBucket(int64_t start, CostStep step) {
  switch (step) {
    case CostStep::kDay: return start + kDayMs;
    case CostStep::kWeek: return start + 7 * kDayMs;
    case CostStep::kMonth: {
      int64_t y = 0;
      unsigned m = 0, d = 0;
      civilFromDays(floorDiv(start, kDayMs), &y, &m, &d);
      return (m == 12 ? daysFromCivil(y + 1, 1, 1) : daysFromCivil(y, m + 1, 1)) * kDayMs;
    }
  }
  return start + kDayMs;
}

}  // namespace sandman
