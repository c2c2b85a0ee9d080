#include "api/demand_routes.h"

#include <charconv>
#include <cmath>
#include <map>
#include <memory>

#include "common/time_format.h"
#include "common/utf8.h"
#include "cost/ledger_entry.h"

namespace sandman {
namespace {

using nlohmann::json;

constexpr int kDefaultAdviceDays = 30;
constexpr int kMaxAdviceDays = 366;

json round4(double v) { return std::round(v * 1e4) / 1e4; }

json layoutJson(const LayoutCandidate& c) {
  json gpus = json::array();
  for (const GpuLayout& g : c.gpus) gpus.push_back({{"gpu_index", g.gpu_index}, {"model", g.model}, {"profiles", g.profiles}});
  return {{"gpus", gpus},
          {"served_slice_hours", round4(c.score.served_slice_hours)},
          {"requests_served", c.score.served},
          {"requests", c.score.requests}};
}

// OpenAPI operations of the routes below (api/openapi.h).
constexpr std::string_view kDocs = R"json({
"schemas": {
  "Demand": {"type": "object", "additionalProperties": false,
    "required": ["id", "at", "user_id", "team", "project", "mig_profile", "gpu_memory_gb", "workload", "outcome", "session_id",
                 "granted_profile", "gpu_model", "reason", "held_seconds"],
    "properties": {"id": {"type": "integer"}, "at": {"$ref": "#/components/schemas/Timestamp"}, "user_id": {"type": "string"},
      "team": {"type": ["string", "null"]}, "project": {"type": ["string", "null"]}, "mig_profile": {"type": ["string", "null"]},
      "gpu_memory_gb": {"type": ["number", "null"]}, "workload": {"type": ["string", "null"]},
      "outcome": {"type": "string", "enum": ["accepted", "refused_capacity", "refused_budget", "queued"]},
      "session_id": {"type": ["string", "null"]}, "granted_profile": {"type": ["string", "null"]},
      "gpu_model": {"type": ["string", "null"]}, "reason": {"type": ["string", "null"]}, "held_seconds": {"type": ["number", "null"]}}},
  "Layout": {"type": "object", "additionalProperties": false, "required": ["gpus", "served_slice_hours", "requests_served", "requests"],
    "properties": {"gpus": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["gpu_index", "model", "profiles"],
        "properties": {"gpu_index": {"type": "integer"}, "model": {"type": "string"}, "profiles": {"type": "array", "items": {"type": "string"}}}}},
      "served_slice_hours": {"type": "number"}, "requests_served": {"type": "integer"}, "requests": {"type": "integer"}}}
},
"routes": {
  "GET /demand": {"operationId": "listDemand", "summary": "Recorded create requests and their outcome, newest first", "tag": "Advice",
    "parameters": [
      {"name": "outcome", "in": "query", "schema": {"type": "string", "enum": ["accepted", "refused_capacity", "refused_budget", "queued"]}},
      {"$ref": "#/components/parameters/Limit"}, {"$ref": "#/components/parameters/Cursor"},
      {"$ref": "#/components/parameters/From"}, {"$ref": "#/components/parameters/To"}],
    "responses": {"200": {"json": {"type": "array", "items": {"$ref": "#/components/schemas/Demand"}}}}, "errors": [400]},
  "GET /advice/layout": {"operationId": "layoutAdvice", "summary": "A static MIG layout that would have served the recorded demand better", "tag": "Advice",
    "description": "Only for a host with local GPUs and --mig-mode static; 400 otherwise.",
    "parameters": [{"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 366, "default": 30}}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false,
      "required": ["current", "proposed", "change", "gain", "candidates_evaluated", "window", "demand", "default_duration_seconds", "method"],
      "properties": {"current": {"$ref": "#/components/schemas/Layout"}, "proposed": {"$ref": "#/components/schemas/Layout"},
        "change": {"type": "boolean"},
        "gain": {"type": "object", "additionalProperties": false, "required": ["served_slice_hours", "percent", "requests_served"],
          "properties": {"served_slice_hours": {"type": "number"}, "percent": {"type": ["number", "null"]}, "requests_served": {"type": "integer"}}},
        "candidates_evaluated": {"type": "integer"},
        "window": {"type": "object", "additionalProperties": false, "required": ["from", "to", "days"],
          "properties": {"from": {"$ref": "#/components/schemas/Timestamp"}, "to": {"$ref": "#/components/schemas/Timestamp"}, "days": {"type": "integer"}}},
        "demand": {"type": "object", "additionalProperties": false, "required": ["records", "by_outcome", "replayed"],
          "properties": {"records": {"type": "integer"}, "by_outcome": {"type": "object", "additionalProperties": {"type": "integer"}}, "replayed": {"type": "integer"}}},
        "default_duration_seconds": {"type": "number"}, "method": {"type": "string"}}}}},
    "errors": [400]}
}
})json";

}  // namespace

