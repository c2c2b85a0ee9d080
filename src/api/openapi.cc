#include "api/openapi.h"

#include <cctype>
#include <set>

namespace sandman {
namespace {

using nlohmann::json;

constexpr const char* kVersionPrefix = "/api/v1";

bool isVersioned(const std::string& pattern) { return pattern.rfind(std::string(kVersionPrefix) + "/", 0) == 0; }

const std::set<std::string>& unversionedPublished() {
  static const std::set<std::string> paths = {"/healthz", "/readyz", "/metrics", "/openapi.json"};
  return paths;
}

json errorRef() { return {{"$ref", "#/components/schemas/Error"}}; }

const char* statusText(int code) {
  switch (code) {
    case 400: return "The request is invalid (a parameter, the body or a path id)";
    case 401: return "Missing or wrong token or login cookie";
    case 402: return "Over budget";
    case 403: return "Forbidden: the viewer role may only read, or a cookie write lacks X-Sandman-CSRF";
    case 404: return "No such resource";
    case 405: return "Method not allowed here";
    case 409: return "Conflicts with the current state";
    case 413: return "Too large";
    case 415: return "The body is not application/json";
    case 429: return "Too many requests";
    case 500: return "Internal error";
    case 501: return "Not available on this backend";
    case 503: return "Unavailable (a dependency is down, or this replica is a follower)";
    case 507: return "Insufficient storage";
  }
  return "Error";
}

json errorResponse(int code) {
  return {{"description", statusText(code)}, {"content", {{"application/json", {{"schema", errorRef()}}}}}};
}

// "{id}" segments of a pattern, in order.
std::vector<std::string> captures(const Router::Route& route) {
  std::vector<std::string> out;
  for (const auto& s : route.segments) {
    if (s.size() >= 2 && s.front() == '{') out.push_back(s.substr(1, s.size() - 2));
  }
  return out;
}

std::string camelId(const Router::Route& route) {
  std::string id;
  for (char c : route.method) id += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool upper = true;
  for (char c : route.pattern) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      id += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      upper = false;
    } else {
      upper = true;
    }
  }
  return id;
}

json expandResponses(const json& given) {
  json out = json::object();
  for (const auto& [code, r] : given.items()) {
    json resp = r;
    if (resp.contains("json")) {
      resp["content"]["application/json"]["schema"] = resp["json"];
      resp.erase("json");
    }
    if (!resp.contains("description")) resp["description"] = code == "204" ? "No content" : "OK";
    out[code] = resp;
  }
  return out;
}

json operation(const Router::Route& route) {
  const bool read = route.method == "GET";
  if (!route.doc) {
    json op = {{"operationId", camelId(route)},
               {"summary", "Undocumented route"},
               {"tags", json::array({"Undocumented"})},
               {"x-sandman-undocumented", true},
               {"x-sandman-role", read ? "viewer" : "admin"},
               {"responses", {{"default", errorResponse(500)}}}};
    op["responses"]["default"]["description"] = "Unknown: this route has no documentation";
    json params = json::array();
    for (const auto& name : captures(route)) {
      params.push_back({{"name", name}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}});
    }
    if (!params.empty()) op["parameters"] = params;
    return op;
  }
  const json& doc = *route.doc;
  json op = json::object();
  op["operationId"] = doc.value("operationId", camelId(route));
  op["summary"] = doc.value("summary", "");
  if (doc.contains("description")) op["description"] = doc["description"];
  op["tags"] = json::array({doc.value("tag", "Undocumented")});
  const bool is_public = doc.value("public", false);
  if (is_public) op["security"] = json::array();
  if (doc.contains("security")) op["security"] = doc["security"];
  const std::string role = doc.value("role", read ? "viewer" : "admin");
  op["x-sandman-role"] = role;

  json params = doc.value("parameters", json::array());
  std::set<std::string> named;
  for (const auto& p : params) {
    if (p.contains("name") && p.value("in", "") == "path") named.insert(p["name"].get<std::string>());
  }
  json path_params = json::array();
  for (const auto& name : captures(route)) {
    if (named.count(name)) continue;
    path_params.push_back({{"name", name}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}});
  }
  for (auto& p : params) path_params.push_back(p);
  if (!path_params.empty()) op["parameters"] = path_params;

  if (doc.contains("body")) {
    op["requestBody"] = {{"required", doc.value("body_required", true)},
                         {"content", {{"application/json", {{"schema", doc["body"]}}}}}};
  }
  if (doc.contains("requestBody")) op["requestBody"] = doc["requestBody"];

  json responses = expandResponses(doc.value("responses", json::object()));
  for (const auto& code : doc.value("errors", json::array())) {
    responses[std::to_string(code.get<int>())] = errorResponse(code.get<int>());
  }
  if (!is_public && !doc.contains("security")) responses["401"] = errorResponse(401);
  if (!read && role == "admin") responses["403"] = errorResponse(403);
  if (op.contains("requestBody")) responses["415"] = errorResponse(415);
  if (!doc.value("no_default", false)) {
    responses["default"] = errorResponse(500);
    responses["default"]["description"] = "Any other error, in the same shape";
  }
  op["responses"] = responses;
  for (const auto& [k, v] : doc.items()) {
    if (k.rfind("x-", 0) == 0) op[k] = v;
  }
  return op;
}

