#include "cost/cost_forecast.h"

#include <algorithm>
#include <map>

#include "common/time_format.h"

namespace sandman {

Result<CostForecastReport> forecastCost(CostLedger& ledger, const std::string& group_by, int horizon_days,
                                        ForecastOptions options) {
  if (horizon_days < 1 || horizon_days > 90) return invalid("the forecast horizon is 1 to 90 days");
  if (options.weeks < 1 || options.weeks > 52) return invalid("the forecast history is 1 to 52 weeks");
  CostForecastReport r;
  r.group_by = group_by;
  r.horizon_days = horizon_days;
  r.options = options;
  const int64_t now = toUnixMillis(ledger.clock().now());
  // The current hour is forecast, not history: a partial hour would read as a drop.
  r.from_ms = now - (((now % kHourMs) + kHourMs) % kHourMs);
  r.to_ms = r.from_ms + static_cast<int64_t>(horizon_days) * kDayMs;
  r.history_from_ms = r.from_ms - static_cast<int64_t>(options.weeks) * kHoursPerWeek * kHourMs;
  auto usage = ledger.hourly(group_by, r.history_from_ms, r.from_ms);
  if (!usage.ok()) return usage.error();
  const int horizon_hours = horizon_days * 24;
  for (const auto& [key, u] : usage.value()) {
    GroupForecast g;
    g.key = key;
    // History starts where the group's first use does: leading empty weeks
    // before a group existed would drag its level down.
    size_t first = 0;
    while (first < u.held_hours.size() && u.held_hours[first] == 0) ++first;
    first -= first % kHoursPerWeek;
    const std::vector<double> hist(u.held_hours.begin() + static_cast<std::ptrdiff_t>(first), u.held_hours.end());
    const int64_t hist_start = r.history_from_ms + static_cast<int64_t>(first) * kHourMs;
    const auto hours = forecastSeasonal(hist, hist_start, horizon_hours, options);
    // Cost at the rate of the last 7 days (the prices and the mix in force
    // now); the whole window's when the last week was empty.
    double recent_h = 0, recent_c = 0, all_h = 0, all_c = 0;
    for (size_t i = 0; i < u.held_hours.size(); ++i) {
      all_h += u.held_hours[i];
      all_c += u.cost_micros[i];
      if (i + kHoursPerWeek >= u.held_hours.size()) {
        recent_h += u.held_hours[i];
        recent_c += u.cost_micros[i];
      }
    }
    const double rate = recent_h > 0 ? recent_c / recent_h : (all_h > 0 ? all_c / all_h : 0.0);
    g.usd_per_slice_hour = rate / 1e6;
    g.history_slice_hours = all_h;
    std::map<int64_t, ForecastDay> days;
    for (size_t i = 0; i < hours.size(); ++i) {
      const int64_t t = r.from_ms + static_cast<int64_t>(i) * kHourMs;
      ForecastDay& d = days[t - (t % kDayMs)];
      d.day_ms = t - (t % kDayMs);
      d.slice_hours += hours[i];
      d.cost_micros += hours[i] * rate;
      g.slice_hours += hours[i];
      g.cost_micros += hours[i] * rate;
    }
    for (const auto& [_, d] : days) g.days.push_back(d);
    r.slice_hours += g.slice_hours;
    r.cost_micros += g.cost_micros;
    r.groups.push_back(std::move(g));
  }
  return r;
}

}  // namespace sandman
