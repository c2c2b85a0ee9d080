#include "api/cost_routes.h"

#include <charconv>
#include <cmath>

#include "api/list_query.h"
#include "common/time_format.h"
#include "common/utf8.h"
#include "core/validation.h"

namespace sandman {
namespace {

using nlohmann::json;

constexpr int64_t kMaxWindowMs = 5LL * 366 * kDayMs;
constexpr int64_t kDefaultWindowMs = 30 * kDayMs;

Result<json> objectBody(const std::string& body, std::initializer_list<const char*> allowed) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid("body must be a JSON object");
  for (const auto& [key, _] : j.items()) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || key == a;
    if (!ok) return invalid("unknown field '" + printableExcerpt(key, 40) + "'");
  }
  return j;
}

Result<std::optional<std::string>> stringField(const json& j, const char* name) {
  if (!j.contains(name) || j[name].is_null()) return std::optional<std::string>();
  if (!j[name].is_string()) return invalid(std::string("'") + name + "' must be a string");
  return std::optional<std::string>(j[name].get<std::string>());
}

double usd(int64_t micros) { return static_cast<double>(micros) / 1e6; }

std::string usdText(int64_t micros) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", usd(micros));
  return buf;
}

std::string hoursText(double h) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", h);
  return buf;
}

std::string groupField(const std::string& group_by) {
  const std::string c = costColumn(group_by);
  return c.empty() ? group_by : c;
}

json userOrgJson(const UserOrg& o) {
  return {{"user_id", o.user_id}, {"team", o.team.empty() ? json(nullptr) : json(o.team)}, {"projects", o.projects}};
}

bool wantsCsv(const ApiRequest& req) {
  if (req.get_param_value("format") == "csv") return true;
  return req.get_header_value("accept").find("text/csv") != std::string::npos;
}

json budgetJson(const BudgetStatus& s) {
  return {{"id", s.budget.id},
          {"budget", budgetLabel(s.budget)},
          {"scope", toString(s.budget.scope)},
          {"name", s.budget.name},
          {"usd_per_month", s.budget.usd_per_month},
          {"used_usd", usd(s.used_micros)},
          {"forecast_usd", usd(s.forecast_micros)},
          {"used_ratio", s.used_ratio},
          {"forecast_ratio", s.forecast_ratio},
          {"forecast_method", "month to date + mean daily spend of the last 7 days x days left"}};
}