json demandJson(const DemandRecord& r) {
  json j = {{"id", r.id},
            {"at", formatRfc3339(fromUnixMillis(r.at_ms))},
            {"user_id", r.user_id},
            {"team", r.team.empty() ? json(nullptr) : json(r.team)},
            {"project", r.project.empty() ? json(nullptr) : json(r.project)},
            {"mig_profile", r.mig_profile.empty() ? json(nullptr) : json(r.mig_profile)},
            {"gpu_memory_gb", r.gpu_memory_gb ? json(*r.gpu_memory_gb) : json(nullptr)},
            {"workload", r.workload.empty() ? json(nullptr) : json(r.workload)},
            {"outcome", r.outcome},
            {"session_id", r.session_id.empty() ? json(nullptr) : json(r.session_id)},
            {"granted_profile", r.granted_profile.empty() ? json(nullptr) : json(r.granted_profile)},
            {"gpu_model", r.gpu_model.empty() ? json(nullptr) : json(r.gpu_model)},
            {"reason", r.reason.empty() ? json(nullptr) : json(r.reason)}};
  // Held duration once the session has ended; null while it runs or when it is gone.
  if (r.session_created_ms && r.session_ended_ms) {
    j["held_seconds"] = static_cast<double>(*r.session_ended_ms - *r.session_created_ms) / 1000.0;
  } else {
    j["held_seconds"] = nullptr;
  }
  return j;
}

DemandRecord demandRecordOf(const DemandEvent& e) {
  DemandRecord r;
  r.at_ms = toUnixMillis(e.at);
  r.user_id = e.user_id;
  r.team = e.team;
  r.project = e.paying_project;
  r.mig_profile = e.gpu.mig_profile.value_or("");
  if (e.gpu.mig_instance_uuid && r.mig_profile.empty()) r.mig_profile = e.granted_profile;
  r.gpu_memory_gb = e.gpu.gpu_memory_gb;
  r.workload = e.gpu.gpu_memory_gb ? e.gpu.workload.value_or("inference") : "";
  r.outcome = toString(e.outcome);
  r.session_id = e.session_id;
  r.granted_profile = e.granted_profile;
  r.gpu_model = e.gpu_model;
  r.reason = e.reason;
  return r;
}

json layoutAdviceJson(const LayoutAdvice& a) {
  return {{"current", layoutJson(a.current)},
          {"proposed", layoutJson(a.proposed)},
          {"change", a.change},
          {"gain",
           {{"served_slice_hours", round4(a.gain_slice_hours)},
            {"percent", a.gain_percent ? round4(*a.gain_percent) : json(nullptr)},
            {"requests_served", a.proposed.score.served - a.current.score.served}}},
          {"candidates_evaluated", a.candidates_evaluated}};
}

void DemandRoutes::registerRoutes(Router& router) {
  using Req = const ApiRequest&;
  using Res = ApiResponse&;
  for (const char* prefix : kApiPrefixes) {
    const std::string p = prefix;
    router.get(p + "/demand", [this](Req q, Res r) { list(q, r); });
    router.get(p + "/advice/layout", [this](Req q, Res r) { layout(q, r); });
  }
  router.document(kDocs);
}

