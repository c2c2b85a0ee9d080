#include "api/telemetry_routes.h"

#include <charconv>
#include <cmath>
#include <string>

#include "api/list_query.h"
#include "common/duration.h"
#include "common/time_format.h"
#include "common/utf8.h"

namespace sandman {
namespace {

using nlohmann::json;

constexpr int64_t kDefaultWindowMs = 3'600'000;
// The default step aims at about this many points for the window asked.
constexpr int64_t kDefaultPoints = 360;

// Values carry 3 decimals at most: averages would otherwise print as
// 43.333333333333336, which no dashboard wants.
json num(const std::optional<double>& v) {
  if (!v) return nullptr;
  return std::round(*v * 1000.0) / 1000.0;
}
json holder(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json deviceJson(const DeviceReading& d) {
  json j = {
      {"uuid", d.uuid},
      {"gpu_uuid", d.gpu_uuid},
      {"gpu_index", d.gpu_index},
      {"model", d.model_name},
      {"utilization_pct", num(d.utilization_pct)},
      {"temperature_c", num(d.temperature_c)},
      {"memory_used_mib", d.memory_used_mib},
      {"memory_total_mib", d.memory_total_mib},
      {"compute_processes", d.compute_processes},
      {"session_id", holder(d.session_id)},
      {"user_id", holder(d.user_id)},
  };
  if (!d.node.empty()) {
    j["node"] = d.node;
    j["pod_uid"] = holder(d.pod_uid);
  }
  if (d.is_mig) {
    j["profile"] = d.profile;
    j["gpu_instance_id"] = d.gpu_instance_id;
    j["compute_slices"] = d.compute_slices;
  } else {
    j["mig_enabled"] = d.mig_enabled;
    j["memory_utilization_pct"] = num(d.memory_utilization_pct);
    j["power_w"] = num(d.power_w);
    j["power_limit_w"] = num(d.power_limit_w);
  }
  return j;
}

// GPU-<uuid> or MIG-<uuid> (NVML's forms: hex digits and dashes), checked
// before the name reaches a lookup, a log line or SQL.
bool isDeviceUuid(const std::string& s) {
  if (s.size() < 5 || s.size() > 80) return false;
  if (s.rfind("GPU-", 0) != 0 && s.rfind("MIG-", 0) != 0) return false;
  for (size_t i = 4; i < s.size(); ++i) {
    char c = s[i];
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != '-') return false;
  }
  return true;
}

std::string param(const ApiRequest& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : std::string();
}

json stat(const std::optional<double>& lo, const std::optional<double>& avg,
          const std::optional<double>& hi) {
  return {{"min", num(lo)}, {"avg", num(avg)}, {"max", num(hi)}};
}

// OpenAPI operations of the routes below (api/openapi.h).
constexpr std::string_view kDocs = R"json({
"schemas": {
  "DeviceReading": {
    "type": "object", "additionalProperties": false,
    "description": "A whole GPU (mig_enabled, power...) or a MIG instance (profile, gpu_instance_id, compute_slices); node and pod_uid on a cluster",
    "required": ["uuid", "gpu_uuid", "gpu_index", "model", "utilization_pct", "temperature_c", "memory_used_mib",
                 "memory_total_mib", "compute_processes", "session_id", "user_id"],
    "properties": {
      "uuid": {"type": "string"}, "gpu_uuid": {"type": "string"}, "gpu_index": {"type": "integer"}, "model": {"type": "string"},
      "utilization_pct": {"type": ["number", "null"]}, "temperature_c": {"type": ["number", "null"]},
      "memory_used_mib": {"type": "integer"}, "memory_total_mib": {"type": "integer"}, "compute_processes": {"type": "integer"},
      "session_id": {"type": ["string", "null"]}, "user_id": {"type": ["string", "null"]},
      "node": {"type": "string"}, "pod_uid": {"type": ["string", "null"]},
      "profile": {"type": "string"}, "gpu_instance_id": {"type": "integer"}, "compute_slices": {"type": "integer"},
      "mig_enabled": {"type": "boolean"}, "memory_utilization_pct": {"type": ["number", "null"]},
      "power_w": {"type": ["number", "null"]}, "power_limit_w": {"type": ["number", "null"]}
    }
  },
  "TelemetrySnapshot": {"$ref": "#/components/schemas/TelemetrySnapshotBase", "unevaluatedProperties": false},
  "TelemetrySnapshotBase": {
    "type": "object", "description": "a sample's fields, open for extension (TelemetrySnapshot is the closed object)",
    "required": ["taken_at", "backend_ok", "backend_error", "sample_seconds", "mig_dynamic", "gpus", "instances", "lost_gpus"],
    "properties": {
      "taken_at": {"$ref": "#/components/schemas/Timestamp"},
      "backend_ok": {"type": "boolean"}, "backend_error": {"type": ["string", "null"]},
      "sample_seconds": {"type": "number"}, "mig_dynamic": {"type": "boolean"},
      "gpus": {"type": "array", "items": {"$ref": "#/components/schemas/DeviceReading"}},
      "instances": {"type": "array", "items": {"$ref": "#/components/schemas/DeviceReading"}},
      "lost_gpus": {"type": "array", "items": {"type": "string"}, "description": "UUIDs of GPUs seen before and missing now"},
      "nodes": {"type": "array", "description": "a cluster's node agents", "items": {"type": "object", "additionalProperties": false,
        "required": ["node", "agent_up", "agent_pod", "address", "last_seen", "error", "gpus", "instances"],
        "properties": {"node": {"type": "string"}, "agent_up": {"type": "boolean"}, "agent_pod": {"type": ["string", "null"]},
          "address": {"type": ["string", "null"]}, "last_seen": {"$ref": "#/components/schemas/NullableTimestamp"},
          "error": {"type": ["string", "null"]}, "gpus": {"type": "integer"}, "instances": {"type": "integer"}}}},
      "unobserved_sessions": {"type": "array", "items": {"type": "string"}, "description": "a cluster's sessions on nodes whose agent is missing (ids)"},
      "at": {"$ref": "#/components/schemas/Timestamp", "description": "on the event stream only: taken_at again"}
    }
  },
  "MinAvgMax": {"type": "object", "additionalProperties": false, "required": ["min", "avg", "max"],
    "properties": {"min": {"type": ["number", "null"]}, "avg": {"type": ["number", "null"]}, "max": {"type": ["number", "null"]}}},
  "TrendRow": {"type": "object", "additionalProperties": false,
    "required": ["avg_utilization_pct", "slice_hours", "devices", "device_minutes"],
    "properties": {"model": {"type": "string"}, "profile": {"type": "string"}, "avg_utilization_pct": {"type": ["number", "null"]},
      "slice_hours": {"type": "number"}, "devices": {"type": "integer"}, "device_minutes": {"type": "integer"}}}
},
"routes": {
  "GET /metrics/realtime": {"operationId": "realtimeMetrics", "summary": "The latest telemetry sample of every GPU and MIG instance", "tag": "Telemetry",
    "responses": {"200": {"json": {"$ref": "#/components/schemas/TelemetrySnapshot"}}}, "errors": [503]},
  "GET /metrics/trends": {"operationId": "metricsTrends", "summary": "Utilisation and slice-hours by model and profile", "tag": "Telemetry",
    "parameters": [{"name": "hours", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 744, "default": 24},
                    "description": "the window up to now (the maximum is the daemon's limit, 31 days by default)"}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["from", "to", "hours", "by_model", "by_profile"],
      "properties": {"from": {"$ref": "#/components/schemas/Timestamp"}, "to": {"$ref": "#/components/schemas/Timestamp"},
        "hours": {"type": "integer"},
        "by_model": {"type": "array", "items": {"$ref": "#/components/schemas/TrendRow"}},
        "by_profile": {"type": "array", "items": {"$ref": "#/components/schemas/TrendRow"}}}}}},
    "errors": [400, 503]},
  "GET /gpus/{uuid}/metrics": {"operationId": "deviceMetrics", "summary": "One device's history: min/avg/max per step", "tag": "Telemetry",
    "parameters": [
      {"name": "uuid", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^(GPU|MIG)-[0-9a-fA-F-]+$", "minLength": 5, "maxLength": 80}},
      {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 UTC or unix seconds; default: an hour before to"},
      {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 UTC or unix seconds; default: now"},
      {"name": "step", "in": "query", "schema": {"type": "string"}, "description": "a duration of at least 1s (30s, 5m, 1h); default: 360 points"}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false,
      "required": ["uuid", "from", "to", "step", "step_seconds", "resolution", "points"],
      "properties": {"uuid": {"type": "string"}, "from": {"$ref": "#/components/schemas/Timestamp"}, "to": {"$ref": "#/components/schemas/Timestamp"},
        "step": {"type": "string"}, "step_seconds": {"type": "number"}, "resolution": {"type": "string"},
        "points": {"type": "array", "items": {"type": "object", "additionalProperties": false,
          "required": ["t", "samples", "utilization_pct", "temperature_c", "power_w", "memory_used_mib", "session_id", "user_id"],
          "properties": {"t": {"$ref": "#/components/schemas/Timestamp"}, "samples": {"type": "integer"},
            "utilization_pct": {"$ref": "#/components/schemas/MinAvgMax"}, "temperature_c": {"$ref": "#/components/schemas/MinAvgMax"},
            "power_w": {"$ref": "#/components/schemas/MinAvgMax"}, "memory_used_mib": {"$ref": "#/components/schemas/MinAvgMax"},
            "session_id": {"type": ["string", "null"]}, "user_id": {"type": ["string", "null"]}}}}}}}},
    "errors": [400, 404, 503]}
}
})json";

}  // namespace

