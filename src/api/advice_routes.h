// AdviceRoutes: advice from the ledger and the telemetry history —
// GET /advice/rightsizing (sessions that would have fit a smaller profile,
// with the saving) and GET /cost/forecast (slice-hours and USD ahead).
// Thread-safe (the ledger is).
#pragma once

#include <nlohmann/json.hpp>

#include "api/http_util.h"
#include "cost/cost_forecast.h"
#include "cost/cost_ledger.h"
#include "cost/rightsizing.h"

namespace sandman {

class AdviceRoutes final : public RouteModule {
 public:
  explicit AdviceRoutes(CostLedger& ledger) : ledger_(ledger) {}
  void registerRoutes(Router& router) override;

 private:
  void rightsizing(const ApiRequest& req, ApiResponse& res);
  void forecast(const ApiRequest& req, ApiResponse& res);

  CostLedger& ledger_;
};

// The wire forms (the CLI prints the same fields).
nlohmann::json rightsizingJson(const RightsizingReport& r, bool all, size_t limit);
nlohmann::json forecastJson(const CostForecastReport& r);

// The rule, in words, as the README and the response state it.
extern const char* const kRightsizingRule;
extern const char* const kForecastMethod;

}  // namespace sandman
