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
  void registerRoutes(httplib::Server& server) override;

 private:
  void list(const httplib::Request& req, httplib::Response& res);
  void get(const httplib::Request& req, httplib::Response& res);
  void ack(const httplib::Request& req, httplib::Response& res);
  void rules(httplib::Response& res);

  AlertEngine& engine_;
};

}  // namespace sandman
