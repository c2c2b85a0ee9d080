// Small helpers every route module shares: JSON replies, error replies in the
// API's {"error","code"} shape, and the prefixes routes are served under.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace sandman {

// Every API route is served under /api/v1 and, for the seeds' clients, bare.
inline constexpr const char* kApiPrefixes[] = {"/api/v1", ""};

void sendJson(httplib::Response& res, int status, const nlohmann::json& body);
void sendError(httplib::Response& res, const Error& e);

// A group of routes owned by one module (telemetry, alerts, ...), added to
// the ApiServer before it binds. Handlers run on the server's thread pool.
class RouteModule {
 public:
  virtual ~RouteModule() = default;
  virtual void registerRoutes(httplib::Server& server) = 0;
};

}  // namespace sandman
