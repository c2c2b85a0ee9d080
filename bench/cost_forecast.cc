// The forecast's backtest: a synthetic year of hourly slice-hours with daily
// and weekly cycles, a trend and noise (deterministic), its last weeks held
// out and forecast by the seasonal method and by "last week again".
// Usage: cost_forecast_bench [holdout_weeks] [history_weeks]
#include <cstdio>
#include <cstdlib>

#include "cost/forecast.h"

int main(int argc, char** argv) {
  using namespace sandman;
  const int holdout = argc > 1 ? std::atoi(argv[1]) : 4;
  ForecastOptions o;
  if (argc > 2) o.weeks = std::atoi(argv[2]);
  const SyntheticYear year = syntheticDemandYear();
  const BacktestResult r = backtest(year, holdout, o);
  std::printf("synthetic year: %zu hours from 2025-01-06 (Mon), trend +30%%/year, noise 15%%, seed 14\n",
              year.hourly.size());
  std::printf("held out: last %d weeks; fitted on the last %d weeks before each origin\n", r.holdout_weeks, o.weeks);
  std::printf("%-34s %10s %10s\n", "error on the held-out weeks", "seasonal", "naive");
  std::printf("%-34s %9.2f%% %9.2f%%\n", "WAPE hourly, 7-day horizon (rolling)", 100 * r.seasonal_wape_7d,
              100 * r.naive_wape_7d);
  std::printf("%-34s %9.2f%% %9.2f%%\n", "WAPE hourly, whole span, one origin", 100 * r.seasonal_wape_all,
              100 * r.naive_wape_all);
  std::printf("%-34s %9.2f%% %9.2f%%\n", "MAPE daily totals, one origin", 100 * r.seasonal_daily_mape,
              100 * r.naive_daily_mape);
  return 0;
}
