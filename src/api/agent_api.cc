#include "api/agent_api.h"

#include "api/http_util.h"
#include "api/token_auth.h"
#include "common/log.h"
#include "common/utf8.h"
#include "telemetry/agent_wire.h"
#include "telemetry/prometheus_text.h"

namespace sandman {
namespace {

// Every route reads a published snapshot and renders it: nothing can wait,
// so the event loop answers everything itself.
HttpLimits agentLimits(HttpLimits l) {
  l.run_inline = [](const ApiRequest&) { return true; };
  return l;
}

}  // namespace

AgentApi::AgentApi(AgentApiOptions options, std::function<SnapshotPtr()> latest, const MetricsExporter& metrics)
    : options_(std::move(options)),
      latest_(std::move(latest)),
      metrics_(metrics),
      listener_(agentLimits(options_.limits), [this](ApiRequest& req, ApiResponse& res) { handle(req, res); },
                [](int status, const std::string& message, ApiResponse& res) {
                  sendJson(res, status, {{"error", message}, {"code", status >= 500 ? "internal" : "invalid"}});
                }) {
  router_.get("/healthz", [](const ApiRequest&, ApiResponse& res) { res.set_content("ok", "text/plain"); });
  auto metrics_route = [this](const ApiRequest&, ApiResponse& res) {
    // No session or user names exist on the node: every scrape gets the same text.
    res.set_content(metrics_.render(false), kPrometheusContentType);
  };
  router_.get("/metrics", metrics_route);
  router_.get("/api/v1/metrics", metrics_route);
  router_.get("/api/v1/agent/snapshot", [this](const ApiRequest&, ApiResponse& res) { snapshot(res); });
}

void AgentApi::snapshot(ApiResponse& res) const {
  SnapshotPtr snap = latest_();
  if (!snap) return sendError(res, unavailable("no sample yet; retry after one interval"));
  sendJson(res, 200, agentSnapshotJson({options_.node, *snap}));
}

void AgentApi::handle(ApiRequest& req, ApiResponse& res) {
  if (!options_.token.empty() && req.path != "/healthz" &&
      !bearerMatches(req.get_header_value("authorization"), options_.token)) {
    res.set_header("WWW-Authenticate", "Bearer");
    sendError(res, {ErrorKind::kUnauthorized,
                    "missing or wrong agent token: send 'Authorization: Bearer <token>' (the agent's --token-file)"});
  } else {
    switch (router_.dispatch(req, res)) {
      case Router::Outcome::kHandled:
        break;
      case Router::Outcome::kNoRoute:
        sendError(res, notFound("no route " + req.method + " " + printableExcerpt(req.path, 128)));
        break;
      case Router::Outcome::kWrongMethod:
        sendJson(res, 405, {{"error", "the agent is read-only: " + req.method + " is not allowed"}, {"code", "invalid"}});
        break;
    }
  }
  if (res.status >= 300) {
    logInfo("http", {{"method", printableExcerpt(req.method, 16)}, {"path", printableExcerpt(req.path, 128)},
                     {"status", std::to_string(res.status)}, {"remote", req.remote_addr}});
  }
}

}  // namespace sandman
