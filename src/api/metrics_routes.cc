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
  router.document(std::string_view(R"json({"routes": {
    "GET /metrics": {"operationId": "metrics", "summary": "Prometheus metrics (text exposition)", "tag": "Telemetry",
      "description": "Open unless the daemon runs with --metrics-auth; without a token, a daemon not on loopback leaves out per-user series.",
      "security": [{}, {"bearer": []}, {"cookie": []}],
      "responses": {"200": {"content": {"text/plain": {"schema": {"type": "string"}}}}}, "errors": [401]},
    "GET /api/v1/metrics": {"operationId": "metricsV1", "summary": "Prometheus metrics, under the API prefix", "tag": "Telemetry",
      "security": [{}, {"bearer": []}, {"cookie": []}],
      "responses": {"200": {"content": {"text/plain": {"schema": {"type": "string"}}}}}, "errors": [401]}
  }})json"));
}

}  // namespace sandman
