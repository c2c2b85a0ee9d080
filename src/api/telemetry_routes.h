// TelemetryRoutes: the telemetry API — GET /metrics/realtime (the latest
// snapshot: every GPU and MIG instance with its holder), GET
// /gpus/{uuid}/metrics?from=&to=&step= (one device's history) and GET
// /metrics/trends?hours= (utilisation and slice-hours per GPU model and per
// profile). Reads only the published snapshot and the history's read
// connection, so a slow driver or a busy writer never holds a request up.
// Thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include "api/http_util.h"
#include "common/clock.h"
#include "store/metrics_history.h"
#include "telemetry/sampler.h"

namespace sandman {

// Limits on what one request may ask for.
struct TelemetryRouteLimits {
  int64_t max_points = 11000;  // per series; a larger step answers a longer window
  int max_trend_hours = 24 * 31;
};

class TelemetryRoutes final : public RouteModule {
 public:
  // history may be null (no persistence): the history routes then answer 503.
  TelemetryRoutes(const TelemetrySampler& sampler, MetricsHistory* history, const Clock& clock,
                  TelemetryRouteLimits limits = {})
      : sampler_(sampler), history_(history), clock_(clock), limits_(limits) {}
  void registerRoutes(Router& router) override;

  // The snapshot as GET /metrics/realtime renders it (also for tests).
  static nlohmann::json snapshotJson(const TelemetrySnapshot& snap);

 private:
  void realtime(ApiResponse& res) const;
  void deviceMetrics(const ApiRequest& req, ApiResponse& res) const;
  void trends(const ApiRequest& req, ApiResponse& res) const;

  const TelemetrySampler& sampler_;
  MetricsHistory* const history_;
  const Clock& clock_;
  const TelemetryRouteLimits limits_;
};

}  // namespace sandman