// OpenAPI operations of the routes below (api/openapi.h).
constexpr std::string_view kDocs = R"json({
"schemas": {
  "UserOrg": {"type": "object", "additionalProperties": false, "required": ["user_id", "team", "projects"],
    "properties": {"user_id": {"type": "string"}, "team": {"type": ["string", "null"]}, "projects": {"type": "array", "items": {"type": "string"}}}},
  "Team": {"type": "object", "additionalProperties": false, "required": ["name", "created_at"],
    "properties": {"name": {"type": "string"}, "created_at": {"$ref": "#/components/schemas/Timestamp"}}},
  "Project": {"type": "object", "additionalProperties": false, "required": ["name", "team", "created_at"],
    "properties": {"name": {"type": "string"}, "team": {"type": ["string", "null"]}, "created_at": {"$ref": "#/components/schemas/Timestamp"}}},
  "CostLine": {"type": "object",
    "description": "cost of one group (its key is the group_by column: user_id, team, project, gpu_model, profile or session_id)",
    "required": ["cost_usd", "idle_cost_usd", "held_hours", "idle_hours"],
    "properties": {"bucket_start": {"$ref": "#/components/schemas/Timestamp"}, "cost_usd": {"type": "number"}, "idle_cost_usd": {"type": "number"},
      "held_hours": {"type": "number"}, "idle_hours": {"type": "number"}},
    "additionalProperties": {"type": "string"}, "minProperties": 5, "maxProperties": 6},
  "CostReport": {"type": "object", "additionalProperties": false,
    "required": ["group_by", "step", "from", "to", "currency", "rows", "totals", "total_usd", "idle_total_usd", "running_sessions", "price_basis"],
    "properties": {"group_by": {"type": "string"}, "step": {"type": "string", "enum": ["day", "week", "month"]},
      "from": {"$ref": "#/components/schemas/Timestamp"}, "to": {"$ref": "#/components/schemas/Timestamp"},
      "currency": {"const": "USD"},
      "rows": {"type": "array", "items": {"$ref": "#/components/schemas/CostLine"}},
      "totals": {"type": "array", "items": {"$ref": "#/components/schemas/CostLine"}},
      "total_usd": {"type": "number"}, "idle_total_usd": {"type": "number"}, "running_sessions": {"type": "integer"},
      "price_basis": {"type": "string"}}},
  "Price": {"type": "object", "additionalProperties": false, "required": ["model", "effective_from", "usd_per_hour"],
    "properties": {"model": {"type": "string"}, "effective_from": {"$ref": "#/components/schemas/Timestamp"},
      "usd_per_hour": {"type": "number"}, "source": {"type": "string"}}},
  "Budget": {"type": "object", "additionalProperties": false,
    "required": ["id", "budget", "scope", "name", "usd_per_month", "used_usd", "forecast_usd", "used_ratio", "forecast_ratio", "forecast_method"],
    "properties": {"id": {"type": "integer"}, "budget": {"type": "string"}, "scope": {"type": "string", "enum": ["user", "team", "project"]},
      "name": {"type": "string"}, "usd_per_month": {"type": "number"}, "used_usd": {"type": "number"}, "forecast_usd": {"type": "number"},
      "used_ratio": {"type": "number"}, "forecast_ratio": {"type": "number"}, "forecast_method": {"type": "string"}}},
  "BudgetPut": {"type": "object", "additionalProperties": false, "required": ["scope", "name", "usd_per_month"],
    "description": "name is a user id (scope user) or an OrgName",
    "properties": {"scope": {"type": "string", "enum": ["user", "team", "project"]}, "name": {"type": "string"},
      "usd_per_month": {"type": "number", "exclusiveMinimum": 0}}},
  "Budgets": {"type": "object", "additionalProperties": false, "required": ["enforcement", "budgets"],
    "properties": {"enforcement": {"type": "string", "enum": ["block", "warn"]},
      "budgets": {"type": "array", "items": {"$ref": "#/components/schemas/Budget"}}}}
},
"routes": {
  "GET /users": {"operationId": "listUsers", "summary": "Users with a team or projects", "tag": "Cost",
    "responses": {"200": {"json": {"type": "array", "items": {"$ref": "#/components/schemas/UserOrg"}}}}},
  "PUT /users/{user}": {"operationId": "putUser", "summary": "Set a user's team and projects (fields left out keep their value)", "tag": "Cost",
    "parameters": [{"$ref": "#/components/parameters/User"}],
    "body": {"type": "object", "additionalProperties": false,
      "properties": {"team": {"type": ["string", "null"]}, "projects": {"type": "array", "items": {"type": "string"}}}},
    "responses": {"200": {"json": {"$ref": "#/components/schemas/UserOrg"}}}, "errors": [400, 404]},
  "GET /users/{user}": {"operationId": "getUser", "summary": "A user's team and projects", "tag": "Cost",
    "parameters": [{"$ref": "#/components/parameters/User"}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/UserOrg"}}}, "errors": [400]},
  "GET /teams": {"operationId": "listTeams", "summary": "Teams", "tag": "Cost",
    "responses": {"200": {"json": {"type": "array", "items": {"$ref": "#/components/schemas/Team"}}}}},
  "POST /teams": {"operationId": "addTeam", "summary": "Create a team", "tag": "Cost",
    "body": {"type": "object", "additionalProperties": false, "required": ["name"], "properties": {"name": {"$ref": "#/components/schemas/OrgName"}}},
    "responses": {"201": {"description": "Created", "json": {"$ref": "#/components/schemas/Team"}}}, "errors": [400, 409]},
  "DELETE /teams/{name}": {"operationId": "removeTeam", "summary": "Remove a team", "tag": "Cost",
    "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/OrgName"}}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Deleted"}}}, "errors": [400, 404, 409]},
  "GET /projects": {"operationId": "listProjects", "summary": "Projects", "tag": "Cost",
    "responses": {"200": {"json": {"type": "array", "items": {"$ref": "#/components/schemas/Project"}}}}},
  "POST /projects": {"operationId": "addProject", "summary": "Create a project, optionally in a team", "tag": "Cost",
    "body": {"type": "object", "additionalProperties": false, "required": ["name"],
      "properties": {"name": {"$ref": "#/components/schemas/OrgName"}, "team": {"type": ["string", "null"], "description": "an existing team"}}},
    "responses": {"201": {"description": "Created", "json": {"$ref": "#/components/schemas/Project"}}}, "errors": [400, 409]},
  "DELETE /projects/{name}": {"operationId": "removeProject", "summary": "Remove a project", "tag": "Cost",
    "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/OrgName"}}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Deleted"}}}, "errors": [400, 404, 409]},
  "GET /cost": {"operationId": "costReport", "summary": "GPU cost by group and time bucket (JSON, or CSV)", "tag": "Cost",
    "description": "CSV with ?format=csv or Accept: text/csv. At most one of the filters user, team, project, gpu_model, profile, session.",
    "parameters": [
      {"name": "group_by", "in": "query", "schema": {"type": "string", "enum": ["user", "user_id", "team", "project", "gpu_model", "profile", "session", "session_id"], "default": "team"}},
      {"name": "step", "in": "query", "schema": {"type": "string", "enum": ["day", "week", "month"], "default": "day"}},
      {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 or a date (2026-03-01); default: 30 days before to"},
      {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 or a date; default: now; the window is at most 5 years"},
      {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
      {"name": "user", "in": "query", "schema": {"type": "string"}},
      {"name": "team", "in": "query", "schema": {"type": "string"}},
      {"name": "project", "in": "query", "schema": {"type": "string"}},
      {"name": "gpu_model", "in": "query", "schema": {"type": "string"}},
      {"name": "profile", "in": "query", "schema": {"type": "string"}},
      {"name": "session", "in": "query", "schema": {"type": "string"}}],
    "responses": {"200": {"content": {
      "application/json": {"schema": {"$ref": "#/components/schemas/CostReport"}},
      "text/csv": {"schema": {"type": "string", "description": "bucket_start,<group column>,cost_usd,idle_cost_usd,held_hours,idle_hours"}}}}},
    "errors": [400]},
  "GET /cost/prices": {"operationId": "listPrices", "summary": "GPU prices in force and their history", "tag": "Cost",
    "responses": {"200": {"json": {"type": "array", "items": {"$ref": "#/components/schemas/Price"}}}}},
  "PUT /cost/prices/{model}": {"operationId": "putPrice", "summary": "Set a GPU model's hourly price", "tag": "Cost",
    "body": {"type": "object", "additionalProperties": false, "required": ["usd_per_hour"],
      "properties": {"usd_per_hour": {"type": "number", "minimum": 0}, "effective_from": {"type": ["string", "null"], "description": "RFC 3339 or a date; default now"}}},
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Price"}}}, "errors": [400]},
  "GET /cost/catalog": {"operationId": "gpuCatalog", "summary": "The GPU catalog: models, MIG profiles and their prices", "tag": "Cost",
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["source", "slice_price_basis", "models"],
      "properties": {"source": {"type": "string"}, "slice_price_basis": {"type": "string"},
        "models": {"type": "array", "items": {"type": "object", "additionalProperties": false,
          "required": ["key", "memory_gb", "architecture", "status", "mig", "list_usd_per_hour", "usd_per_hour", "profiles"],
          "properties": {"key": {"type": "string"}, "memory_gb": {"type": "number"}, "architecture": {"type": "string"},
            "status": {"type": "string"}, "mig": {"type": "boolean"}, "list_usd_per_hour": {"type": ["number", "null"]},
            "usd_per_hour": {"type": ["number", "null"]},
            "profiles": {"type": "array", "items": {"type": "object", "additionalProperties": false,
              "required": ["name", "compute_slices", "memory_slices", "memory_mib", "max_instances", "usd_per_hour"],
              "properties": {"name": {"type": "string"}, "compute_slices": {"type": "integer"}, "memory_slices": {"type": "integer"},
                "memory_mib": {"type": "integer"}, "max_instances": {"type": "integer"}, "usd_per_hour": {"type": ["number", "null"]}}}}}}}}}}}},
  "GET /budgets": {"operationId": "listBudgets", "summary": "Monthly budgets with use and forecast", "tag": "Cost",
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Budgets"}}}},
  "PUT /budgets": {"operationId": "putBudget", "summary": "Set a monthly budget (one per scope and name)", "tag": "Cost",
    "body": {"$ref": "#/components/schemas/BudgetPut"},
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Budget"}}}, "errors": [400]},
  "POST /budgets": {"operationId": "postBudget", "summary": "Set a monthly budget (as PUT /budgets)", "tag": "Cost",
    "body": {"$ref": "#/components/schemas/BudgetPut"},
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Budget"}}}, "errors": [400]},
  "DELETE /budgets/{id}": {"operationId": "removeBudget", "summary": "Remove a budget", "tag": "Cost",
    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1, "maximum": 999999999999999999}}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Deleted"}}}, "errors": [400, 404]}
}
})json";

}  // namespace

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string costReportCsv(const CostReport& r) {
  const std::string key = groupField(r.query.group_by);
  std::string out = "bucket_start," + key + ",cost_usd,idle_cost_usd,held_hours,idle_hours\r\n";
  for (const auto& l : r.lines) {
    out += formatRfc3339(fromUnixMillis(l.bucket_ms)) + "," + csvField(l.key) + "," + usdText(l.cost_micros) + "," +
           usdText(l.idle_cost_micros) + "," + hoursText(l.held_hours) + "," + hoursText(l.idle_hours) + "\r\n";
  }
  return out;
}

