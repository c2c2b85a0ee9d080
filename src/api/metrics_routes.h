// MetricsRoutes: serves GET /metrics (and /api/v1/metrics) in the Prometheus
// text format from a MetricsExporter. Auth is the ApiServer's: /metrics is
// open unless --metrics-auth; when the API listens beyond loopback, an open
// scrape without the token gets no user_id labels. Thread-safe (the exporter is).
#pragma once

#include "api/http_util.h"
#include "telemetry/metrics_exporter.h"

namespace sandman {

class MetricsRoutes final : public RouteModule {
 public:
  // loopback_only: the API is bound to a loopback address, so every scraper is local.
  MetricsRoutes(const MetricsExporter& exporter, bool loopback_only)
      : exporter_(exporter), loopback_only_(loopback_only) {}
  void registerRoutes(Router& router) override;

 private:
  const MetricsExporter& exporter_;
  const bool loopback_only_;
};

}  // namespace sandman
