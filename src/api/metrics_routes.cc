#include "api/metrics_routes.h"

#include "telemetry/prometheus_text.h"

namespace sandman {

void MetricsRoutes::registerRoutes(Router& router) {
  auto handler = [this](const ApiRequest& req, ApiResponse& res) {
    res.status = 200;
    res.set_content(exporter_.render(loopback_only_ || req.authenticated), kPrometheusContentType);
  };
  // Bare /metrics is where Prometheus looks by default; /api/v1/metrics is the
  // same text under the API prefix (always behind the token there).
  router.get("/metrics", handler);
  router.get("/api/v1/metrics", handler);
}

}  // namespace sandman
