#include "api/metrics_routes.h"

#include "telemetry/prometheus_text.h"

namespace sandman {

void MetricsRoutes::registerRoutes(httplib::Server& server) {
  auto handler = [this](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(exporter_.render(), kPrometheusContentType);
  };
  // Bare /metrics is where Prometheus looks by default; /api/v1/metrics is the
  // same text under the API prefix (always behind the token there).
  server.Get("/metrics", handler);
  server.Get("/api/v1/metrics", handler);
}

}  // namespace sandman