// Every listing's paging and time window (api/list_query.h).
const json& commonParameters() {
  static const json params = json::parse(R"json({
    "SessionId": {"name": "id", "in": "path", "required": true, "description": "s- and 16 hex digits",
                  "schema": {"type": "string", "pattern": "^s-[0-9a-f]{16}$"}},
    "User": {"name": "user", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/UserId"}},
    "NodeName": {"name": "name", "in": "path", "required": true, "description": "a node name (DNS subdomain or host name)",
                 "schema": {"type": "string", "pattern": "^[A-Za-z0-9.-]{1,253}$"}},
    "Limit": {"name": "limit", "in": "query", "description": "rows per page (default 100)",
              "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
    "Cursor": {"name": "cursor", "in": "query",
               "description": "the X-Next-Cursor of the previous page (opaque; only with the same filters)",
               "schema": {"type": "string"}},
    "From": {"name": "from", "in": "query", "description": "inclusive start: RFC 3339 UTC or unix seconds",
             "schema": {"type": "string"}},
    "To": {"name": "to", "in": "query", "description": "exclusive end: RFC 3339 UTC or unix seconds",
           "schema": {"type": "string"}}
  })json");
  return params;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

bool isPublishedPath(const std::string& pattern) {
  return isVersioned(pattern) || unversionedPublished().count(pattern) > 0;
}

std::vector<std::string> undocumentedRoutes(const Router& router) {
  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& r : router.routes()) {
    if (r.doc) documented.insert({r.method, r.pattern});
  }
  std::vector<std::string> out;
  for (const auto& r : router.routes()) {
    if (r.doc) continue;
    if (!isVersioned(r.pattern) && documented.count({r.method, kVersionPrefix + r.pattern})) continue;
    out.push_back(r.method + " " + r.pattern);
  }
  return out;
}

json buildOpenApi(const Router& router, const std::string& version) {
  json paths = json::object();
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& route : router.routes()) {
    if (!isPublishedPath(route.pattern)) continue;
    // The first registered route wins dispatch; a later duplicate never runs.
    if (!seen.insert({route.method, route.pattern}).second) continue;
    paths[route.pattern][lower(route.method)] = operation(route);
  }
  json schemas = commonOpenApiSchemas();
  for (const auto& [name, schema] : router.schemas().items()) schemas[name] = schema;
  return {
      {"openapi", "3.1.0"},
      {"info",
       {{"title", "Sandman API"},
        {"version", version},
        {"description",
         "GPU workspaces over SSH. Generated from the daemon's own route table: every route it dispatches is "
         "here. Errors are JSON {\"error\", \"code\"}. Listings page with ?limit and an opaque ?cursor (the next "
         "one in the X-Next-Cursor and Link headers)."}}},
      {"jsonSchemaDialect", "https://spec.openapis.org/oas/3.1/dialect/base"},
      {"servers", json::array({{{"url", "/"}}})},
      {"security", json::array({{{"bearer", json::array()}}, {{"cookie", json::array()}}})},
      {"paths", paths},
      {"components",
       {{"securitySchemes",
         {{"bearer", {{"type", "http"}, {"scheme", "bearer"}, {"description", "the --token-file or --viewer-token-file token"}}},
          {"cookie",
           {{"type", "apiKey"},
            {"in", "cookie"},
            {"name", "sandman_session"},
            {"description", "a browser login (POST /api/v1/login); writes also need the header X-Sandman-CSRF: 1"}}}}},
        {"schemas", schemas},
        {"parameters", commonParameters()}}}};
}