json TelemetryRoutes::snapshotJson(const TelemetrySnapshot& snap) {
  json gpus = json::array();
  for (const auto& d : snap.gpus) gpus.push_back(deviceJson(d));
  json instances = json::array();
  for (const auto& d : snap.instances) instances.push_back(deviceJson(d));
  json out = {
      {"taken_at", formatRfc3339(snap.taken_at)},
      {"backend_ok", snap.backend_ok},
      {"backend_error", holder(snap.backend_error)},
      {"sample_seconds", std::round(snap.sample_seconds * 1e6) / 1e6},
      {"mig_dynamic", snap.mig_dynamic},
      {"gpus", std::move(gpus)},
      {"instances", std::move(instances)},
      {"lost_gpus", snap.lost_gpus},
  };
  if (snap.cluster) {
    // Which node agents answered: a missing one's GPUs are absent above.
    json nodes = json::array();
    for (const auto& n : snap.nodes) {
      nodes.push_back({{"node", n.node},
                       {"agent_up", n.up},
                       {"agent_pod", holder(n.agent_pod)},
                       {"address", holder(n.address)},
                       {"last_seen", n.last_seen ? json(formatRfc3339(*n.last_seen)) : json(nullptr)},
                       {"error", holder(n.error)},
                       {"gpus", n.gpus},
                       {"instances", n.instances}});
    }
    out["nodes"] = std::move(nodes);
    out["unobserved_sessions"] = snap.unobserved_sessions;
  }
  return out;
}

