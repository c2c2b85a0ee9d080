#include "api/dashboard_routes.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "alerts/alert_json.h"
#include "api/telemetry_routes.h"
#include "common/time_format.h"
#include "cost/ledger_entry.h"
#include "model/session.h"

namespace sandman {
namespace {

using nlohmann::json;

json round1(std::optional<double> v) {
  if (!v) return nullptr;
  return std::round(*v * 10.0) / 10.0;
}

std::string textOf(const json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
int64_t intOf(const json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// A whole-number query parameter in [lo, hi], or `fallback` when absent.
Result<int64_t> intParam(const ApiRequest& req, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  if (!req.has_param(name)) return fallback;
  const std::string v = req.get_param_value(name);
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi) {
    return invalid(std::string(name) + " must be a whole number from " + std::to_string(lo) + " to " +
                   std::to_string(hi));
  }
  return n;
}

double usd(int64_t micros) { return std::round(static_cast<double>(micros) / 10000.0) / 100.0; }

}  // namespace

json clusterStatsJson(const std::vector<json>& nodes) {
  std::map<std::string, json> by;
  for (const auto& n : nodes) {
    std::string c = textOf(n, "cluster");
    if (c.empty()) c = "default";
    json& e = by[c];
    if (e.is_null()) {
      e = {{"cluster", c}, {"nodes", 0}, {"active", 0}, {"maintenance", 0}, {"drained", 0}, {"gpus", 0},
           {"running_sessions", 0}, {"node_names", json::array()}};
    }
    e["nodes"] = e["nodes"].get<int64_t>() + 1;
    const std::string st = textOf(n, "status").empty() ? "active" : textOf(n, "status");
    if (e.contains(st)) e[st] = e[st].get<int64_t>() + 1;
    e["gpus"] = e["gpus"].get<int64_t>() + intOf(n, "gpu_count");
    e["running_sessions"] = e["running_sessions"].get<int64_t>() + intOf(n, "running_sessions");
    e["node_names"].push_back(textOf(n, "name"));
  }
  json out = json::array();
  for (auto& [_, e] : by) out.push_back(std::move(e));
  return out;
}

json modelStatsJson(const TelemetrySnapshot* snap) {
  struct Acc {
    int64_t gpus = 0, mig_gpus = 0, instances = 0, held = 0;
    uint64_t mem_total = 0, mem_used = 0;
    double util = 0, temp = 0;
    int util_n = 0, temp_n = 0;
  };
  std::map<std::string, Acc> by;
  if (snap) {
    std::map<std::string, std::string> model_of;  // gpu uuid -> model
    for (const auto& g : snap->gpus) {
      Acc& a = by[g.model_name];
      model_of[g.uuid] = g.model_name;
      ++a.gpus;
      if (g.mig_enabled) ++a.mig_gpus;
      if (!g.session_id.empty()) ++a.held;
      a.mem_total += g.memory_total_mib;
      a.mem_used += g.memory_used_mib;
      if (!g.mig_enabled && g.utilization_pct) {
        a.util += *g.utilization_pct;
        ++a.util_n;
      }
      if (g.temperature_c) {
        a.temp += *g.temperature_c;
        ++a.temp_n;
      }
    }
    for (const auto& m : snap->instances) {
      Acc& a = by[model_of.count(m.gpu_uuid) ? model_of[m.gpu_uuid] : m.model_name];
      ++a.instances;
      if (!m.session_id.empty()) ++a.held;
      if (m.utilization_pct) {
        a.util += *m.utilization_pct;
        ++a.util_n;
      }
    }
  }
  json out = json::array();
  for (const auto& [model, a] : by) {
    out.push_back({{"model", model},
                   {"gpus", a.gpus},
                   {"mig_enabled_gpus", a.mig_gpus},
                   {"mig_instances", a.instances},
                   {"devices_in_use", a.held},
                   {"memory_total_mib", a.mem_total},
                   {"memory_used_mib", a.mem_used},
                   {"avg_utilization_pct", a.util_n ? round1(a.util / a.util_n) : json(nullptr)},
                   {"avg_temperature_c", a.temp_n ? round1(a.temp / a.temp_n) : json(nullptr)}});
  }
  return out;
}

namespace {

// OpenAPI operations of the routes below (api/openapi.h).
constexpr std::string_view kDocs = R"json({
"schemas": {
  "DashboardOverall": {"type": "object", "additionalProperties": false,
    "required": ["generated_at", "backend", "nodes", "gpus", "sessions", "utilization", "alerts", "cost", "sampled_at"],
    "properties": {
      "generated_at": {"$ref": "#/components/schemas/Timestamp"}, "backend": {"type": "string"},
      "nodes": {"type": "object", "required": ["total", "by_status"],
        "properties": {"total": {"type": "integer"}, "by_status": {"type": "object", "additionalProperties": {"type": "integer"}}}},
      "gpus": {"type": "object", "additionalProperties": false, "required": ["total", "mig_enabled", "mig_instances", "devices_in_use"],
        "properties": {"total": {"type": "integer"}, "mig_enabled": {"type": "integer"}, "mig_instances": {"type": "integer"}, "devices_in_use": {"type": "integer"}}},
      "sessions": {"type": "object", "additionalProperties": false, "required": ["active", "by_status", "active_users"],
        "properties": {"active": {"type": "integer"}, "by_status": {"type": "object", "additionalProperties": {"type": "integer"}}, "active_users": {"type": "integer"}}},
      "utilization": {"type": "object", "additionalProperties": false,
        "required": ["avg_gpu_pct", "avg_temperature_c", "max_temperature_c", "power_w", "memory_used_mib", "memory_total_mib"],
        "properties": {"avg_gpu_pct": {"type": ["number", "null"]}, "avg_temperature_c": {"type": ["number", "null"]},
          "max_temperature_c": {"type": ["number", "null"]}, "power_w": {"type": "number"}, "memory_used_mib": {"type": "integer"}, "memory_total_mib": {"type": "integer"}}},
      "alerts": {"type": "object", "additionalProperties": false, "required": ["firing", "pending"],
        "properties": {"firing": {"type": "integer"}, "pending": {"type": "integer"}}},
      "cost": {"type": ["object", "null"], "description": "null without a cost ledger",
        "properties": {"month_to_date_usd": {"type": "number"}, "idle_month_to_date_usd": {"type": "number"},
          "month_start": {"$ref": "#/components/schemas/Timestamp"},
          "budgets": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["budget", "limit_usd", "used_usd", "forecast_usd"],
            "properties": {"budget": {"type": "string"}, "limit_usd": {"type": "number"}, "used_usd": {"type": "number"}, "forecast_usd": {"type": "number"}}}}}},
      "sampled_at": {"$ref": "#/components/schemas/NullableTimestamp"}}},
  "DashboardCluster": {"type": "object", "additionalProperties": false,
    "required": ["cluster", "nodes", "active", "maintenance", "drained", "gpus", "running_sessions", "node_names"],
    "properties": {"cluster": {"type": "string"}, "nodes": {"type": "integer"}, "active": {"type": "integer"}, "maintenance": {"type": "integer"},
      "drained": {"type": "integer"}, "gpus": {"type": "integer"}, "running_sessions": {"type": "integer"},
      "node_names": {"type": "array", "items": {"type": "string"}}}},
  "DashboardModel": {"type": "object", "additionalProperties": false,
    "required": ["model", "gpus", "mig_enabled_gpus", "mig_instances", "devices_in_use", "memory_total_mib", "memory_used_mib", "avg_utilization_pct", "avg_temperature_c"],
    "properties": {"model": {"type": "string"}, "gpus": {"type": "integer"}, "mig_enabled_gpus": {"type": "integer"}, "mig_instances": {"type": "integer"},
      "devices_in_use": {"type": "integer"}, "memory_total_mib": {"type": "integer"}, "memory_used_mib": {"type": "integer"},
      "avg_utilization_pct": {"type": ["number", "null"]}, "avg_temperature_c": {"type": ["number", "null"]}}},
  "UsageTrend": {"type": "object", "additionalProperties": false, "required": ["from", "to", "step_minutes", "points"],
    "properties": {"from": {"$ref": "#/components/schemas/Timestamp"}, "to": {"$ref": "#/components/schemas/Timestamp"}, "step_minutes": {"type": "integer"},
      "points": {"type": "array", "items": {"type": "object", "additionalProperties": false,
        "required": ["at", "avg_utilization_pct", "slice_hours", "devices", "device_minutes"],
        "properties": {"at": {"$ref": "#/components/schemas/Timestamp"}, "avg_utilization_pct": {"type": ["number", "null"]},
          "slice_hours": {"type": "number"}, "devices": {"type": "integer"}, "device_minutes": {"type": "integer"}}}}}},
  "Activity": {"type": "object", "additionalProperties": false, "required": ["kind", "subject", "user_id", "detail", "device", "at"],
    "properties": {"kind": {"type": "string"}, "subject": {"type": "string"}, "user_id": {"type": ["string", "null"]},
      "detail": {"type": "string"}, "device": {"type": ["string", "null"]}, "at": {"$ref": "#/components/schemas/Timestamp"}}}
},
"routes": {
  "GET /dashboard": {"operationId": "dashboard", "summary": "Everything the dashboard's home page shows, in one answer", "tag": "Dashboard",
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false,
      "required": ["overall", "clusters", "models", "usage_trend", "active_alerts", "recent_activities"],
      "properties": {"overall": {"$ref": "#/components/schemas/DashboardOverall"},
        "clusters": {"type": "array", "items": {"$ref": "#/components/schemas/DashboardCluster"}},
        "models": {"type": "array", "items": {"$ref": "#/components/schemas/DashboardModel"}},
        "usage_trend": {"oneOf": [{"$ref": "#/components/schemas/UsageTrend"}, {"type": "null"}]},
        "active_alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
        "recent_activities": {"type": "array", "items": {"$ref": "#/components/schemas/Activity"}}}}}}},
  "GET /dashboard/stats/overall": {"operationId": "dashboardOverall", "summary": "Totals: nodes, GPUs, sessions, utilisation, alerts, cost", "tag": "Dashboard",
    "responses": {"200": {"json": {"$ref": "#/components/schemas/DashboardOverall"}}}},
  "GET /dashboard/stats/clusters": {"operationId": "dashboardClusters", "summary": "Nodes and GPUs per cluster", "tag": "Dashboard",
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["clusters", "count"],
      "properties": {"clusters": {"type": "array", "items": {"$ref": "#/components/schemas/DashboardCluster"}}, "count": {"type": "integer"}}}}}},
  "GET /dashboard/stats/models": {"operationId": "dashboardModels", "summary": "GPUs per model with utilisation", "tag": "Dashboard",
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["models", "count"],
      "properties": {"models": {"type": "array", "items": {"$ref": "#/components/schemas/DashboardModel"}}, "count": {"type": "integer"}}}}}},
  "GET /dashboard/trends/usage": {"operationId": "dashboardUsageTrend", "summary": "Utilisation and slice-hours over time", "tag": "Dashboard",
    "description": "hours / step_minutes is at most 744 points",
    "parameters": [
      {"name": "hours", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 744, "default": 24}},
      {"name": "step_minutes", "in": "query", "schema": {"type": "integer", "minimum": 5, "maximum": 1440},
       "description": "default 60 up to 24 hours, 1440 beyond"}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/UsageTrend"}}}, "errors": [400, 503]},
  "GET /dashboard/alerts/active": {"operationId": "dashboardActiveAlerts", "summary": "Pending and firing alerts", "tag": "Dashboard",
    "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["alerts", "count"],
      "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}, "count": {"type": "integer"}}}}},
    "errors": [400]},
  "GET /dashboard/activities/recent": {"operationId": "dashboardRecentActivities", "summary": "Sessions, node changes and alerts, newest first", "tag": "Dashboard",
    "parameters": [
      {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
      {"name": "hours", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 744, "default": 24}}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["since", "activities", "count"],
      "properties": {"since": {"$ref": "#/components/schemas/Timestamp"}, "activities": {"type": "array", "items": {"$ref": "#/components/schemas/Activity"}},
        "count": {"type": "integer"}}}}},
    "errors": [400]},
  "GET /dashboard/metrics/realtime": {"operationId": "dashboardRealtime", "summary": "The latest telemetry sample with per-model totals", "tag": "Dashboard",
    "responses": {"200": {"json": {"$ref": "#/components/schemas/TelemetrySnapshotBase", "unevaluatedProperties": false,
      "required": ["models"], "properties": {"models": {"type": "array", "items": {"$ref": "#/components/schemas/DashboardModel"}}}}}},
    "errors": [503]}
}
})json";

}  // namespace

