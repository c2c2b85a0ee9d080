#include "cost/budgets.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/time_format.h"

namespace sandman {
namespace {

constexpr int64_t kRecentMs = 7 * kDayMs;

double ratio(int64_t micros, double limit_usd) {
  return limit_usd > 0 ? static_cast<double>(micros) / 1e6 / limit_usd : 0;
}

std::string usdText(int64_t micros) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(micros) / 1e6);
  return buf;
}

}  // namespace

int64_t forecastMonthEnd(int64_t used_micros, int64_t recent_micros, int64_t recent_window_ms,
                         int64_t left_in_month_ms) {
  if (recent_window_ms < 3'600'000 || left_in_month_ms <= 0) return used_micros;  // under an hour: no rate yet
  const long double per_ms = static_cast<long double>(recent_micros) / recent_window_ms;
  return used_micros + static_cast<int64_t>(std::llround(per_ms * left_in_month_ms));
}

std::string budgetLabel(const Budget& b) { return std::string(toString(b.scope)) + "/" + b.name; }

BudgetMonitor::BudgetMonitor(CostLedger& ledger, bool block, Millis refresh)
    : ledger_(ledger), block_(block), refresh_(refresh) {}

Result<BudgetStatus> BudgetMonitor::status(const Budget& b) {
  const TimePoint now = ledger_.clock().now();
  const int64_t now_ms = toUnixMillis(now);
  const int64_t month = bucketStart(now_ms, CostStep::kMonth);
  auto used = ledger_.monthToDate(b.scope, b.name, now);
  if (!used.ok()) return used.error();
  CostQuery q;
  q.group_by = toString(b.scope);
  q.filter_by = toString(b.scope);
  q.filter = b.name;
  q.from_ms = std::max(month, now_ms - kRecentMs);
  q.to_ms = now_ms;
  int64_t recent = 0;
  if (q.to_ms > q.from_ms) {
    auto r = ledger_.report(q);
    if (!r.ok()) return r.error();
    recent = r->total_micros;
  }
  BudgetStatus s;
  s.budget = b;
  s.used_micros = used.value();
  s.forecast_micros =
      forecastMonthEnd(s.used_micros, recent, q.to_ms - q.from_ms, nextBucket(month, CostStep::kMonth) - now_ms);
  s.used_ratio = ratio(s.used_micros, b.usd_per_month);
  s.forecast_ratio = ratio(s.forecast_micros, b.usd_per_month);
  return s;
}

Result<std::vector<BudgetStatus>> BudgetMonitor::statuses() {
  auto budgets = ledger_.store().budgets();
  if (!budgets.ok()) return budgets.error();
  std::vector<BudgetStatus> out;
  for (const auto& b : budgets.value()) {
    auto s = status(b);
    if (!s.ok()) return s.error();
    out.push_back(std::move(s).value());
  }
  return out;
}

std::vector<BudgetReading> BudgetMonitor::readings() {
  const TimePoint now = ledger_.clock().now();
  {
    std::lock_guard lock(mu_);
    if (read_at_ && now - *read_at_ < refresh_) return readings_;
  }
  auto all = statuses();
  std::lock_guard lock(mu_);
  if (!all.ok()) {
    logWarn("budgets not evaluated", {{"error", all.error().message}});
    return readings_;  // the last good ones: an alert keeps its state
  }
  readings_.clear();
  for (const auto& s : all.value()) {
    readings_.push_back({budgetLabel(s.budget), toString(s.budget.scope), s.budget.name, s.budget.usd_per_month,
                         static_cast<double>(s.used_micros) / 1e6, static_cast<double>(s.forecast_micros) / 1e6});
  }
  read_at_ = now;
  return readings_;
}

void BudgetMonitor::invalidate() {
  std::lock_guard lock(mu_);
  read_at_.reset();
}

Status BudgetMonitor::admit(const std::string& user_id, const std::string& team, const std::string& project,
                            const std::string& what) {
  auto budgets = ledger_.store().budgets();
  if (!budgets.ok()) return budgets.error();
  for (const auto& b : budgets.value()) {
    const std::string& payer = b.scope == BudgetScope::kUser ? user_id : b.scope == BudgetScope::kTeam ? team : project;
    if (payer.empty() || payer != b.name) continue;
    auto s = status(b);
    if (!s.ok()) return s.error();
    if (s->used_ratio < 1.0) continue;
    const std::string label = budgetLabel(b);
    const std::string msg = "budget " + label + " is spent: " + usdText(s->used_micros) + " USD of " +
                            usdText(std::llround(b.usd_per_month * 1e6)) + " this month";
    if (!block_) {
      logWarn("over budget; allowed (--budget-enforcement warn)", {{"budget", label}, {"user", user_id}, {"what", what}});
      continue;
    }
    const int64_t now_ms = toUnixMillis(ledger_.clock().now());
    nlohmann::json details = {
        {"budget", {{"id", b.id}, {"budget", label}, {"scope", toString(b.scope)}, {"name", b.name},
                    {"limit_usd", b.usd_per_month}, {"used_usd", static_cast<double>(s->used_micros) / 1e6},
                    {"forecast_usd", static_cast<double>(s->forecast_micros) / 1e6},
                    {"month", formatRfc3339(fromUnixMillis(bucketStart(now_ms, CostStep::kMonth))).substr(0, 7)},
                    {"resets_at", formatRfc3339(fromUnixMillis(nextBucket(bucketStart(now_ms, CostStep::kMonth),
                                                                         CostStep::kMonth)))}}}};
    return overBudget(msg + "; " + what + " refused (--budget-enforcement block): raise the budget with PUT "
                      "/api/v1/budgets or wait for next month; running sessions are not stopped",
                      details.dump());
  }
  return {};
}

}  // namespace sandman
