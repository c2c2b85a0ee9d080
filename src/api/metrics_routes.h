// MetricsRoutes: serves GET /metrics (and /api/v1/metrics) in the Prometheus
// text format from a MetricsExporter. Auth is the ApiServer's: /metrics is
// open unless --metrics-auth. Thread-safe (the exporter is).
#pragma once

#include "api/http_util.h"
#include "telemetry/metrics_exporter.h"

namespace sandman {

class MetricsRoutes final : public RouteModule {
 public:
  explicit MetricsRoutes(const MetricsExporter& exporter) : exporter_(exporter) {}
  void registerRoutes(httplib::Server& server) override;

 private:
  const MetricsExporter& exporter_;
};

}  // namespace sandman