void DemandRoutes::list(const ApiRequest& req, ApiResponse& res) {
  DemandFilter f;
  if (req.has_param("outcome")) {
    const std::string o = req.get_param_value("outcome");
    if (!isDemandOutcome(o)) {
      return sendError(res, invalid("outcome must be one of accepted, refused_capacity, refused_budget, queued (got '" +
                                    printableExcerpt(o, 32) + "')"));
    }
    f.outcome = o;
  }
  const std::string listing = "demand\noutcome=" + req.get_param_value("outcome");
  auto q = parseListQuery(req, cursors_, listing);
  if (!q.ok()) return sendError(res, q.error());
  if (q->after) {
    auto id = parseRowKeyText(*q->after);
    if (!id.ok()) return sendError(res, id.error());
    f.after_id = id.value();
  }
  if (q->from) f.from_ms = toUnixMillis(*q->from);
  if (q->to) f.to_ms = toUnixMillis(*q->to);
  f.limit = q->limit + 1;  // one more: is there a next page?
  auto rows = store_.list(f);
  if (!rows.ok()) return sendError(res, rows.error());
  if (rows->size() > q->limit) {
    rows->resize(q->limit);
    setNextPage(req, nextCursor(req, cursors_, listing, std::to_string(rows->back().id)), res);
  }
  json arr = json::array();
  for (const DemandRecord& r : rows.value()) arr.push_back(demandJson(r));
  sendJson(res, 200, arr);
}

void DemandRoutes::layout(const ApiRequest& req, ApiResponse& res) {
  if (!options_.advice_unsupported.empty()) return sendError(res, invalid(options_.advice_unsupported));
  if (!options_.gpus) return sendError(res, invalid("layout advice needs local GPUs (--gpu-backend nvml)"));
  if (options_.mig_mode != MigMode::kStatic) {
    return sendError(res, invalid("layout advice is for hosts with a fixed MIG layout (--mig-mode static); this one "
                                  "creates an instance per session (--mig-mode dynamic), so its layout follows demand "
                                  "already"));
  }
  int days = kDefaultAdviceDays;
  if (req.has_param("days")) {
    const std::string d = req.get_param_value("days");
    auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), days);
    if (d.empty() || ec != std::errc() || end != d.data() + d.size() || days < 1 || days > kMaxAdviceDays) {
      return sendError(res, invalid("days must be a whole number from 1 to 366 (got '" + printableExcerpt(d, 16) + "')"));
    }
  }
  auto gpus = options_.gpus();
  if (!gpus.ok()) return sendError(res, gpus.error());
  const int64_t to = toUnixMillis(clock_.now());
  const int64_t from = to - static_cast<int64_t>(days) * kDayMs;
  DemandFilter f;
  f.from_ms = from;
  f.to_ms = to;
  auto records = store_.list(f);
  if (!records.ok()) return sendError(res, records.error());
  AdviceOptions opts;
  opts.default_profile = options_.default_profile;
  // The replay prices the same few kinds over and over: once each per request.
  auto prices = std::make_shared<std::map<std::string, double>>();
  opts.pricer = [this, prices](const std::string& model, const std::string& profile, int compute) {
    const std::string key = model + "\n" + profile + "\n" + std::to_string(compute);
    if (auto it = prices->find(key); it != prices->end()) return it->second;
    const double p = options_.pricer ? options_.pricer(model, profile, compute) : 0;
    prices->emplace(key, p);
    return p;
  };
  int64_t default_ms = 0;
  const auto requests = replayRequests(records.value(), to, opts, &default_ms);
  auto advice = adviseLayout(gpus.value(), requests, opts, to);
  if (!advice.ok()) return sendError(res, advice.error());
  std::map<std::string, int> by_outcome;
  for (const DemandRecord& r : records.value()) ++by_outcome[r.outcome];
  json body = layoutAdviceJson(advice.value());
  body["window"] = {{"from", formatRfc3339(fromUnixMillis(from))}, {"to", formatRfc3339(fromUnixMillis(to))}, {"days", days}};
  body["demand"] = {{"records", records->size()}, {"by_outcome", by_outcome}, {"replayed", requests.size()}};
  body["default_duration_seconds"] = static_cast<double>(default_ms) / 1000.0;
  body["method"] =
      "replays the window's create requests (refused for capacity included; refused for budget left out) oldest first "
      "through the static-MIG allocator against the current layout, every uniform layout per GPU model and per-GPU "
      "improvements; the proposal serves the most slice-hours (compute slices x hours held), then the most requests";
  sendJson(res, 200, body);
}

}  // namespace sandman
