#include "cost/forecast.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace sandman {
namespace {

// 1970-01-01 was a Thursday: hour 0 of the epoch is hour 72 of its week.
constexpr int64_t kEpochHourOfWeek = 72;

// splitmix64: a fixed, portable stream (std::normal_distribution is not the
// same across standard libraries; the backtest's figures must be).
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) / 9007199254740992.0; }
  double gaussian() {
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
};

std::vector<double> flatForecast(const std::vector<double>& history, int horizon_hours, int64_t start_ms) {
  std::vector<double> out(static_cast<size_t>(std::max(0, horizon_hours)), 0.0);
  if (history.empty()) return out;
  if (history.size() < 24) {
    const double mean = std::accumulate(history.begin(), history.end(), 0.0) / static_cast<double>(history.size());
    std::fill(out.begin(), out.end(), mean);
    return out;
  }
  double sum[24] = {}, n[24] = {};
  const int first = hourOfWeek(start_ms) % 24;
  for (size_t i = 0; i < history.size(); ++i) {
    sum[(first + i) % 24] += history[i];
    n[(first + i) % 24] += 1;
  }
  for (size_t i = 0; i < out.size(); ++i) {
    const size_t h = (first + history.size() + i) % 24;
    out[i] = sum[h] / n[h];
  }
  return out;
}

}  // namespace

int hourOfWeek(int64_t ms) {
  const int64_t h = ms >= 0 ? ms / kHourMs : (ms - kHourMs + 1) / kHourMs;
  return static_cast<int>((((h + kEpochHourOfWeek) % kHoursPerWeek) + kHoursPerWeek) % kHoursPerWeek);
}

std::vector<double> forecastSeasonal(const std::vector<double>& history, int64_t start_ms, int horizon_hours,
                                     ForecastOptions options) {
  const int n = static_cast<int>(history.size());
  const int k = std::min(std::max(options.weeks, 1), n / kHoursPerWeek);
  if (k < 1) return flatForecast(history, horizon_hours, start_ms);

  const int first = n - k * kHoursPerWeek;  // index of the first hour fitted on
  const int first_how = hourOfWeek(start_ms + static_cast<int64_t>(first) * kHourMs);
  std::vector<double> weekly(static_cast<size_t>(k), 0.0);
  std::vector<double> share(kHoursPerWeek, 0.0);
  double total = 0;
  for (int i = first; i < n; ++i) {
    const double v = std::max(0.0, history[static_cast<size_t>(i)]);
    weekly[static_cast<size_t>((i - first) / kHoursPerWeek)] += v;
    share[static_cast<size_t>((first_how + (i - first)) % kHoursPerWeek)] += v;
    total += v;
  }
  std::vector<double> out(static_cast<size_t>(std::max(0, horizon_hours)), 0.0);
  if (total <= 0) return out;
  for (double& s : share) s /= total;

  // Least squares through (w, W_w), w = 1..k; one week fits a flat line.
  double slope = 0, mean_w = 0, mean_y = 0;
  for (int w = 0; w < k; ++w) {
    mean_w += w + 1;
    mean_y += weekly[static_cast<size_t>(w)];
  }
  mean_w /= k;
  mean_y /= k;
  if (k > 1) {
    double sxy = 0, sxx = 0;
    for (int w = 0; w < k; ++w) {
      sxy += (w + 1 - mean_w) * (weekly[static_cast<size_t>(w)] - mean_y);
      sxx += (w + 1 - mean_w) * (w + 1 - mean_w);
    }
    slope = sxy / sxx;
  }
  const int next_how = (first_how + k * kHoursPerWeek) % kHoursPerWeek;
  for (size_t i = 0; i < out.size(); ++i) {
    const double week = k + 1 + static_cast<double>(i / kHoursPerWeek);
    const double level = std::max(0.0, mean_y + slope * (week - mean_w));
    out[i] = level * share[(next_how + i) % kHoursPerWeek];
  }
  return out;
}

std::vector<double> forecastLastWeek(const std::vector<double>& history, int horizon_hours) {
  std::vector<double> out(static_cast<size_t>(std::max(0, horizon_hours)), 0.0);
  if (history.empty()) return out;
  const size_t period = std::min<size_t>(history.size(), kHoursPerWeek);
  const size_t base = history.size() - period;
  for (size_t i = 0; i < out.size(); ++i) out[i] = history[base + i % period];
  return out;
}