void DashboardRoutes::registerRoutes(Router& router) {
  using Req = const ApiRequest&;
  using Res = ApiResponse&;
  auto reply = [](Res r, Result<json> body) {
    if (!body.ok()) return sendError(r, body.error());
    sendJson(r, 200, body.value());
  };
  for (const char* prefix : kApiPrefixes) {
    const std::string p = std::string(prefix) + "/dashboard";
    router.get(p, [this](Req, Res r) { all(r); });
    router.get(p + "/stats/overall", [this, reply](Req, Res r) { reply(r, overall()); });
    router.get(p + "/stats/clusters", [this](Req, Res r) {
      json c = clusterStatsJson(src_.nodes ? src_.nodes() : std::vector<json>{});
      sendJson(r, 200, {{"clusters", c}, {"count", c.size()}});
    });
    router.get(p + "/stats/models", [this](Req, Res r) {
      SnapshotPtr snap = src_.sampler->latest();
      json m = modelStatsJson(snap.get());
      sendJson(r, 200, {{"models", m}, {"count", m.size()}});
    });
    router.get(p + "/trends/usage", [this, reply](Req q, Res r) {
      auto hours = intParam(q, "hours", 24, 1, 24 * 31);
      if (!hours.ok()) return sendError(r, hours.error());
      auto step = intParam(q, "step_minutes", hours.value() <= 24 ? 60 : 24 * 60, 5, 24 * 60);
      if (!step.ok()) return sendError(r, step.error());
      reply(r, usageTrend(static_cast<int>(hours.value()), static_cast<int>(step.value())));
    });
    router.get(p + "/alerts/active", [this, reply](Req q, Res r) {
      auto limit = intParam(q, "limit", 100, 1, 1000);
      if (!limit.ok()) return sendError(r, limit.error());
      reply(r, activeAlerts(static_cast<size_t>(limit.value())));
    });
    router.get(p + "/activities/recent", [this, reply](Req q, Res r) {
      auto limit = intParam(q, "limit", 50, 1, 500);
      if (!limit.ok()) return sendError(r, limit.error());
      auto hours = intParam(q, "hours", 24, 1, 24 * 31);
      if (!hours.ok()) return sendError(r, hours.error());
      reply(r, activities(static_cast<size_t>(limit.value()), static_cast<int>(hours.value())));
    });
    router.get(p + "/metrics/realtime", [this](Req, Res r) {
      if (!src_.sampler->latest()) return sendError(r, unavailable("no telemetry sample yet; retry after one interval"));
      sendJson(r, 200, realtime());
    });
  }
  router.document(kDocs);
}

