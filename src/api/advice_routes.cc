#include "api/advice_routes.h"

#include <charconv>

#include "common/time_format.h"
#include "common/utf8.h"

namespace sandman {
namespace {

using nlohmann::json;

constexpr int64_t kDefaultWindowMs = 30 * kDayMs;
constexpr int64_t kMaxWindowMs = 366 * kDayMs;
constexpr size_t kDefaultLimit = 500;

Result<int64_t> parseWhen(const std::string& name, const std::string& text) {
  std::optional<TimePoint> t;
  if (text.size() == 10) t = parseRfc3339(text + "T00:00:00Z");
  if (!t) t = parseRfc3339(text);
  if (!t) {
    return invalid("'" + name + "' must be an RFC 3339 time (2026-03-01T00:00:00Z) or a date (2026-03-01), got '" +
                   printableExcerpt(text, 40) + "'");
  }
  return toUnixMillis(*t);
}

double usd(double micros) { return micros / 1e6; }
std::string when(int64_t ms) { return formatRfc3339(fromUnixMillis(ms)); }
json optional(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

std::string groupField(const std::string& group_by) {
  const std::string c = costColumn(group_by);
  return c.empty() ? group_by : c;
}

// OpenAPI operations of the routes below (api/openapi.h).
constexpr std::string_view kDocs = R"json({
"routes": {
  "GET /advice/rightsizing": {"operationId": "rightsizingAdvice", "summary": "Sessions that held more GPU than their peak use needed", "tag": "Advice",
    "parameters": [
      {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 or a date; default: 30 days before to"},
      {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 or a date; default: now; the window is at most 366 days"},
      {"name": "all", "in": "query", "schema": {"type": "string", "enum": ["true", "false"], "default": "false"}, "description": "list right-sized sessions too"},
      {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 500}}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false,
      "required": ["from", "to", "headroom", "rule", "currency", "sessions", "summary"],
      "properties": {
        "from": {"$ref": "#/components/schemas/Timestamp"}, "to": {"$ref": "#/components/schemas/Timestamp"},
        "headroom": {"type": "number"}, "rule": {"type": "string"}, "currency": {"const": "USD"},
        "sessions": {"type": "array", "items": {"type": "object", "additionalProperties": false,
          "required": ["session_id", "user_id", "team", "project", "status", "device", "gpu_model", "profile", "started_at", "ended_at",
                       "held_minutes", "telemetry_minutes", "peak_memory_mib", "peak_utilization", "verdict", "reason", "basis",
                       "suggested_profile", "cost_usd", "suggested_cost_usd", "saving_usd"],
          "properties": {"session_id": {"type": "string"}, "user_id": {"type": "string"}, "team": {"type": "string"}, "project": {"type": "string"},
            "status": {"type": "string"}, "device": {"type": "string"}, "gpu_model": {"type": "string"}, "profile": {"type": "string"},
            "started_at": {"$ref": "#/components/schemas/Timestamp"}, "ended_at": {"$ref": "#/components/schemas/NullableTimestamp"},
            "held_minutes": {"type": "number"}, "telemetry_minutes": {"type": "number"},
            "peak_memory_mib": {"type": ["number", "null"]}, "peak_utilization": {"type": ["number", "null"]},
            "verdict": {"type": "string"}, "reason": {"type": "string"}, "basis": {"type": ["string", "null"]},
            "suggested_profile": {"type": ["string", "null"]}, "cost_usd": {"type": "number"},
            "suggested_cost_usd": {"type": ["number", "null"]}, "saving_usd": {"type": "number"}}}},
        "summary": {"type": "object", "additionalProperties": false, "required": ["sessions", "smaller", "right_sized", "unknown", "saving_usd"],
          "properties": {"sessions": {"type": "integer"}, "smaller": {"type": "integer"}, "right_sized": {"type": "integer"},
            "unknown": {"type": "integer"}, "saving_usd": {"type": "number"}}}}}}},
    "errors": [400]},
  "GET /cost/forecast": {"operationId": "costForecast", "summary": "Forecast GPU slice-hours and cost by profile or team", "tag": "Advice",
    "parameters": [
      {"name": "horizon", "in": "query", "schema": {"type": "string", "enum": ["7d", "30d"], "default": "7d"}},
      {"name": "group_by", "in": "query", "schema": {"type": "string", "enum": ["profile", "team"], "default": "profile"}}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false,
      "required": ["group_by", "horizon", "from", "to", "history_from", "history_weeks", "method", "currency", "groups", "total"],
      "properties": {"group_by": {"type": "string", "enum": ["profile", "team"]}, "horizon": {"type": "string", "enum": ["7d", "30d"]},
        "from": {"$ref": "#/components/schemas/Timestamp"}, "to": {"$ref": "#/components/schemas/Timestamp"},
        "history_from": {"$ref": "#/components/schemas/Timestamp"}, "history_weeks": {"type": "integer"},
        "method": {"type": "string"}, "currency": {"const": "USD"},
        "groups": {"type": "array", "items": {"type": "object",
          "required": ["slice_hours", "cost_usd", "usd_per_slice_hour", "history_slice_hours", "days"],
          "description": "also the group's key, named profile or team",
          "properties": {"profile": {"type": "string"}, "team": {"type": "string"}, "slice_hours": {"type": "number"},
            "cost_usd": {"type": "number"}, "usd_per_slice_hour": {"type": "number"}, "history_slice_hours": {"type": "number"},
            "days": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["day", "slice_hours", "cost_usd"],
              "properties": {"day": {"$ref": "#/components/schemas/Timestamp"}, "slice_hours": {"type": "number"}, "cost_usd": {"type": "number"}}}}},
          "additionalProperties": false}},
        "total": {"type": "object", "additionalProperties": false, "required": ["slice_hours", "cost_usd"],
          "properties": {"slice_hours": {"type": "number"}, "cost_usd": {"type": "number"}}}}}}},
    "errors": [400]}
}
})json";

}  // namespace

