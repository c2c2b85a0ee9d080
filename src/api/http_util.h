// Small helpers every route module shares: JSON replies, error replies in the
// API's {"error","code"} shape, and the prefixes routes are served under.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "api/http_message.h"
#include "api/router.h"
#include "common/result.h"

namespace sandman {

// Every API route is served under /api/v1 and, for the seeds' clients, bare.
inline constexpr const char* kApiPrefixes[] = {"/api/v1", ""};

// Never throws: strings that are not UTF-8 are dumped with U+FFFD in place.
void sendJson(ApiResponse& res, int status, const nlohmann::json& body);
void sendError(ApiResponse& res, const Error& e);

// A group of routes owned by one module (telemetry, alerts, ...), added to
// the ApiServer before it binds. GET handlers run on the event loop's
// threads, others on the blocking pool; neither may wait on a client.
class RouteModule {
 public:
  virtual ~RouteModule() = default;
  virtual void registerRoutes(Router& router) = 0;
};

}  // namespace sandman