Result<json> DashboardRoutes::overall() {
  const TimePoint now = clock_.now();
  auto counts = src_.store->sessionCounts();
  if (!counts.ok()) return counts.error();
  int64_t active = 0;
  for (const auto& [st, n] : counts->by_status) {
    if (st == "pending" || st == "starting" || st == "running" || st == "stopping") active += n;
  }
  std::vector<json> nodes = src_.nodes ? src_.nodes() : std::vector<json>{};
  std::map<std::string, int64_t> node_status = {{"active", 0}, {"maintenance", 0}, {"drained", 0}};
  for (const auto& n : nodes) {
    const std::string st = textOf(n, "status").empty() ? "active" : textOf(n, "status");
    ++node_status[st];
  }
  SnapshotPtr snap = src_.sampler->latest();
  int64_t gpus = 0, instances = 0, held = 0, mig_gpus = 0;
  uint64_t mem_total = 0, mem_used = 0;
  double util = 0, temp = 0, power = 0, temp_max = 0;
  int util_n = 0, temp_n = 0;
  if (snap) {
    for (const auto& g : snap->gpus) {
      ++gpus;
      if (g.mig_enabled) ++mig_gpus;
      if (!g.session_id.empty()) ++held;
      mem_total += g.memory_total_mib;
      mem_used += g.memory_used_mib;
      if (!g.mig_enabled && g.utilization_pct) {
        util += *g.utilization_pct;
        ++util_n;
      }
      if (g.temperature_c) {
        temp += *g.temperature_c;
        temp_max = std::max(temp_max, *g.temperature_c);
        ++temp_n;
      }
      if (g.power_w) power += *g.power_w;
    }
    for (const auto& m : snap->instances) {
      ++instances;
      if (!m.session_id.empty()) ++held;
      if (m.utilization_pct) {
        util += *m.utilization_pct;
        ++util_n;
      }
    }
  }
  int64_t firing = 0, pending = 0;
  if (src_.alerts) {
    auto open = src_.alerts->list(AlertFilter::kActive, 1000);
    if (!open.ok()) return open.error();
    for (const auto& a : open.value()) (a.state == AlertState::kFiring ? firing : pending)++;
  }
  json cost = nullptr;
  if (src_.ledger) {
    CostQuery q;
    q.group_by = "team";
    q.to_ms = toUnixMillis(now) + 1;
    q.from_ms = bucketStart(toUnixMillis(now), CostStep::kMonth);
    q.step = CostStep::kMonth;
    auto r = src_.ledger->report(q);
    if (!r.ok()) return r.error();
    json budgets = json::array();
    if (src_.budgets) {
      for (const auto& b : src_.budgets->readings()) {
        budgets.push_back({{"budget", b.budget}, {"limit_usd", b.limit_usd}, {"used_usd", b.used_usd},
                           {"forecast_usd", b.forecast_usd}});
      }
    }
    cost = {{"month_to_date_usd", usd(r->total_micros)}, {"idle_month_to_date_usd", usd(r->idle_total_micros)},
            {"month_start", formatRfc3339(fromUnixMillis(q.from_ms))}, {"budgets", budgets}};
  }
  return json{
      {"generated_at", formatRfc3339(now)},
      {"backend", src_.backend},
      {"nodes", {{"total", nodes.size()}, {"by_status", node_status}}},
      {"gpus",
       {{"total", gpus}, {"mig_enabled", mig_gpus}, {"mig_instances", instances}, {"devices_in_use", held}}},
      {"sessions", {{"active", active}, {"by_status", counts->by_status}, {"active_users", counts->active_users}}},
      {"utilization",
       {{"avg_gpu_pct", util_n ? round1(util / util_n) : json(nullptr)},
        {"avg_temperature_c", temp_n ? round1(temp / temp_n) : json(nullptr)},
        {"max_temperature_c", temp_n ? round1(temp_max) : json(nullptr)},
        {"power_w", round1(power)},
        {"memory_used_mib", mem_used},
        {"memory_total_mib", mem_total}}},
      {"alerts", {{"firing", firing}, {"pending", pending}}},
      {"cost", cost},
      {"sampled_at", snap ? json(formatRfc3339(snap->taken_at)) : json(nullptr)}};
}