const char* const kRightsizingRule =
    "a profile fits when peak memory (largest sample) x headroom <= its memory and "
    "ceil(peak utilisation (busiest minute's mean) / 100 x compute slices held x headroom) <= its compute slices; "
    "the cheapest fitting profile cheaper than the one held is suggested; where utilisation is unknown (NVML reports "
    "none for MIG instances) memory alone decides (basis: memory)";
const char* const kForecastMethod =
    "per group: hourly slice-hours of the last 8 weeks; share of each hour-of-week in their total x a weekly level "
    "from a least-squares line through the weekly totals; cost = slice-hours x USD per slice-hour of the last 7 days";

json rightsizingJson(const RightsizingReport& r, bool all, size_t limit) {
  json rows = json::array();
  for (const auto& row : r.rows) {
    if (!all && row.verdict == FitVerdict::kRightSized) continue;
    if (rows.size() >= limit) break;
    const CostSession& s = row.session;
    rows.push_back({{"session_id", s.id},
                    {"user_id", s.user_id},
                    {"team", s.team},
                    {"project", s.project},
                    {"status", toString(s.status)},
                    {"device", row.holding.device},
                    {"gpu_model", row.gpu_model},
                    {"profile", row.profile},
                    {"started_at", when(s.created_ms)},
                    {"ended_at", s.ended_ms ? json(when(*s.ended_ms)) : json(nullptr)},
                    {"held_minutes", row.held_minutes},
                    {"telemetry_minutes", row.telemetry_minutes},
                    {"peak_memory_mib", optional(row.peak_memory_mib)},
                    {"peak_utilization", optional(row.peak_utilization)},
                    {"verdict", toString(row.verdict)},
                    {"reason", row.reason},
                    {"basis", row.basis.empty() ? json(nullptr) : json(row.basis)},
                    {"suggested_profile", row.suggested_profile.empty() ? json(nullptr) : json(row.suggested_profile)},
                    {"cost_usd", usd(static_cast<double>(row.cost_micros))},
                    {"suggested_cost_usd", row.verdict == FitVerdict::kSmaller
                                               ? json(usd(static_cast<double>(row.suggested_cost_micros)))
                                               : json(nullptr)},
                    {"saving_usd", usd(static_cast<double>(row.saving_micros))}});
  }
  return {{"from", when(r.from_ms)},
          {"to", when(r.to_ms)},
          {"headroom", r.headroom},
          {"rule", kRightsizingRule},
          {"currency", "USD"},
          {"sessions", rows},
          {"summary",
           {{"sessions", r.rows.size()},
            {"smaller", r.smaller},
            {"right_sized", r.right_sized},
            {"unknown", r.unknown},
            {"saving_usd", usd(static_cast<double>(r.saving_micros))}}}};
}