void TelemetryRoutes::registerRoutes(Router& router) {
  for (const char* prefix : kApiPrefixes) {
    std::string p = prefix;
    router.get(p + "/metrics/realtime",
               [this](const ApiRequest&, ApiResponse& res) { realtime(res); });
    router.get(p + "/metrics/trends",
               [this](const ApiRequest& req, ApiResponse& res) { trends(req, res); });
    router.get(p + "/gpus/{uuid}/metrics",
               [this](const ApiRequest& req, ApiResponse& res) { deviceMetrics(req, res); });
  }
  router.document(kDocs);
}

void TelemetryRoutes::realtime(ApiResponse& res) const {
  SnapshotPtr snap = sampler_.latest();
  if (!snap) return sendError(res, unavailable("no telemetry sample yet; retry after one interval"));
  sendJson(res, 200, snapshotJson(*snap));
}

void TelemetryRoutes::deviceMetrics(const ApiRequest& req, ApiResponse& res) const {
  const std::string uuid = req.matches[1];
  if (!isDeviceUuid(uuid)) {
    return sendError(res, invalid("not a device UUID: '" + printableExcerpt(uuid, 40) +
                                  "' (expected GPU-... or MIG-..., as GET /metrics/realtime lists)"));
  }
  const TimePoint now = clock_.now();
  TimePoint to = now;
  if (std::string v = param(req, "to"); !v.empty()) {
    auto t = parseTimeParam("to", v);
    if (!t.ok()) return sendError(res, t.error());
    to = *t;
  }
  TimePoint from = to - Millis(kDefaultWindowMs);
  if (std::string v = param(req, "from"); !v.empty()) {
    auto t = parseTimeParam("from", v);
    if (!t.ok()) return sendError(res, t.error());
    from = *t;
  }
  if (from >= to) return sendError(res, invalid("'from' must be before 'to'"));
  const int64_t span_ms = std::chrono::duration_cast<Millis>(to - from).count();
  Millis step{};
  if (std::string v = param(req, "step"); !v.empty()) {
    auto s = parseDuration(v);
    if (!s.ok()) return sendError(res, invalid("'step': " + s.error().message));
    step = *s;
    if (step < Millis(1000)) return sendError(res, invalid("'step' must be at least 1s"));
  } else {
    int64_t secs = (span_ms / kDefaultPoints + 999) / 1000;
    step = Millis(std::max<int64_t>(secs, 1) * 1000);
  }
  const int64_t points = (span_ms + step.count() - 1) / step.count();
  if (points > limits_.max_points) {
    return sendError(res, invalid("from/to/step ask for " + std::to_string(points) + " points; at most " +
                                  std::to_string(limits_.max_points) + " per request: use a larger step "
                                  "or a shorter window"));
  }
  if (history_ == nullptr) return sendError(res, unavailable("telemetry history is off in this daemon"));

  bool present = false;
  if (SnapshotPtr snap = sampler_.latest()) {
    for (const auto* list : {&snap->gpus, &snap->instances}) {
      for (const auto& d : *list) present = present || d.uuid == uuid;
    }
  }
  if (!present) {
    auto known = history_->knows(uuid);
    if (!known.ok()) return sendError(res, known.error());
    if (!known.value()) {
      return sendError(res, notFound("no GPU or MIG device " + uuid + " now or in the history; "
                                     "GET /metrics/realtime lists the devices"));
    }
  }
  auto series = history_->query(uuid, from, to, step);
  if (!series.ok()) return sendError(res, series.error());
  json pts = json::array();
  for (const auto& p : series->points) {
    pts.push_back({
        {"t", formatRfc3339(p.at)},
        {"samples", p.samples},
        {"utilization_pct", stat(p.util_min, p.util_avg, p.util_max)},
        {"temperature_c", stat(p.temp_min, p.temp_avg, p.temp_max)},
        {"power_w", stat(p.power_min, p.power_avg, p.power_max)},
        {"memory_used_mib", stat(p.mem_used_min, p.mem_used_avg, p.mem_used_max)},
        {"session_id", holder(p.session_id)},
        {"user_id", holder(p.user_id)},
    });
  }
  sendJson(res, 200,
           {{"uuid", uuid},
            {"from", formatRfc3339(from)},
            {"to", formatRfc3339(to)},
            {"step", formatDuration(series->step)},
            {"step_seconds", static_cast<double>(series->step.count()) / 1000.0},
            {"resolution", series->resolution},
            {"points", std::move(pts)}});
}