double wape(const std::vector<double>& actual, const std::vector<double>& forecast) {
  double err = 0, sum = 0;
  for (size_t i = 0; i < actual.size() && i < forecast.size(); ++i) {
    err += std::abs(actual[i] - forecast[i]);
    sum += std::abs(actual[i]);
  }
  return sum > 0 ? err / sum : (err > 0 ? 1.0 : 0.0);
}

double mape(const std::vector<double>& actual, const std::vector<double>& forecast) {
  double sum = 0;
  int n = 0;
  for (size_t i = 0; i < actual.size() && i < forecast.size(); ++i) {
    if (actual[i] == 0) continue;
    sum += std::abs((actual[i] - forecast[i]) / actual[i]);
    ++n;
  }
  return n > 0 ? sum / n : 0.0;
}

std::vector<double> dailyTotals(const std::vector<double>& hourly) {
  std::vector<double> out(hourly.size() / 24, 0.0);
  for (size_t i = 0; i < out.size() * 24; ++i) out[i / 24] += hourly[i];
  return out;
}

SyntheticYear syntheticDemandYear(uint64_t seed, double trend, double noise) {
  SyntheticYear y;
  y.start_ms = 1736121600000;  // 2025-01-06T00:00:00Z, a Monday
  const int hours = 365 * 24;
  SplitMix rng{seed};
  y.hourly.resize(hours);
  for (int t = 0; t < hours; ++t) {
    const int hod = t % 24;
    const int dow = (t / 24) % 7;  // 0 = Monday
    // Busy from about 09:00 to 19:00 UTC with a peak mid-afternoon, a floor
    // of overnight batch work; weekends at a third.
    const double day = 0.35 + 0.65 * std::exp(-std::pow((hod - 14.0) / 4.0, 2.0));
    const double week = dow < 5 ? 1.0 : (dow == 5 ? 0.4 : 0.3);
    const double level = 40.0 * (1.0 + trend * t / hours);
    const double v = level * day * week * (1.0 + noise * rng.gaussian());
    y.hourly[static_cast<size_t>(t)] = std::max(0.0, v);
  }
  return y;
}

BacktestResult backtest(const SyntheticYear& year, int holdout_weeks, ForecastOptions options) {
  BacktestResult r;
  r.holdout_weeks = holdout_weeks;
  const int n = static_cast<int>(year.hourly.size());
  const int origin = n - holdout_weeks * kHoursPerWeek;
  r.history_hours = origin;
  if (origin < kHoursPerWeek || holdout_weeks < 1) return r;
  auto slice = [&](int from, int to) {
    return std::vector<double>(year.hourly.begin() + from, year.hourly.begin() + to);
  };
  // Rolling: each held-out week forecast from everything before it.
  std::vector<double> actual, seasonal, naive;
  for (int w = 0; w < holdout_weeks; ++w) {
    const int o = origin + w * kHoursPerWeek;
    const auto hist = slice(0, o);
    const auto s = forecastSeasonal(hist, year.start_ms, kHoursPerWeek, options);
    const auto b = forecastLastWeek(hist, kHoursPerWeek);
    const auto a = slice(o, o + kHoursPerWeek);
    actual.insert(actual.end(), a.begin(), a.end());
    seasonal.insert(seasonal.end(), s.begin(), s.end());
    naive.insert(naive.end(), b.begin(), b.end());
  }
  r.seasonal_wape_7d = wape(actual, seasonal);
  r.naive_wape_7d = wape(actual, naive);
  // One origin: the whole held-out span.
  const auto hist = slice(0, origin);
  const int span = n - origin;
  const auto a = slice(origin, n);
  const auto s = forecastSeasonal(hist, year.start_ms, span, options);
  const auto b = forecastLastWeek(hist, span);
  r.seasonal_wape_all = wape(a, s);
  r.naive_wape_all = wape(a, b);
  r.seasonal_daily_mape = mape(dailyTotals(a), dailyTotals(s));
  r.naive_daily_mape = mape(dailyTotals(a), dailyTotals(b));
  return r;
}

}  // namespace sandman