const json& commonOpenApiSchemas() {
  static const json schemas = json::parse(R"json({
    "Error": {
      "type": "object",
      "description": "Every error. Some carry more fields (such as a budget's figures) beside these two.",
      "required": ["error", "code"],
      "properties": {
        "error": {"type": "string", "description": "what went wrong, for a person"},
        "code": {"type": "string", "enum": ["invalid", "unauthorized", "over_budget", "not_found", "conflict",
                 "too_large", "unavailable", "insufficient_storage", "internal", "forbidden", "not_leader",
                 "rate_limited"]}
      }
    },
    "UserId": {"type": "string", "pattern": "^[a-z_][a-z0-9_-]{0,31}$",
               "description": "a POSIX user name (1-32: lower-case letters, digits, '_', '-'), not an account or group of the session image",
               "not": {"anyOf": [{"pattern": "^systemd-"}, {"$ref": "#/components/schemas/ReservedUserId"}]}},
    "ReservedUserId": {"description": "the image's accounts and groups (core/validation.cc kReserved)", "enum": [
      "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
      "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "_apt", "sshd", "_ssh", "messagebus",
      "adm", "tty", "disk", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape", "sudo", "audio",
      "dip", "operator", "src", "shadow", "utmp", "video", "sasl", "plugdev", "staff", "users", "input",
      "sgx", "kvm", "render", "crontab", "netdev", "polkitd", "statd", "tcpdump", "uuidd", "avahi", "ntp",
      "admin"]},
    "OrgName": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,62}$", "description": "a team or project name"},
    "Deleted": {"type": "object", "additionalProperties": false, "required": ["deleted"],
                "properties": {"deleted": {"type": ["string", "integer"], "description": "the name or id removed"}}},
    "Timestamp": {"type": "string", "format": "date-time", "description": "RFC 3339, UTC"},
    "NullableTimestamp": {"type": ["string", "null"], "format": "date-time"},
    "SessionStatus": {"type": "string", "enum": ["pending", "starting", "running", "stopping", "ended", "failed"]},
    "Session": {"$ref": "#/components/schemas/SessionFields", "unevaluatedProperties": false},
    "SessionFields": {
      "type": "object",
      "description": "a session's fields, open for extension (Session is the closed object)",
      "required": ["session_id", "id", "user_id", "team", "project", "status", "container_id", "image", "ssh_user",
                   "ssh_host", "ssh_port", "ssh_command", "ssh_host_key", "gpu_uuid", "mig_profile", "gpu_index",
                   "gpu_attach", "workspace", "created_at", "expires_at", "ended_at", "end_reason"],
      "properties": {
        "session_id": {"type": "string", "pattern": "^s-[0-9a-f]{16}$"},
        "id": {"type": "string", "pattern": "^s-[0-9a-f]{16}$", "description": "the same as session_id"},
        "user_id": {"type": "string"},
        "team": {"type": ["string", "null"]},
        "project": {"type": ["string", "null"]},
        "status": {"$ref": "#/components/schemas/SessionStatus"},
        "container_id": {"type": ["string", "null"]},
        "image": {"type": "string"},
        "ssh_user": {"type": "string"},
        "ssh_host": {"type": "string"},
        "ssh_port": {"type": "integer"},
        "ssh_command": {"type": "string"},
        "ssh_host_key": {"type": ["string", "null"], "description": "a known_hosts line; null behind the gateway"},
        "gpu_uuid": {"type": ["string", "null"]},
        "mig_profile": {"type": ["string", "null"]},
        "gpu_index": {"type": ["integer", "null"]},
        "gpu_attach": {"type": ["string", "null"]},
        "workspace": {"type": "string"},
        "created_at": {"$ref": "#/components/schemas/Timestamp"},
        "expires_at": {"$ref": "#/components/schemas/Timestamp"},
        "ended_at": {"$ref": "#/components/schemas/NullableTimestamp"},
        "end_reason": {"type": ["string", "null"]}
      }
    }
  })json");
  return schemas;
}

}  // namespace sandman
