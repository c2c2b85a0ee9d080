#include "api/alert_routes.h"

#include <charconv>
#include <string>

#include "alerts/alert_json.h"
#include "alerts/rule_file.h"
#include "common/utf8.h"

namespace sandman {
namespace {

using nlohmann::json;

constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxLimit = 1000;
constexpr size_t kMaxAckerLength = 64;

// Whole decimal numbers only: "12", not "+12", "1e3" or "12abc".
std::optional<int64_t> parseId(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

Result<int64_t> pathId(const ApiRequest& req) {
  auto id = parseId(req.matches[1]);
  if (!id) return invalid("alert id must be a positive whole number: " + printableExcerpt(req.matches[1], 32));
  return *id;
}

// "by" names who acknowledged; printable ASCII so it is safe in logs and UIs.
Result<std::string> ackerFrom(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return std::string("api");
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid("ack body must be a JSON object, e.g. {\"by\": \"alice\"}, or empty");
  for (const auto& [key, _] : j.items()) {
    if (key != "by") return invalid("unknown field '" + printableExcerpt(key, 40) + "' in ack body (only \"by\")");
  }
  if (!j.contains("by")) return std::string("api");
  if (!j["by"].is_string()) return invalid("'by' must be a string");
  std::string by = j["by"].get<std::string>();
  if (by.empty() || by.size() > kMaxAckerLength) return invalid("'by' must be 1 to 64 characters");
  for (unsigned char c : by) {
    if (c < 0x20 || c > 0x7e) return invalid("'by' must be printable ASCII");
  }
  return by;
}

// OpenAPI operations of the routes below (api/openapi.h).
constexpr std::string_view kDocs = R"json({
"schemas": {
  "Alert": {
    "type": "object", "additionalProperties": false,
    "required": ["id", "rule", "severity", "state", "fingerprint", "labels", "value", "summary", "pending_at",
                 "fired_at", "resolved_at", "acked_at", "acked_by"],
    "properties": {
      "id": {"type": "integer", "minimum": 1}, "rule": {"type": "string"}, "severity": {"type": "string"},
      "state": {"type": "string", "enum": ["pending", "firing", "resolved"]},
      "fingerprint": {"type": "string"},
      "labels": {"type": "object", "additionalProperties": {"type": "string"}},
      "value": {"type": "number"}, "summary": {"type": "string"},
      "pending_at": {"$ref": "#/components/schemas/Timestamp"},
      "fired_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "resolved_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "acked_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "acked_by": {"type": ["string", "null"]}
    }
  },
  "AlertId": {"type": "integer", "minimum": 1, "maximum": 999999999999999999}
},
"routes": {
  "GET /alerts": {"operationId": "listAlerts", "summary": "Alerts in a state (default active: pending or firing)", "tag": "Alerts",
    "parameters": [
      {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["active", "pending", "firing", "resolved", "all"], "default": "active"}},
      {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["alerts", "count", "state"],
      "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
                     "count": {"type": "integer", "minimum": 0}, "state": {"type": "string"}}}}},
    "errors": [400]},
  "GET /alerts/rules": {"operationId": "listAlertRules", "summary": "The alert rules in force", "tag": "Alerts",
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["rules"],
      "properties": {"rules": {"type": "array", "items": {"type": "object", "additionalProperties": false,
        "required": ["name", "metric", "op", "threshold", "for", "severity", "scope", "summary"],
        "properties": {"name": {"type": "string"}, "metric": {"type": "string"}, "op": {"type": "string"},
          "threshold": {"type": "number"}, "for": {"type": "string", "description": "a duration (30s, 5m)"},
          "severity": {"type": "string"}, "scope": {"type": "string"}, "summary": {"type": "string"}}}}}}}}},
  "GET /alerts/{id}": {"operationId": "getAlert", "summary": "One alert", "tag": "Alerts",
    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/AlertId"}}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Alert"}}}, "errors": [400, 404]},
  "POST /alerts/{id}/ack": {"operationId": "ackAlert", "summary": "Acknowledge an alert", "tag": "Alerts",
    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/AlertId"}}],
    "body": {"type": "object", "additionalProperties": false,
             "properties": {"by": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[ -~]+$", "default": "api"}}},
    "body_required": false,
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Alert"}}}, "errors": [400, 404, 409]}
}
})json";

}  // namespace

void AlertRoutes::registerRoutes(Router& router) {
  for (const char* prefix : kApiPrefixes) {
    std::string base = std::string(prefix) + "/alerts";
    router.get(base, [this](const ApiRequest& req, ApiResponse& res) { list(req, res); });
    // Before the {id} route, which would otherwise claim "rules".
    router.get(base + "/rules", [this](const ApiRequest&, ApiResponse& res) { rules(res); });
    router.get(base + "/{id}", [this](const ApiRequest& req, ApiResponse& res) { get(req, res); });
    router.post(base + "/{id}/ack",
                [this](const ApiRequest& req, ApiResponse& res) { ack(req, res); });
  }
  router.document(kDocs);
}

void AlertRoutes::list(const ApiRequest& req, ApiResponse& res) {
  std::string state = req.has_param("state") ? req.get_param_value("state") : "active";
  auto filter = parseAlertFilter(state);
  if (!filter) {
    return sendError(res, invalid("state must be one of active, pending, firing, resolved, all (got '" +
                                  printableExcerpt(state, 32) + "')"));
  }
  size_t limit = kDefaultLimit;
  if (req.has_param("limit")) {
    auto n = parseId(req.get_param_value("limit"));
    if (!n || *n > static_cast<int64_t>(kMaxLimit)) {
      return sendError(res, invalid("limit must be a whole number from 1 to " + std::to_string(kMaxLimit)));
    }
    limit = static_cast<size_t>(*n);
  }
  auto alerts = engine_.list(*filter, limit);
  if (!alerts.ok()) return sendError(res, alerts.error());
  json arr = json::array();
  for (const auto& a : alerts.value()) arr.push_back(alertJson(a));
  sendJson(res, 200, {{"alerts", arr}, {"count", arr.size()}, {"state", state}});
}

void AlertRoutes::get(const ApiRequest& req, ApiResponse& res) {
  auto id = pathId(req);
  if (!id.ok()) return sendError(res, id.error());
  auto a = engine_.get(*id);
  if (!a.ok()) return sendError(res, a.error());
  sendJson(res, 200, alertJson(a.value()));
}

void AlertRoutes::ack(const ApiRequest& req, ApiResponse& res) {
  auto id = pathId(req);
  if (!id.ok()) return sendError(res, id.error());
  auto by = ackerFrom(req.body);
  if (!by.ok()) return sendError(res, by.error());
  auto a = engine_.ack(*id, *by);
  if (!a.ok()) return sendError(res, a.error());
  sendJson(res, 200, alertJson(a.value()));
}

void AlertRoutes::rules(ApiResponse& res) { sendJson(res, 200, alertRulesJson(engine_.rules())); }

}  // namespace sandman
