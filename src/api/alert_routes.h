// AlertRoutes: the alert API — GET /alerts (active by default; ?state=,
// ?limit=), GET /alerts/{id}, POST /alerts/{id}/ack, GET /alerts/rules.
// Thread-safe (the engine is).
#pragma once

#include "alerts/alert_engine.h"
#include "api/http_util.h"

namespace sandman {

class AlertRoutes final : public RouteModule {
 public:
  explicit AlertRoutes(AlertEngine& engine) : engine_(engine) {}
  void registerRoutes(Router& router) override;

 private:
  void list(const ApiRequest& req, ApiResponse& res);
  void get(const ApiRequest& req, ApiResponse& res);
  void ack(const ApiRequest& req, ApiResponse& res);
  void rules(ApiResponse& res);

  AlertEngine& engine_;
};

}  // namespace sandman