json costReportJson(const CostReport& r) {
  const std::string key = groupField(r.query.group_by);
  json rows = json::array();
  for (const auto& l : r.lines) {
    rows.push_back({{"bucket_start", formatRfc3339(fromUnixMillis(l.bucket_ms))}, {key, l.key},
                    {"cost_usd", usd(l.cost_micros)}, {"idle_cost_usd", usd(l.idle_cost_micros)},
                    {"held_hours", l.held_hours}, {"idle_hours", l.idle_hours}});
  }
  json totals = json::array();
  for (const auto& l : r.totals) {
    totals.push_back({{key, l.key}, {"cost_usd", usd(l.cost_micros)}, {"idle_cost_usd", usd(l.idle_cost_micros)},
                      {"held_hours", l.held_hours}, {"idle_hours", l.idle_hours}});
  }
  return {{"group_by", r.query.group_by}, {"step", toString(r.query.step)},
          {"from", formatRfc3339(fromUnixMillis(r.query.from_ms))},
          {"to", formatRfc3339(fromUnixMillis(r.query.to_ms))}, {"currency", "USD"}, {"rows", rows},
          {"totals", totals}, {"total_usd", usd(r.total_micros)}, {"idle_total_usd", usd(r.idle_total_micros)},
          {"running_sessions", r.running_sessions}};
}