void TelemetryRoutes::trends(const ApiRequest& req, ApiResponse& res) const {
  int hours = 24;
  if (std::string v = param(req, "hours"); !v.empty()) {
    int h = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), h);
    if (ec != std::errc() || end != v.data() + v.size() || h < 1 || h > limits_.max_trend_hours) {
      return sendError(res, invalid("'hours' must be a whole number from 1 to " +
                                    std::to_string(limits_.max_trend_hours) + ", not '" + printableExcerpt(v, 20) + "'"));
    }
    hours = h;
  }
  if (history_ == nullptr) return sendError(res, unavailable("telemetry history is off in this daemon"));
  const TimePoint to = clock_.now();
  const TimePoint from = to - std::chrono::hours(hours);
  auto t = history_->trends(from, to);
  if (!t.ok()) return sendError(res, t.error());
  auto rows = [](const std::vector<TrendRow>& in, const char* key) {
    json out = json::array();
    for (const auto& r : in) {
      out.push_back({{key, r.key},
                     {"avg_utilization_pct", num(r.avg_utilization)},
                     {"slice_hours", std::round(r.slice_hours * 1000.0) / 1000.0},
                     {"devices", r.devices},
                     {"device_minutes", r.device_minutes}});
    }
    return out;
  };
  sendJson(res, 200,
           {{"from", formatRfc3339(from)},
            {"to", formatRfc3339(to)},
            {"hours", hours},
            {"by_model", rows(t->by_model, "model")},
            {"by_profile", rows(t->by_profile, "profile")}});
}

}  // namespace sandman