Result<json> DashboardRoutes::usageTrend(int hours, int step_minutes) {
  if (!src_.history) return unavailable("no telemetry history on this daemon");
  const auto step = std::chrono::minutes(step_minutes);
  const TimePoint now = clock_.now();
  const int64_t step_ms = static_cast<int64_t>(step_minutes) * 60000;
  const int64_t end_ms = (toUnixMillis(now) / step_ms + 1) * step_ms;
  const int64_t start_ms = end_ms - static_cast<int64_t>(hours) * 3600000;
  const int64_t buckets = (end_ms - start_ms + step_ms - 1) / step_ms;
  if (buckets > 744) return invalid("at most 744 points: ask a longer step_minutes for this many hours");
  json points = json::array();
  for (int64_t b = start_ms; b < end_ms; b += step_ms) {
    auto t = src_.history->trends(fromUnixMillis(b), fromUnixMillis(b) + step);
    if (!t.ok()) return t.error();
    double util = 0, slice_hours = 0;
    int64_t minutes = 0, util_minutes = 0, devices = 0;
    for (const auto& r : t->by_profile) {
      slice_hours += r.slice_hours;
      devices += r.devices;
      minutes += r.device_minutes;
      if (r.avg_utilization) {
        util += *r.avg_utilization * static_cast<double>(r.device_minutes);
        util_minutes += r.device_minutes;
      }
    }
    points.push_back({{"at", formatRfc3339(fromUnixMillis(b))},
                      {"avg_utilization_pct", util_minutes ? round1(util / util_minutes) : json(nullptr)},
                      {"slice_hours", std::round(slice_hours * 1000.0) / 1000.0},
                      {"devices", devices},
                      {"device_minutes", minutes}});
  }
  return json{{"from", formatRfc3339(fromUnixMillis(start_ms))},
              {"to", formatRfc3339(fromUnixMillis(end_ms))},
              {"step_minutes", step_minutes},
              {"points", points}};
}