void CostRoutes::registerRoutes(Router& router) {
  using Req = const ApiRequest&;
  using Res = ApiResponse&;
  for (const char* prefix : kApiPrefixes) {
    const std::string p = prefix;
    router.get(p + "/users", [this](Req, Res r) { listUsers(r); });
    router.put(p + "/users/{user}", [this](Req q, Res r) { putUser(q, r); });
    router.get(p + "/users/{user}", [this](Req q, Res r) { getUser(q, r); });
    router.get(p + "/teams", [this](Req, Res r) { listTeams(r); });
    router.post(p + "/teams", [this](Req q, Res r) { addTeam(q, r); });
    router.del(p + "/teams/{name}", [this](Req q, Res r) { removeTeam(q, r); });
    router.get(p + "/projects", [this](Req, Res r) { listProjects(r); });
    router.post(p + "/projects", [this](Req q, Res r) { addProject(q, r); });
    router.del(p + "/projects/{name}", [this](Req q, Res r) { removeProject(q, r); });
    router.get(p + "/cost", [this](Req q, Res r) { cost(q, r); });
    router.get(p + "/cost/prices", [this](Req, Res r) { prices(r); });
    router.put(p + "/cost/prices/{model}", [this](Req q, Res r) { putPrice(q, r); });
    router.get(p + "/cost/catalog", [this](Req, Res r) { catalog(r); });
    router.get(p + "/budgets", [this](Req, Res r) { listBudgets(r); });
    router.put(p + "/budgets", [this](Req q, Res r) { putBudget(q, r); });
    router.post(p + "/budgets", [this](Req q, Res r) { putBudget(q, r); });
    router.del(p + "/budgets/{id}", [this](Req q, Res r) { removeBudget(q, r); });
  }
  router.document(kDocs);
}

