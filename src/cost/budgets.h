// BudgetMonitor: monthly budgets per user, team or project, measured against
// the ledger (month to date, running sessions accrued) with a forecast of the
// month's end, and --budget-enforcement: warn, or block new spending (402).
// Thread-safe: readings are cached under mu_; the ledger is thread-safe.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "cost/cost_ledger.h"
#include "model/gpu_snapshot.h"

namespace sandman {

struct BudgetStatus {
  Budget budget;
  int64_t used_micros = 0;      // this month so far
  int64_t forecast_micros = 0;  // at the month's end, see forecastMonthEnd
  double used_ratio = 0;
  double forecast_ratio = 0;
};

// The forecast: month-to-date spend plus the mean daily spend of the last 7
// days (or of the month so far, when younger) times the days left. Linear,
// so a lab that stopped spending sees its forecast fall within a week.
int64_t forecastMonthEnd(int64_t used_micros, int64_t recent_micros, int64_t recent_window_ms,
                         int64_t left_in_month_ms);

// "team/lab"
std::string budgetLabel(const Budget& b);

class BudgetMonitor {
 public:
  BudgetMonitor(CostLedger& ledger, bool block, Millis refresh = std::chrono::seconds(60));

  Result<std::vector<BudgetStatus>> statuses();
  Result<BudgetStatus> status(const Budget& b);
  // The last evaluation, refreshed when older than `refresh` (alerts, /metrics).
  std::vector<BudgetReading> readings();
  // Forgets the cached readings (a budget was set or removed).
  void invalidate();
  // For a create or an extension of a session paid by (user, team, project):
  // with --budget-enforcement block, kOverBudget carrying the figures when
  // any of their budgets is spent; with warn, a log line and ok.
  Status admit(const std::string& user_id, const std::string& team, const std::string& project,
               const std::string& what);
  bool blocking() const { return block_; }

 private:
  CostLedger& ledger_;
  const bool block_;
  const Millis refresh_;
  std::mutex mu_;
  std::optional<TimePoint> read_at_;     // GUARDED_BY(mu_)
  std::vector<BudgetReading> readings_;  // GUARDED_BY(mu_)
};

}  // namespace sandman
