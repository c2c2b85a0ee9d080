// CostForecast: slice-hours and USD per profile or team for the coming 7 or
// 30 days, from the ledger's hourly history by forecastSeasonal (forecast.h).
// Thread-safe as the ledger is; holds no state of its own.
#pragma once

#include <string>
#include <vector>

#include "cost/cost_ledger.h"
#include "cost/forecast.h"

namespace sandman {

struct ForecastDay {
  int64_t day_ms = 0;
  double slice_hours = 0;
  double cost_micros = 0;
};

struct GroupForecast {
  std::string key;
  double slice_hours = 0;
  double cost_micros = 0;
  double usd_per_slice_hour = 0;  // the rate the cost is forecast at (last 7 days of history)
  double history_slice_hours = 0;  // over the whole history window
  std::vector<ForecastDay> days;   // UTC days, the first and last partial
};

struct CostForecastReport {
  std::string group_by;
  int horizon_days = 0;
  int64_t from_ms = 0;          // the forecast's first hour (the current one)
  int64_t to_ms = 0;
  int64_t history_from_ms = 0;  // history fitted on: [history_from, from)
  ForecastOptions options;
  std::vector<GroupForecast> groups;  // by key
  double slice_hours = 0;
  double cost_micros = 0;
};

// `group_by`: profile or team (any cost group column works); horizon in days (1-90).
Result<CostForecastReport> forecastCost(CostLedger& ledger, const std::string& group_by, int horizon_days,
                                        ForecastOptions options = {});

}  // namespace sandman