void CostRoutes::putUser(const ApiRequest& req, ApiResponse& res) {
  const std::string user = req.matches[1];
  if (Status s = validateUserId(user); !s.ok()) return sendError(res, s.error());
  auto body = objectBody(req.body, {"team", "projects"});
  if (!body.ok()) return sendError(res, body.error());
  const json& j = body.value();
  UserOrg org{user, "", {}};
  auto current = ledger_.store().userOrg(user);
  if (!current.ok()) return sendError(res, current.error());
  if (current->has_value()) org = **current;  // fields left out keep their value
  if (j.contains("team")) {
    auto team = stringField(j, "team");
    if (!team.ok()) return sendError(res, team.error());
    org.team = team->value_or("");
  }
  if (j.contains("projects")) {
    if (!j["projects"].is_array()) return sendError(res, invalid("'projects' must be an array of project names"));
    org.projects.clear();
    for (const auto& p : j["projects"]) {
      if (!p.is_string()) return sendError(res, invalid("'projects' must be an array of project names"));
      org.projects.push_back(p.get<std::string>());
    }
  }
  auto saved = ledger_.setUserOrg(org);
  if (!saved.ok()) return sendError(res, saved.error());
  sendJson(res, 200, userOrgJson(saved.value()));
}

void CostRoutes::getUser(const ApiRequest& req, ApiResponse& res) {
  const std::string user = req.matches[1];
  if (Status s = validateUserId(user); !s.ok()) return sendError(res, s.error());
  auto org = ledger_.store().userOrg(user);
  if (!org.ok()) return sendError(res, org.error());
  sendJson(res, 200, userOrgJson(org->value_or(UserOrg{user, "", {}})));
}

void CostRoutes::listUsers(ApiResponse& res) {
  auto orgs = ledger_.store().userOrgs();
  if (!orgs.ok()) return sendError(res, orgs.error());
  json out = json::array();
  for (const auto& o : orgs.value()) out.push_back(userOrgJson(o));
  sendJson(res, 200, out);
}

void CostRoutes::listTeams(ApiResponse& res) {
  auto teams = ledger_.store().teams();
  if (!teams.ok()) return sendError(res, teams.error());
  json out = json::array();
  for (const auto& t : teams.value()) out.push_back({{"name", t.name}, {"created_at", formatRfc3339(t.created_at)}});
  sendJson(res, 200, out);
}

void CostRoutes::addTeam(const ApiRequest& req, ApiResponse& res) {
  auto body = objectBody(req.body, {"name"});
  if (!body.ok()) return sendError(res, body.error());
  auto name = stringField(body.value(), "name");
  if (!name.ok()) return sendError(res, name.error());
  if (!name.value()) return sendError(res, invalid("name is required"));
  if (Status s = validateOrgName("team", **name); !s.ok()) return sendError(res, s.error());
  const TimePoint now = ledger_.clock().now();
  if (Status s = ledger_.store().addTeam(**name, now); !s.ok()) return sendError(res, s.error());
  sendJson(res, 201, {{"name", **name}, {"created_at", formatRfc3339(now)}});
}

void CostRoutes::removeTeam(const ApiRequest& req, ApiResponse& res) {
  if (Status s = validateOrgName("team", req.matches[1]); !s.ok()) return sendError(res, s.error());
  if (Status s = ledger_.store().removeTeam(req.matches[1]); !s.ok()) return sendError(res, s.error());
  sendJson(res, 200, {{"deleted", req.matches[1]}});
}

void CostRoutes::listProjects(ApiResponse& res) {
  auto projects = ledger_.store().projects();
  if (!projects.ok()) return sendError(res, projects.error());
  json out = json::array();
  for (const auto& p : projects.value()) {
    out.push_back({{"name", p.name}, {"team", p.team.empty() ? json(nullptr) : json(p.team)},
                   {"created_at", formatRfc3339(p.created_at)}});
  }
  sendJson(res, 200, out);
}

void CostRoutes::addProject(const ApiRequest& req, ApiResponse& res) {
  auto body = objectBody(req.body, {"name", "team"});
  if (!body.ok()) return sendError(res, body.error());
  auto name = stringField(body.value(), "name");
  if (!name.ok()) return sendError(res, name.error());
  if (!name.value()) return sendError(res, invalid("name is required"));
  if (Status s = validateOrgName("project", **name); !s.ok()) return sendError(res, s.error());
  auto team = stringField(body.value(), "team");
  if (!team.ok()) return sendError(res, team.error());
  Project p{**name, team->value_or(""), ledger_.clock().now()};
  if (!p.team.empty()) {
    if (Status s = validateOrgName("team", p.team); !s.ok()) return sendError(res, s.error());
    auto teams = ledger_.store().teams();
    if (!teams.ok()) return sendError(res, teams.error());
    bool known = false;
    for (const auto& t : teams.value()) known = known || t.name == p.team;
    if (!known) return sendError(res, invalid("no team " + p.team + "; create it first with POST /api/v1/teams"));
  }
  if (Status s = ledger_.store().addProject(p); !s.ok()) return sendError(res, s.error());
  sendJson(res, 201, {{"name", p.name}, {"team", p.team.empty() ? json(nullptr) : json(p.team)},
                      {"created_at", formatRfc3339(p.created_at)}});
}