Result<json> DashboardRoutes::activeAlerts(size_t limit) {
  json list = json::array();
  if (src_.alerts) {
    auto open = src_.alerts->list(AlertFilter::kActive, limit);
    if (!open.ok()) return open.error();
    for (const auto& a : open.value()) list.push_back(alertJson(a));
  }
  return json{{"alerts", list}, {"count", list.size()}};
}

Result<json> DashboardRoutes::activities(size_t limit, int hours) {
  const TimePoint now = clock_.now();
  const TimePoint since = now - std::chrono::hours(hours);
  std::vector<std::pair<TimePoint, json>> items;
  SessionFilter f;
  f.limit = limit;
  auto sessions = src_.store->listSessions(f);
  if (!sessions.ok()) return sessions.error();
  for (const auto& s : sessions.value()) {
    const json gpu = s.gpu_uuid ? json(*s.gpu_uuid) : json(nullptr);
    items.push_back({s.created_at, {{"kind", "session_created"}, {"subject", s.id}, {"user_id", s.user_id},
                                    {"detail", "session " + s.id + " created for " + s.user_id}, {"device", gpu}}});
    if (s.ended_at) {
      items.push_back({*s.ended_at,
                       {{"kind", "session_ended"}, {"subject", s.id}, {"user_id", s.user_id},
                        {"detail", "session " + s.id + " " + toString(s.status) +
                                       (s.end_reason.empty() ? "" : ": " + s.end_reason)},
                        {"device", gpu}}});
    }
  }
  if (src_.node_meta) {
    auto events = src_.node_meta->events("", since, limit);
    if (!events.ok()) return events.error();
    for (const auto& e : events.value()) {
      items.push_back({e.at, {{"kind", "node_" + e.kind}, {"subject", e.node}, {"user_id", nullptr},
                              {"detail", e.detail + (e.by.empty() ? "" : " (by " + e.by + ")")}, {"device", nullptr}}});
    }
  }
  if (src_.alerts) {
    auto alerts = src_.alerts->list(AlertFilter::kAll, limit);
    if (!alerts.ok()) return alerts.error();
    for (const auto& a : alerts.value()) {
      if (a.fired_at) {
        items.push_back({*a.fired_at, {{"kind", "alert_firing"}, {"subject", a.rule}, {"user_id", nullptr},
                                       {"detail", a.summary}, {"device", nullptr}}});
      }
      if (a.resolved_at && a.fired_at) {
        items.push_back({*a.resolved_at, {{"kind", "alert_resolved"}, {"subject", a.rule}, {"user_id", nullptr},
                                          {"detail", a.summary}, {"device", nullptr}}});
      }
    }
  }
  std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  json list = json::array();
  for (auto& [at, item] : items) {
    if (at < since || list.size() >= limit) continue;
    item["at"] = formatRfc3339(at);
    list.push_back(std::move(item));
  }
  return json{{"since", formatRfc3339(since)}, {"activities", list}, {"count", list.size()}};
}

json DashboardRoutes::realtime() {
  SnapshotPtr snap = src_.sampler->latest();
  if (!snap) return json::object();
  json out = TelemetryRoutes::snapshotJson(*snap);
  out["models"] = modelStatsJson(snap.get());
  return out;
}

void DashboardRoutes::all(ApiResponse& res) {
  auto o = overall();
  if (!o.ok()) return sendError(res, o.error());
  auto alerts = activeAlerts(20);
  if (!alerts.ok()) return sendError(res, alerts.error());
  auto acts = activities(20, 24);
  if (!acts.ok()) return sendError(res, acts.error());
  json trend = nullptr;
  if (src_.history) {
    auto t = usageTrend(24, 60);
    if (t.ok()) trend = std::move(t).value();
  }
  SnapshotPtr snap = src_.sampler->latest();
  sendJson(res, 200, {{"overall", o.value()},
                      {"clusters", clusterStatsJson(src_.nodes ? src_.nodes() : std::vector<json>{})},
                      {"models", modelStatsJson(snap.get())},
                      {"usage_trend", trend},
                      {"active_alerts", (*alerts)["alerts"]},
                      {"recent_activities", (*acts)["activities"]}});
}

}  // namespace sandman