json forecastJson(const CostForecastReport& r) {
  const std::string key = groupField(r.group_by);
  json groups = json::array();
  for (const auto& g : r.groups) {
    json days = json::array();
    for (const auto& d : g.days) {
      days.push_back({{"day", when(d.day_ms)}, {"slice_hours", d.slice_hours}, {"cost_usd", usd(d.cost_micros)}});
    }
    groups.push_back({{key, g.key},
                      {"slice_hours", g.slice_hours},
                      {"cost_usd", usd(g.cost_micros)},
                      {"usd_per_slice_hour", g.usd_per_slice_hour},
                      {"history_slice_hours", g.history_slice_hours},
                      {"days", days}});
  }
  return {{"group_by", r.group_by},
          {"horizon", std::to_string(r.horizon_days) + "d"},
          {"from", when(r.from_ms)},
          {"to", when(r.to_ms)},
          {"history_from", when(r.history_from_ms)},
          {"history_weeks", r.options.weeks},
          {"method", kForecastMethod},
          {"currency", "USD"},
          {"groups", groups},
          {"total", {{"slice_hours", r.slice_hours}, {"cost_usd", usd(r.cost_micros)}}}};
}

void AdviceRoutes::registerRoutes(Router& router) {
  using Req = const ApiRequest&;
  using Res = ApiResponse&;
  for (const char* prefix : kApiPrefixes) {
    const std::string p = prefix;
    router.get(p + "/advice/rightsizing", [this](Req q, Res r) { rightsizing(q, r); });
    router.get(p + "/cost/forecast", [this](Req q, Res r) { forecast(q, r); });
  }
  router.document(kDocs);
}

void AdviceRoutes::rightsizing(const ApiRequest& req, ApiResponse& res) {
  const int64_t now = toUnixMillis(ledger_.clock().now());
  int64_t to = now;
  if (req.has_param("to")) {
    auto t = parseWhen("to", req.get_param_value("to"));
    if (!t.ok()) return sendError(res, t.error());
    to = t.value();
  }
  int64_t from = to - kDefaultWindowMs;
  if (req.has_param("from")) {
    auto f = parseWhen("from", req.get_param_value("from"));
    if (!f.ok()) return sendError(res, f.error());
    from = f.value();
  }
  if (to <= from) return sendError(res, invalid("'from' must be earlier than 'to'"));
  if (to - from > kMaxWindowMs) return sendError(res, invalid("the window from..to is at most 366 days"));
  bool all = false;
  if (req.has_param("all")) {
    const std::string a = req.get_param_value("all");
    if (a != "true" && a != "false") return sendError(res, invalid("'all' must be true or false"));
    all = a == "true";
  }
  size_t limit = kDefaultLimit;
  if (req.has_param("limit")) {
    const std::string l = req.get_param_value("limit");
    auto [ptr, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
    if (ec != std::errc() || ptr != l.data() + l.size() || limit < 1 || limit > 10000) {
      return sendError(res, invalid("'limit' must be 1 to 10000"));
    }
  }
  auto r = adviseRightsizing(ledger_, from, to);
  if (!r.ok()) return sendError(res, r.error());
  sendJson(res, 200, rightsizingJson(r.value(), all, limit));
}

void AdviceRoutes::forecast(const ApiRequest& req, ApiResponse& res) {
  int days = 7;
  if (req.has_param("horizon")) {
    const std::string h = req.get_param_value("horizon");
    if (h == "7d") {
      days = 7;
    } else if (h == "30d") {
      days = 30;
    } else {
      return sendError(res, invalid("horizon must be 7d or 30d (got '" + printableExcerpt(h, 16) + "')"));
    }
  }
  std::string group_by = "profile";
  if (req.has_param("group_by")) group_by = req.get_param_value("group_by");
  if (group_by != "profile" && group_by != "team") {
    return sendError(res, invalid("group_by must be profile or team (got '" + printableExcerpt(group_by, 32) + "')"));
  }
  auto r = forecastCost(ledger_, group_by, days);
  if (!r.ok()) return sendError(res, r.error());
  sendJson(res, 200, forecastJson(r.value()));
}

}  // namespace sandman