void CostRoutes::removeProject(const ApiRequest& req, ApiResponse& res) {
  if (Status s = validateOrgName("project", req.matches[1]); !s.ok()) return sendError(res, s.error());
  if (Status s = ledger_.store().removeProject(req.matches[1]); !s.ok()) return sendError(res, s.error());
  sendJson(res, 200, {{"deleted", req.matches[1]}});
}

void CostRoutes::cost(const ApiRequest& req, ApiResponse& res) {
  CostQuery q;
  if (req.has_param("group_by")) q.group_by = req.get_param_value("group_by");
  if (costColumn(q.group_by).empty()) {
    return sendError(res, invalid("group_by must be one of user, team, project, gpu_model, profile, session (got '" +
                                  printableExcerpt(q.group_by, 32) + "')"));
  }
  if (req.has_param("format") && req.get_param_value("format") != "json" && req.get_param_value("format") != "csv") {
    return sendError(res, invalid("format must be json or csv"));
  }
  if (req.has_param("step")) {
    auto step = parseCostStep(req.get_param_value("step"));
    if (!step) return sendError(res, invalid("step must be day, week or month"));
    q.step = *step;
  }
  const int64_t now = toUnixMillis(ledger_.clock().now());
  q.to_ms = now;
  if (req.has_param("to")) {
    auto to = parseDateOrTime("to", req.get_param_value("to"));
    if (!to.ok()) return sendError(res, to.error());
    q.to_ms = to.value();
  }
  q.from_ms = q.to_ms - kDefaultWindowMs;
  if (req.has_param("from")) {
    auto from = parseDateOrTime("from", req.get_param_value("from"));
    if (!from.ok()) return sendError(res, from.error());
    q.from_ms = from.value();
  }
  if (q.to_ms <= q.from_ms) return sendError(res, invalid("'from' must be earlier than 'to'"));
  if (q.to_ms - q.from_ms > kMaxWindowMs) return sendError(res, invalid("the window from..to is at most 5 years"));
  for (const char* f : {"user", "team", "project", "gpu_model", "profile", "session"}) {
    if (!req.has_param(f)) continue;
    if (!q.filter_by.empty()) return sendError(res, invalid("filter by one of user, team, project, ... at most"));
    q.filter_by = f;
    q.filter = req.get_param_value(f);
  }
  auto r = ledger_.report(q);
  if (!r.ok()) return sendError(res, r.error());
  if (wantsCsv(req)) {
    res.status = 200;
    res.set_content(costReportCsv(r.value()), "text/csv; charset=utf-8; header=present");
    return;
  }
  json body = costReportJson(r.value());
  body["price_basis"] = toString(ledger_.rates().basis());
  sendJson(res, 200, body);
}

void CostRoutes::prices(ApiResponse& res) {
  auto rows = ledger_.prices();
  if (!rows.ok()) return sendError(res, rows.error());
  json out = json::array();
  for (const auto& p : rows.value()) {
    out.push_back({{"model", p.model}, {"effective_from", formatRfc3339(fromUnixMillis(p.from_ms))},
                   {"usd_per_hour", p.usd_per_hour}, {"source", p.source}});
  }
  sendJson(res, 200, out);
}

void CostRoutes::putPrice(const ApiRequest& req, ApiResponse& res) {
  auto body = objectBody(req.body, {"usd_per_hour", "effective_from"});
  if (!body.ok()) return sendError(res, body.error());
  const json& j = body.value();
  if (!j.contains("usd_per_hour") || !j["usd_per_hour"].is_number()) {
    return sendError(res, invalid("usd_per_hour (a number) is required"));
  }
  std::optional<TimePoint> from;
  auto when = stringField(j, "effective_from");
  if (!when.ok()) return sendError(res, when.error());
  if (when.value()) {
    auto ms = parseDateOrTime("effective_from", **when);
    if (!ms.ok()) return sendError(res, ms.error());
    from = fromUnixMillis(ms.value());
  }
  const std::string model = req.matches[1];
  if (Status s = ledger_.setPrice(model, j["usd_per_hour"].get<double>(), from); !s.ok()) return sendError(res, s.error());
  sendJson(res, 200, {{"model", ledger_.rates().modelKey(model)},
                      {"effective_from", formatRfc3339(from.value_or(ledger_.clock().now()))},
                      {"usd_per_hour", j["usd_per_hour"]}});
}

