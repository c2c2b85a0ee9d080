// Forecast: hourly demand (slice-hours, or USD) for the coming days from its
// own past, by a seasonal hour-of-week profile times a weekly level with a
// linear trend; and the backtest that measures it against "last week again".
// Pure functions, no clock, no state; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace sandman {

inline constexpr int64_t kHourMs = 3'600'000;
inline constexpr int kHoursPerWeek = 168;

struct ForecastOptions {
  int weeks = 8;  // full weeks of history the profile and the trend are fitted on
};

// Monday 00:00 UTC = 0 ... Sunday 23:00 = 167.
int hourOfWeek(int64_t ms);

// `history`: one value per hour, the first hour starting at `start_ms` (an
// hour boundary), the last one complete. Returns `horizon_hours` values for
// the hours that follow it. The method (README "Forecast"):
//   - W_1..W_K: the totals of the last K = min(weeks, full weeks available)
//     weeks, each the 168 hours ending a whole number of weeks before the end;
//   - share[h]: the fraction of those K weeks' total that fell in hour-of-week h;
//   - the weekly level: a least-squares line through W_1..W_K, read at week
//     K + j for the j-th week ahead (never below 0);
//   - forecast(hour) = level(week of the hour) x share[hour of week].
// With less than a week of history: the mean of each hour of the day (or the
// plain mean under a day), flat in time.
std::vector<double> forecastSeasonal(const std::vector<double>& history, int64_t start_ms, int horizon_hours,
                                     ForecastOptions options = {});
// The naive baseline: the last 168 hours repeated (or the last value, under a week).
std::vector<double> forecastLastWeek(const std::vector<double>& history, int horizon_hours);

// Weighted absolute percentage error: sum |a - f| / sum |a| (0 when both are 0).
double wape(const std::vector<double>& actual, const std::vector<double>& forecast);
// Mean absolute percentage error over the points whose actual is not 0.
double mape(const std::vector<double>& actual, const std::vector<double>& forecast);
// Sums of 24 hours (the last partial day left out).
std::vector<double> dailyTotals(const std::vector<double>& hourly);

// A deterministic synthetic year of hourly slice-hours starting on a Monday
// (2025-01-06T00:00Z): a level growing by `trend` over the year, a working-day
// daily shape, quieter weekends, and multiplicative Gaussian noise of
// relative size `noise`, all from `seed` (the same seed, the same year).
struct SyntheticYear {
  int64_t start_ms = 0;
  std::vector<double> hourly;
};
SyntheticYear syntheticDemandYear(uint64_t seed = 14, double trend = 0.3, double noise = 0.15);

// Holds out the last `holdout_weeks` weeks of `year`; forecasts them from the
// history before, both ways: week by week (7-day horizon, each origin seeing
// everything before it) and in one go (the whole held-out span).
struct BacktestResult {
  int holdout_weeks = 0;
  int history_hours = 0;
  double seasonal_wape_7d = 0, naive_wape_7d = 0;    // hourly, rolling 7-day horizon
  double seasonal_wape_all = 0, naive_wape_all = 0;  // hourly, one origin, whole held-out span
  double seasonal_daily_mape = 0, naive_daily_mape = 0;  // daily totals, one origin
};
BacktestResult backtest(const SyntheticYear& year, int holdout_weeks = 4, ForecastOptions options = {});

}  // namespace sandman