void CostRoutes::catalog(ApiResponse& res) {
  const GpuCatalog* c = ledger_.rates().catalog();
  json models = json::array();
  if (c != nullptr) {
    for (const auto& m : c->models()) {
      json profiles = json::array();
      for (const auto& p : m.profiles) {
        profiles.push_back({{"name", p.name}, {"compute_slices", p.compute_slices},
                            {"memory_slices", p.memory_slices}, {"memory_mib", p.memory_mib},
                            {"max_instances", p.max_instances},
                            {"usd_per_hour", ledger_.rates().slotPerHour(m.key, p.name, p.compute_slices)}});
      }
      models.push_back({{"key", m.key}, {"memory_gb", m.memory_gb}, {"architecture", m.architecture},
                        {"status", m.status}, {"mig", m.mig}, {"list_usd_per_hour", m.usd_per_hour},
                        {"usd_per_hour", ledger_.rates().wholeGpuPerHour(m.key)}, {"profiles", profiles}});
    }
  }
  sendJson(res, 200, {{"source", c != nullptr ? c->origin() : ""}, {"slice_price_basis", toString(ledger_.rates().basis())},
                      {"models", models}});
}

}  // namespace sandman

namespace sandman {

void CostRoutes::listBudgets(ApiResponse& res) {
  auto all = budgets_.statuses();
  if (!all.ok()) return sendError(res, all.error());
  json out = json::array();
  for (const auto& s : all.value()) out.push_back(budgetJson(s));
  sendJson(res, 200, {{"enforcement", budgets_.blocking() ? "block" : "warn"}, {"budgets", out}});
}

void CostRoutes::putBudget(const ApiRequest& req, ApiResponse& res) {
  auto body = objectBody(req.body, {"scope", "name", "usd_per_month"});
  if (!body.ok()) return sendError(res, body.error());
  const json& j = body.value();
  auto scope_text = stringField(j, "scope");
  if (!scope_text.ok()) return sendError(res, scope_text.error());
  auto scope = parseBudgetScope(scope_text->value_or(""));
  if (!scope) return sendError(res, invalid("scope must be user, team or project"));
  auto name = stringField(j, "name");
  if (!name.ok()) return sendError(res, name.error());
  if (!name.value()) return sendError(res, invalid("name is required"));
  if (*scope == BudgetScope::kUser) {
    if (Status s = validateUserId(**name); !s.ok()) return sendError(res, s.error());
  } else if (Status s = validateOrgName(toString(*scope), **name); !s.ok()) {
    return sendError(res, s.error());
  }
  if (!j.contains("usd_per_month") || !j["usd_per_month"].is_number() || !std::isfinite(j["usd_per_month"].get<double>()) ||
      j["usd_per_month"].get<double>() <= 0) {
    return sendError(res, invalid("usd_per_month must be a number above 0"));
  }
  Budget b;
  b.scope = *scope;
  b.name = **name;
  b.usd_per_month = j["usd_per_month"].get<double>();
  b.created_at = ledger_.clock().now();
  auto saved = ledger_.store().putBudget(b);
  if (!saved.ok()) return sendError(res, saved.error());
  budgets_.invalidate();
  auto s = budgets_.status(saved.value());
  if (!s.ok()) return sendError(res, s.error());
  sendJson(res, 200, budgetJson(s.value()));
}

void CostRoutes::removeBudget(const ApiRequest& req, ApiResponse& res) {
  const std::string& raw = req.matches[1];
  int64_t id = 0;
  auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), id);
  if (raw.empty() || raw.size() > 18 || ec != std::errc() || end != raw.data() + raw.size() || id <= 0) {
    return sendError(res, invalid("budget id must be a positive whole number"));
  }
  if (Status s = ledger_.store().removeBudget(id); !s.ok()) return sendError(res, s.error());
  budgets_.invalidate();
  sendJson(res, 200, {{"deleted", id}});
}

}  // namespace sandman
