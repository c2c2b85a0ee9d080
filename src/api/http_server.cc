#include "api/http_server.h"

#include <charconv>
#include <cmath>
#include <string_view>

#include "api/gpu_json.h"
#include "api/http_util.h"
#include "api/openapi.h"
#include "api/token_auth.h"
#include "common/log.h"
#include "common/time_format.h"
#include "common/utf8.h"
#include "common/version.h"
#include "core/validation.h"

namespace sandman {

void sendJson(ApiResponse& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "application/json");
}

void sendError(ApiResponse& res, const Error& e) { sendJson(res, httpStatus(e.kind), errorJson(e)); }

namespace {

using nlohmann::json;

// A page of a listing keyed by row id, as a JSON array (what clients have
// always read); the next page's cursor travels in the Link and X-Next-Cursor
// headers. `list` was asked for one row more than the page, to learn whether
// there is a next page without counting.
template <typename T, typename ToJson>
void sendRowPage(const ApiRequest& req, const CursorCodec& codec, const std::string& listing, size_t limit,
                 Result<std::vector<T>> list, ToJson toJson, ApiResponse& res) {
  if (!list.ok()) return sendError(res, list.error());
  std::vector<T>& rows = list.value();
  if (rows.size() > limit) {
    rows.resize(limit);
    setNextPage(req, nextCursor(req, codec, listing, std::to_string(rows.back().id)), res);
  }
  json arr = json::array();
  for (const auto& item : rows) arr.push_back(toJson(item));
  sendJson(res, 200, arr);
}

// The page a row listing asks the store for: one row more than shown.
Result<RowPage> rowPage(const ApiRequest& req, const CursorCodec& codec, const std::string& listing,
                        size_t* limit) {
  auto q = parseListQuery(req, codec, listing);
  if (!q.ok()) return q.error();
  RowPage page;
  if (q->after) {
    auto id = parseRowKeyText(*q->after);
    if (!id.ok()) return id.error();
    page.after_id = id.value();
  }
  page.from = q->from;
  page.to = q->to;
  page.limit = q->limit + 1;
  *limit = q->limit;
  return page;
}

// user_id and status of GET /sessions ("active": pending to stopping).
Status parseSessionFilter(const ApiRequest& req, SessionFilter* filter) {
  if (req.has_param("user_id")) {
    std::string u = req.get_param_value("user_id");
    if (auto st = validateUserId(u); !st.ok()) return st.error();
    filter->user_id = u;
  }
  if (req.has_param("status")) {
    const std::string v = req.get_param_value("status");
    if (v == "active") {
      filter->active_only = true;
    } else if (auto st = parseSessionStatus(v)) {
      filter->status = *st;
    } else {
      return invalid("status must be one of pending, starting, running, stopping, ended, failed, active (got '" +
                     printableExcerpt(v, 32) + "')");
    }
  }
  return {};
}

// Path ids are checked before any lookup: "../x" and friends are a 400.
bool checkSessionId(const std::string& id, ApiResponse& res) {
  if (isSessionId(id)) return true;
  sendError(res, invalid("not a session id (expected s- and 16 hex digits): " + printableExcerpt(id, 64)));
  return false;
}

const char* rejectionCode(int status) {
  if (status >= 500) return "internal";
  if (status == 413 || status == 431) return "too_large";
  return "invalid";
}

// Only the liveness probe answers from the event loop itself: it touches
// nothing that can wait. Everything else (even a GET, which may wait on the
// store's lock behind a slow write) runs on the handler pool.
HttpLimits withInlineRoutes(HttpLimits limits) {
  limits.run_inline = [](const ApiRequest& r) { return r.method == "GET" && r.path == "/healthz"; };
  return limits;
}

// The OpenAPI operations of the routes the constructor and registerRoutes
// add (api/openapi.h has the shorthands).
constexpr std::string_view kServerDocs = R"json({
"schemas": {
  "SessionCreate": {
    "type": "object", "additionalProperties": false, "required": ["user_id"],
    "description": "ttl_minutes or ttl_seconds, not both; mig_profile, mig_instance_uuid and gpu_memory_gb exclude each other; workload goes with gpu_memory_gb (a null field counts as absent)",
    "allOf": [
      {"not": {"required": ["ttl_minutes", "ttl_seconds"], "properties": {"ttl_minutes": {"type": "integer"}, "ttl_seconds": {"type": "integer"}}}},
      {"not": {"required": ["mig_profile", "mig_instance_uuid"], "properties": {"mig_profile": {"type": "string"}, "mig_instance_uuid": {"type": "string"}}}},
      {"not": {"required": ["gpu_memory_gb"], "properties": {"gpu_memory_gb": {"type": "number"}},
               "anyOf": [{"required": ["mig_profile"], "properties": {"mig_profile": {"type": "string"}}},
                         {"required": ["mig_instance_uuid"], "properties": {"mig_instance_uuid": {"type": "string"}}}]}},
      {"if": {"required": ["workload"], "properties": {"workload": {"type": "string"}}},
       "then": {"required": ["gpu_memory_gb"], "properties": {"gpu_memory_gb": {"type": "number"}}}}
    ],
    "properties": {
      "user_id": {"$ref": "#/components/schemas/UserId"},
      "ttl_minutes": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000000},
      "ttl_seconds": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000000},
      "image": {"type": ["string", "null"], "description": "one of the daemon's allowed images"},
      "ssh_public_key": {"type": ["string", "null"], "description": "an OpenSSH public key line; without one, the answer carries a new private key"},
      "mig_profile": {"type": ["string", "null"], "description": "such as 1g.10gb"},
      "mig_instance_uuid": {"type": ["string", "null"]},
      "gpu_product": {"type": ["string", "null"]},
      "project": {"type": ["string", "null"]},
      "gpu_memory_gb": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1000000},
      "workload": {"type": ["string", "null"], "enum": ["inference", "training", null]}
    }
  },
  "SessionCreated": {
    "$ref": "#/components/schemas/SessionFields",
    "unevaluatedProperties": false,
    "properties": {
      "ssh_private_key": {"type": "string", "description": "only when the request gave no ssh_public_key: shown once"},
      "allocation": {
        "type": "object", "additionalProperties": false, "required": ["device", "profile", "usd_per_hour", "why"],
        "description": "only with gpu_memory_gb: what allocation by need chose",
        "properties": {"device": {"type": "string"}, "profile": {"type": "string"}, "usd_per_hour": {"type": "number"}, "why": {"type": "string"}}
      }
    }
  },
  "TtlPatch": {
    "type": "object", "additionalProperties": false,
    "description": "exactly one of ttl_minutes, ttl_seconds (a null one counts as absent)",
    "properties": {
      "ttl_minutes": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000000},
      "ttl_seconds": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000000}
    },
    "oneOf": [
      {"required": ["ttl_minutes"], "properties": {"ttl_minutes": {"type": "integer"}}},
      {"required": ["ttl_seconds"], "properties": {"ttl_seconds": {"type": "integer"}}}
    ]
  },
  "SessionStats": {
    "type": "object", "additionalProperties": false,
    "required": ["total", "active", "by_status", "active_users", "ports_in_use", "ports_free", "port_range"],
    "properties": {
      "total": {"type": "integer", "minimum": 0},
      "active": {"type": "integer", "minimum": 0},
      "by_status": {"type": "object", "additionalProperties": false,
        "required": ["pending", "starting", "running", "stopping", "ended", "failed"],
        "properties": {"pending": {"type": "integer"}, "starting": {"type": "integer"}, "running": {"type": "integer"},
                       "stopping": {"type": "integer"}, "ended": {"type": "integer"}, "failed": {"type": "integer"}}},
      "active_users": {"type": "integer", "minimum": 0},
      "ports_in_use": {"type": "integer", "minimum": 0},
      "ports_free": {"type": "integer"},
      "port_range": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}
    }
  },
  "Connection": {
    "type": "object", "additionalProperties": false,
    "required": ["id", "user_id", "session_id", "source", "outcome", "reason", "started_at", "ended_at", "duration_seconds", "bytes_in", "bytes_out"],
    "properties": {
      "id": {"type": "integer"}, "user_id": {"type": "string"}, "session_id": {"type": ["string", "null"]},
      "source": {"type": "string"}, "outcome": {"type": "string"}, "reason": {"type": ["string", "null"]},
      "started_at": {"$ref": "#/components/schemas/Timestamp"}, "ended_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "duration_seconds": {"type": ["number", "null"]}, "bytes_in": {"type": "integer"}, "bytes_out": {"type": "integer"}
    }
  },
  "SessionEvent": {
    "type": "object", "additionalProperties": false, "required": ["at", "kind", "detail"],
    "properties": {"at": {"$ref": "#/components/schemas/Timestamp"}, "kind": {"type": "string"}, "detail": {"type": "string"}}
  },
  "UserKey": {
    "type": "object", "additionalProperties": false, "required": ["id", "user_id", "public_key", "fingerprint", "created_at"],
    "properties": {"id": {"type": "integer"}, "user_id": {"type": "string"}, "public_key": {"type": "string"},
                   "fingerprint": {"type": "string"}, "created_at": {"$ref": "#/components/schemas/Timestamp"}}
  },
  "MigInstance": {
    "type": "object", "additionalProperties": false,
    "required": ["uuid", "profile", "placement", "gpu_instance_id", "compute_instance_id", "memory", "parent_gpu", "session_id", "allocated"],
    "properties": {
      "uuid": {"type": "string"}, "profile": {"type": "string"},
      "placement": {"type": "object", "additionalProperties": false, "required": ["start", "size"],
                    "properties": {"start": {"type": "integer"}, "size": {"type": "integer"}}},
      "gpu_instance_id": {"type": "integer"}, "compute_instance_id": {"type": "integer"},
      "memory": {"type": "integer", "description": "MiB"}, "parent_gpu": {"type": "string"},
      "session_id": {"type": ["string", "null"]}, "allocated": {"type": "boolean"}
    }
  },
  "GpuInventory": {
    "type": "object", "additionalProperties": false, "required": ["gpus", "count", "backend"],
    "description": "A host's GPUs; on a cluster, every node's from its Node object (no UUIDs or telemetry there: nulls)",
    "properties": {
      "gpus": {"type": "array", "items": {"type": "object", "additionalProperties": false,
        "required": ["index", "uuid", "name", "memory_total", "memory_used", "memory_free", "utilization", "temperature",
                     "power_usage", "power_limit", "mig_enabled", "mig_pending", "mig_instances", "session_id"],
        "properties": {
          "index": {"type": "integer"}, "node": {"type": "string"}, "uuid": {"type": ["string", "null"]}, "name": {"type": ["string", "null"]},
          "memory_total": {"type": ["integer", "null"], "description": "MiB"}, "memory_used": {"type": ["integer", "null"]}, "memory_free": {"type": ["integer", "null"]},
          "utilization": {"type": ["number", "null"]}, "temperature": {"type": ["number", "null"]},
          "power_usage": {"type": ["number", "null"], "description": "W"}, "power_limit": {"type": ["number", "null"]},
          "mig_enabled": {"type": "boolean"}, "mig_pending": {"type": "boolean"},
          "mig_instances": {"type": "array", "items": {"$ref": "#/components/schemas/MigInstance"}},
          "session_id": {"type": ["string", "null"]}}}},
      "count": {"type": "integer", "minimum": 0},
      "nodes": {"type": "integer", "description": "cluster only"},
      "source": {"type": "string", "description": "cluster only"},
      "backend": {"type": ["string", "null"]}
    }
  },
  "GpuProfiles": {
    "type": "object", "additionalProperties": false, "required": ["profiles", "count", "backend"],
    "description": "MIG profiles with room for each: per GPU on a host, per node and resource on a cluster",
    "properties": {
      "profiles": {"type": "array", "items": {"anyOf": [
        {"type": "object", "additionalProperties": false,
         "required": ["name", "profile_id", "compute_slices", "memory_slices", "memory_size", "memory_mib", "instance_count", "description", "gpus"],
         "properties": {"name": {"type": "string"}, "profile_id": {"type": "integer"}, "compute_slices": {"type": "integer"},
           "memory_slices": {"type": "integer"}, "memory_size": {"type": "integer", "description": "bytes"}, "memory_mib": {"type": "integer"},
           "instance_count": {"type": "integer"}, "description": {"type": "string"},
           "gpus": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["index", "uuid", "available"],
             "properties": {"index": {"type": "integer"}, "uuid": {"type": "string"}, "available": {"type": "integer"}}}}}},
        {"type": "object", "additionalProperties": false, "required": ["name", "resource", "instance_count", "nodes"],
         "properties": {"name": {"type": "string"}, "resource": {"type": "string"}, "instance_count": {"type": "integer"},
           "memory_mib": {"type": "integer"}, "compute_slices": {"type": "integer"}, "multiprocessors": {"type": "integer"},
           "nodes": {"type": "array", "items": {"type": "object", "additionalProperties": false,
             "required": ["node", "product", "allocatable", "in_use", "available"],
             "properties": {"node": {"type": "string"}, "product": {"type": ["string", "null"]}, "allocatable": {"type": "integer"},
               "in_use": {"type": "integer"}, "available": {"type": "integer"}}}}}}]}},
      "count": {"type": "integer", "minimum": 0},
      "backend": {"type": ["string", "null"]}
    }
  },
  "Readiness": {
    "type": "object", "additionalProperties": false, "required": ["status", "checks"],
    "properties": {
      "status": {"type": "string", "enum": ["ready", "not ready"]},
      "checks": {"type": "object", "additionalProperties": false, "required": ["docker", "store"],
                 "properties": {"docker": {"type": "string", "description": "ok, or what failed"}, "store": {"type": "string"}}},
      "role": {"type": "string", "enum": ["leader", "follower"], "description": "replicas only"}
    }
  },
  "GpuAvailable": {
    "type": "object", "additionalProperties": false,
    "required": ["mig_mode", "available_instances", "whole_gpus", "count", "backend"],
    "description": "free MIG instances and whole GPUs: devices on a host, free counts per node and resource on a cluster",
    "properties": {
      "mig_mode": {"type": "string", "enum": ["static", "dynamic"]},
      "available_instances": {"type": "array", "items": {"anyOf": [
        {"$ref": "#/components/schemas/MigInstance"},
        {"type": "object", "additionalProperties": false, "required": ["node", "profile", "resource", "free"],
         "properties": {"node": {"type": "string"}, "profile": {"type": "string"}, "resource": {"type": "string"}, "free": {"type": "integer"}}}]}},
      "whole_gpus": {"type": "array", "items": {"anyOf": [
        {"type": "object", "additionalProperties": false, "required": ["index", "uuid", "name"],
         "properties": {"index": {"type": "integer"}, "uuid": {"type": "string"}, "name": {"type": "string"}}},
        {"type": "object", "additionalProperties": false, "required": ["node", "name", "resource", "free"],
         "properties": {"node": {"type": "string"}, "name": {"type": ["string", "null"]}, "resource": {"type": "string"}, "free": {"type": "integer"}}}]}},
      "creatable": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "dynamic MIG: instances that could be made, per profile"},
      "count": {"type": "integer", "minimum": 0},
      "fits_now": {"type": "array", "description": "cluster only"},
      "nodes_not_taking_sessions": {"type": "array", "description": "cluster only", "items": {"type": "object"}},
      "in_use_counts": {"type": "string", "description": "cluster only"},
      "backend": {"type": ["string", "null"]}
    }
  }
},
"routes": {
  "GET /healthz": {"operationId": "healthz", "summary": "Liveness: the process answers", "tag": "Health", "public": true,
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["status", "service"],
      "properties": {"status": {"const": "healthy"}, "service": {"type": "string"}}}}}},
  "GET /readyz": {"operationId": "readyz", "summary": "Readiness: Docker and the store answer", "tag": "Health", "public": true,
    "responses": {
      "200": {"description": "Ready", "json": {"$ref": "#/components/schemas/Readiness"}},
      "503": {"description": "Not ready (same body)", "json": {"$ref": "#/components/schemas/Readiness"}}}},
  "POST /sessions": {"operationId": "createSession", "summary": "Create a session (a container reached over SSH)", "tag": "Sessions",
    "body": {"$ref": "#/components/schemas/SessionCreate"},
    "responses": {"201": {"description": "Created", "json": {"$ref": "#/components/schemas/SessionCreated"}}},
    "errors": [400, 402, 409, 503, 507]},
  "GET /sessions": {"operationId": "listSessions", "summary": "List sessions, newest first", "tag": "Sessions",
    "parameters": [
      {"name": "user_id", "in": "query", "schema": {"type": "string"}},
      {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["pending", "starting", "running", "stopping", "ended", "failed", "active"]},
       "description": "active: pending to stopping"},
      {"$ref": "#/components/parameters/Limit"}, {"$ref": "#/components/parameters/Cursor"},
      {"$ref": "#/components/parameters/From"}, {"$ref": "#/components/parameters/To"}],
    "responses": {"200": {"json": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}}}},
    "errors": [400]},
  "DELETE /sessions": {"operationId": "deleteAllSessions", "summary": "Stop every active session", "tag": "Sessions",
    "parameters": [{"name": "confirm", "in": "query", "required": true, "schema": {"const": "true"}}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["deleted", "count"],
      "properties": {"deleted": {"type": "array", "items": {"type": "string"}}, "count": {"type": "integer", "minimum": 0}}}}},
    "errors": [400]},
  "GET /sessions/stats": {"operationId": "sessionStats", "summary": "Session counts by status, and ports", "tag": "Sessions",
    "responses": {"200": {"json": {"$ref": "#/components/schemas/SessionStats"}}}},
  "GET /sessions/{id}": {"operationId": "getSession", "summary": "One session", "tag": "Sessions",
    "parameters": [{"$ref": "#/components/parameters/SessionId"}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Session"}}}, "errors": [400, 404]},
  "DELETE /sessions/{id}": {"operationId": "deleteSession", "summary": "Stop a session", "tag": "Sessions",
    "parameters": [{"$ref": "#/components/parameters/SessionId"}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Session"}}}, "errors": [400, 404, 409]},
  "PATCH /sessions/{id}": {"operationId": "patchSession", "summary": "Set a session's time to live from now", "tag": "Sessions",
    "parameters": [{"$ref": "#/components/parameters/SessionId"}],
    "body": {"$ref": "#/components/schemas/TtlPatch"},
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Session"}}}, "errors": [400, 404, 409]},
  "GET /sessions/{id}/connections": {"operationId": "listSessionConnections", "summary": "SSH connections of a session", "tag": "Sessions",
    "parameters": [{"$ref": "#/components/parameters/SessionId"}, {"$ref": "#/components/parameters/Limit"}, {"$ref": "#/components/parameters/Cursor"},
      {"$ref": "#/components/parameters/From"}, {"$ref": "#/components/parameters/To"}],
    "responses": {"200": {"json": {"type": "array", "items": {"$ref": "#/components/schemas/Connection"}}}}, "errors": [400, 404]},
  "GET /sessions/{id}/events": {"operationId": "listSessionEvents", "summary": "Lifecycle events of a session", "tag": "Sessions",
    "parameters": [{"$ref": "#/components/parameters/SessionId"}, {"$ref": "#/components/parameters/Limit"}, {"$ref": "#/components/parameters/Cursor"},
      {"$ref": "#/components/parameters/From"}, {"$ref": "#/components/parameters/To"}],
    "responses": {"200": {"json": {"type": "array", "items": {"$ref": "#/components/schemas/SessionEvent"}}}}, "errors": [400, 404]},
  "PUT /users/{user}/keys": {"operationId": "addUserKey", "summary": "Add an SSH public key to a user", "tag": "Users",
    "parameters": [{"$ref": "#/components/parameters/User"}],
    "body": {"type": "object", "additionalProperties": false, "required": ["public_key"],
             "properties": {"public_key": {"type": "string", "description": "one OpenSSH public key line"}}},
    "responses": {"200": {"json": {"$ref": "#/components/schemas/UserKey"}}}, "errors": [400, 409]},
  "GET /users/{user}/keys": {"operationId": "listUserKeys", "summary": "A user's SSH public keys", "tag": "Users",
    "parameters": [{"$ref": "#/components/parameters/User"}, {"$ref": "#/components/parameters/Limit"}, {"$ref": "#/components/parameters/Cursor"},
      {"$ref": "#/components/parameters/From"}, {"$ref": "#/components/parameters/To"}],
    "responses": {"200": {"json": {"type": "array", "items": {"$ref": "#/components/schemas/UserKey"}}}}, "errors": [400]},
  "DELETE /users/{user}/keys/{key_id}": {"operationId": "deleteUserKey", "summary": "Remove one of a user's SSH keys", "tag": "Users",
    "parameters": [{"$ref": "#/components/parameters/User"}, {"name": "key_id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["deleted"],
      "properties": {"deleted": {"type": "integer"}}}}}, "errors": [400, 404]},
  "GET /gpus": {"operationId": "listGpus", "summary": "GPU inventory with MIG instances and holders", "tag": "GPUs",
    "responses": {"200": {"json": {"$ref": "#/components/schemas/GpuInventory"}}}},
  "GET /gpus/profiles": {"operationId": "listGpuProfiles", "summary": "MIG profiles and room for each", "tag": "GPUs",
    "responses": {"200": {"json": {"$ref": "#/components/schemas/GpuProfiles"}}}},
  "GET /gpus/available": {"operationId": "listAvailableGpus", "summary": "Free MIG instances and whole GPUs", "tag": "GPUs",
    "responses": {"200": {"json": {"$ref": "#/components/schemas/GpuAvailable"}}}},
  "POST /login": {"operationId": "login", "summary": "Browser login: trade a token for a session cookie", "tag": "Auth", "public": true, "role": "viewer",
    "body": {"type": "object", "additionalProperties": false, "required": ["token"], "properties": {"token": {"type": "string"}}},
    "responses": {"204": {"description": "Logged in: Set-Cookie sandman_session (HttpOnly, SameSite=Strict)"}},
    "errors": [400, 401, 429]},
  "POST /logout": {"operationId": "logout", "summary": "End the browser login", "tag": "Auth", "public": true, "role": "viewer",
    "responses": {"204": {"description": "Logged out: the cookie is cleared"}}},
  "GET /whoami": {"operationId": "whoami", "summary": "The caller's role and how it authenticated", "tag": "Auth",
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["role", "via"],
      "properties": {"role": {"type": "string", "enum": ["admin", "viewer"]}, "via": {"type": "string", "enum": ["token", "cookie", "none"]}}}}}},
  "GET /openapi.json": {"operationId": "getOpenApi", "summary": "This document (OpenAPI 3.1)", "tag": "Health",
    "responses": {"200": {"json": {"type": "object", "required": ["openapi", "info", "paths"]}}}},
  "GET /api/v1/openapi.json": {"operationId": "getOpenApiV1", "summary": "This document (OpenAPI 3.1), under the API prefix", "tag": "Health",
    "responses": {"200": {"json": {"type": "object", "required": ["openapi", "info", "paths"]}}}}
}
})json";

int64_t steadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ApiServer::ApiServer(ApiOptions options, SessionManager& sessions, UserKeys& user_keys, Runtime& runtime,
                     Store& store)
    : options_(std::move(options)),
      sessions_(sessions),
      user_keys_(user_keys),
      runtime_(runtime),
      store_(store),
      logins_(options_.login),
      listener_(withInlineRoutes(options_.limits), [this](ApiRequest& req, ApiResponse& res) { handle(req, res); },
          [this](int status, const std::string& message, ApiResponse& res) { reject(status, message, res); }) {
  router_.get("/healthz", [](const ApiRequest&, ApiResponse& res) {
    sendJson(res, 200, {{"status", "healthy"}, {"service", "gpu-ssh-gateway-orchestrator"}});
  });
  router_.get("/readyz", [this](const ApiRequest&, ApiResponse& res) { readyz(res); });
  for (const char* prefix : kApiPrefixes) registerRoutes(prefix);
  // The document describes the whole table, so it is built on first use:
  // every module has added its routes by then (they are added before bind).
  auto openapi = [this](const ApiRequest&, ApiResponse& res) {
    std::call_once(openapi_once_, [this] { openapi_text_ = buildOpenApi(router_, kSandmanVersion).dump() + "\n"; });
    res.status = 200;
    res.set_content(openapi_text_, "application/json");
  };
  router_.get("/openapi.json", openapi);
  router_.get("/api/v1/openapi.json", openapi);
  router_.document(kServerDocs);
}

ApiServer::~ApiServer() = default;

void ApiServer::addRoutes(RouteModule& module) { module.registerRoutes(router_); }

void ApiServer::handle(ApiRequest& req, ApiResponse& res) {
  const auto start = std::chrono::steady_clock::now();
  if (sameOrigin(req, res) && authorized(req, res) && permitted(req, res) && jsonBody(req, res) &&
      writable(req, res)) {
    switch (router_.dispatch(req, res)) {
      case Router::Outcome::kHandled: break;
      case Router::Outcome::kNoRoute:
        sendError(res, notFound("no route " + req.method + " " + printableExcerpt(req.path, 128)));
        break;
      case Router::Outcome::kWrongMethod:
        sendJson(res, 405, {{"error", req.method + " is not allowed on " + printableExcerpt(req.path, 128) +
                                          "; allowed: " + res.headers.back().second},
                            {"code", "invalid"}});
        break;
    }
  }
  request_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  // Probes and scrapes arrive every few seconds for ever; only their failures are news.
  const bool routine = res.status < 300 && (req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics");
  if (!routine) {
    logInfo("http", {{"method", printableExcerpt(req.method, 16)}, {"path", printableExcerpt(req.path, 128)},
                     {"status", std::to_string(res.status)}, {"remote", req.remote_addr}});
  }
}

// Answers the listener gives itself (malformed, too large, too slow). A flood
// of them is logged once a second at most, so garbage cannot fill the log.
void ApiServer::reject(int status, const std::string& message, ApiResponse& res) {
  sendJson(res, status, {{"error", message}, {"code", rejectionCode(status)}});
  const int64_t now = steadyMillis();
  int64_t last = last_reject_log_ms_.load();
  if (now - last >= 1000 && last_reject_log_ms_.compare_exchange_strong(last, now)) {
    logInfo("http_rejected", {{"status", std::to_string(status)}, {"error", printableExcerpt(message, 160)},
                              {"rejected_total", std::to_string(listener_.stats().rejected_requests)}});
  }
}

// Browsers send Origin on cross-site requests; a page elsewhere must not
// drive the API with a user's cookies or a --auth none daemon. The dashboard
// is served from the API's own origin, so its Origin names our Host.
bool ApiServer::sameOrigin(const ApiRequest& req, ApiResponse& res) const {
  if (!req.has_header("origin")) return true;
  const std::string origin = req.get_header_value("origin");
  const size_t scheme_end = origin.find("://");
  if (scheme_end != std::string::npos && origin.substr(scheme_end + 3) == req.get_header_value("host")) return true;
  sendJson(res, 403, {{"error", "cross-origin requests are refused (Origin " + printableExcerpt(origin, 80) +
                                    " is not this API's own); call the API from its own origin or without a browser"},
                      {"code", "forbidden"}});
  return false;
}

// Bodies are JSON, and only a JSON content type (which a cross-site form
// cannot send without a preflight) is accepted with one.
bool ApiServer::jsonBody(const ApiRequest& req, ApiResponse& res) const {
  if (req.body.empty()) return true;
  std::string type = req.get_header_value("content-type");
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type == "application/json") return true;
  sendJson(res, 415, {{"error", "request bodies must be JSON: send 'Content-Type: application/json' (got '" +
                                    printableExcerpt(type, 60) + "')"},
                      {"code", "invalid"}});
  return false;
}

// Only the leader mutates. A follower answers every write with a retryable
// 503 naming the leader, rather than relaying it: a relay would need to carry
// the caller's token and TLS to a peer, and a client that retries the
// Service lands on the leader within a few tries anyway.
bool ApiServer::writable(const ApiRequest& req, ApiResponse& res) const {
  if (!options_.not_leader || req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS") return true;
  if (req.path.rfind("/api/", 0) != 0) return true;
  auto refusal = options_.not_leader();
  if (!refusal) return true;
  res.set_header("Retry-After", "2");
  sendJson(res, 503, {{"error", *refusal}, {"code", "not_leader"}});
  return false;
}

namespace {

constexpr const char* kSessionCookie = "sandman_session";

bool isLoginPath(const std::string& path) {
  return path == "/api/v1/login" || path == "/api/v1/logout" || path == "/login" || path == "/logout";
}

bool isRead(const std::string& method) { return method == "GET" || method == "HEAD" || method == "OPTIONS"; }

}  // namespace

// Who is calling: the admin token, the viewer token, or a browser login's
// cookie (a token in the URL is never looked at: it would end up in logs
// and browser history).
bool ApiServer::authorized(ApiRequest& req, ApiResponse& res) const {
  req.role.clear();
  req.via.clear();
  const std::string header = req.get_header_value("authorization");
  if (options_.token.empty()) {
    req.role = "admin";
    req.via = "none";
  } else if (bearerMatches(header, options_.token)) {
    req.role = "admin";
    req.via = "token";
  } else if (!options_.viewer_token.empty() && bearerMatches(header, options_.viewer_token)) {
    req.role = "viewer";
    req.via = "token";
  } else if (header.empty()) {
    const std::string cookie = cookieValue(req.get_header_value("cookie"), kSessionCookie);
    if (!cookie.empty()) {
      if (auto role = logins_.lookup(cookie)) {
        req.role = toString(*role);
        req.via = "cookie";
      }
    }
  }
  req.authenticated = !req.role.empty();
  if (req.authenticated || req.path == "/healthz" || req.path == "/readyz") return true;
  if (isLoginPath(req.path)) return true;
  if (!options_.metrics_auth && req.path == "/metrics") return true;
  if (options_.is_public && req.method == "GET" && options_.is_public(req.path)) return true;
  res.set_header("WWW-Authenticate", "Bearer");
  sendJson(res, 401, errorJson({ErrorKind::kUnauthorized,
                                "missing or wrong API token: send 'Authorization: Bearer <token>' "
                                "with the token from the daemon's --token-file, or log in (POST /api/v1/login)"}));
  return false;
}

// A viewer reads only. A write carried by a cookie must also carry
// X-Sandman-CSRF: a cross-site form cannot set a header, and a cross-site
// script that could would be stopped by CORS before sending it.
bool ApiServer::permitted(const ApiRequest& req, ApiResponse& res) const {
  if (isRead(req.method) || isLoginPath(req.path)) return true;
  if (req.role == "viewer") {
    sendJson(res, 403, {{"error", "the viewer role may only read (GET); " + req.method + " " +
                                      printableExcerpt(req.path, 128) + " needs the admin token"},
                        {"code", "forbidden"}});
    return false;
  }
  if (req.via == "cookie" && req.get_header_value("x-sandman-csrf") != "1") {
    sendJson(res, 403, {{"error", "a write authenticated by the login cookie must carry the header 'X-Sandman-CSRF: 1'"},
                        {"code", "forbidden"}});
    return false;
  }
  return true;
}

std::string ApiServer::cookieAttributes() const {
  return std::string("; HttpOnly; SameSite=Strict; Path=/") + (tls_ ? "; Secure" : "");
}

void ApiServer::login(const ApiRequest& req, ApiResponse& res) {
  if (!logins_.allowed(req.remote_addr)) {
    res.set_header("Retry-After", std::to_string(logins_.retryAfter(req.remote_addr).count()));
    return sendJson(res, 429, {{"error", "too many failed logins from this address; wait and try again"},
                               {"code", "rate_limited"}});
  }
  json body = json::parse(req.body, nullptr, false);
  if (!body.is_object() || !body.contains("token") || !body["token"].is_string() || body.size() != 1) {
    return sendError(res, invalid("a login is {\"token\": \"<the API or viewer token>\"}"));
  }
  const std::string token = body["token"].get<std::string>();
  std::optional<Role> role;
  // Both compared in full every time: the answer's timing tells nothing.
  const bool admin = secretEquals(token, options_.token);
  const bool viewer = !options_.viewer_token.empty() && secretEquals(token, options_.viewer_token);
  if (options_.token.empty() || admin) {
    role = Role::kAdmin;
  } else if (viewer) {
    role = Role::kViewer;
  }
  if (!role) {
    logins_.failed(req.remote_addr);
    return sendError(res, {ErrorKind::kUnauthorized, "wrong token"});
  }
  const std::string cookie = logins_.create(*role);
  res.set_header("Set-Cookie", std::string(kSessionCookie) + "=" + cookie + cookieAttributes());
  res.set_header("Cache-Control", "no-store");
  res.status = 204;
}

void ApiServer::logout(const ApiRequest& req, ApiResponse& res) {
  const std::string cookie = cookieValue(req.get_header_value("cookie"), kSessionCookie);
  if (!cookie.empty()) logins_.remove(cookie);
  res.set_header("Set-Cookie", std::string(kSessionCookie) + "=; Max-Age=0" + cookieAttributes());
  res.status = 204;
}

void ApiServer::whoami(const ApiRequest& req, ApiResponse& res) {
  sendJson(res, 200, {{"role", req.role}, {"via", req.via}});
}

Result<nlohmann::json> ApiServer::internalGet(const std::string& target) {
  ApiRequest req;
  req.method = "GET";
  req.target = target;
  if (auto st = parseTarget(target, &req.path, &req.params); !st.ok()) return st.error();
  req.authenticated = true;
  req.role = "admin";
  req.via = "token";
  req.remote_addr = "internal";
  ApiResponse res;
  if (router_.dispatch(req, res) != Router::Outcome::kHandled) return notFound("no route " + target);
  json body = json::parse(res.body, nullptr, false);
  if (res.status != 200 || body.is_discarded()) return unavailable("GET " + target + " answered " + std::to_string(res.status));
  return body;
}

void ApiServer::registerRoutes(const std::string& p) {
  using Req = const ApiRequest&;
  using Res = ApiResponse&;
  router_.post(p + "/sessions", [this](Req q, Res r) { createSession(q, r); });
  router_.get(p + "/sessions", [this](Req q, Res r) { listSessions(q, r); });
  router_.get(p + "/sessions/stats", [this](Req, Res r) { sessionStats(r); });
  router_.get(p + "/sessions/{id}", [this](Req q, Res r) { getSession(q, r); });
  router_.del(p + "/sessions/{id}", [this](Req q, Res r) { deleteSession(q, r); });
  router_.del(p + "/sessions", [this](Req q, Res r) { deleteAllSessions(q, r); });
  router_.patch(p + "/sessions/{id}", [this](Req q, Res r) { patchSession(q, r); });
  router_.get(p + "/sessions/{id}/connections", [this](Req q, Res r) { sessionConnections(q, r); });
  router_.get(p + "/sessions/{id}/events", [this](Req q, Res r) { sessionEvents(q, r); });
  router_.put(p + "/users/{user}/keys", [this](Req q, Res r) { putUserKey(q, r); });
  router_.get(p + "/users/{user}/keys", [this](Req q, Res r) { listUserKeys(q, r); });
  router_.del(p + "/users/{user}/keys/{key_id}", [this](Req q, Res r) { deleteUserKey(q, r); });
  router_.get(p + "/gpus", [this](Req, Res r) { gpus(r, GpuView::kInventory); });
  router_.get(p + "/gpus/profiles", [this](Req, Res r) { gpus(r, GpuView::kProfiles); });
  router_.get(p + "/gpus/available", [this](Req, Res r) { gpus(r, GpuView::kAvailable); });
  router_.post(p + "/login", [this](Req q, Res r) { login(q, r); });
  router_.post(p + "/logout", [this](Req q, Res r) { logout(q, r); });
  router_.get(p + "/whoami", [this](Req q, Res r) { whoami(q, r); });
}

void ApiServer::createSession(const ApiRequest& req, ApiResponse& res) {
  auto parsed = parseCreateRequest(req.body);
  if (!parsed.ok()) return sendError(res, parsed.error());
  auto created = sessions_.create(parsed.value());
  if (!created.ok()) return sendError(res, created.error());
  json j = sessionToJson(created->session, options_.view);
  if (created->ssh_private_key) j["ssh_private_key"] = *created->ssh_private_key;
  if (created->allocation) {
    const NeedChoice& c = *created->allocation;
    j["allocation"] = {{"device", c.device},
                       {"profile", c.profile},
                       {"usd_per_hour", std::round(c.usd_per_hour * 1e4) / 1e4},
                       {"why", c.why}};
  }
  sendJson(res, 201, j);
}

void ApiServer::listSessions(const ApiRequest& req, ApiResponse& res) {
  SessionFilter filter;
  if (Status st = parseSessionFilter(req, &filter); !st.ok()) return sendError(res, st.error());
  const std::string listing =
      "sessions\nuser_id=" + req.get_param_value("user_id") + "\nstatus=" + req.get_param_value("status");
  auto q = parseListQuery(req, cursors_, listing);
  if (!q.ok()) return sendError(res, q.error());
  if (q->after) {
    auto key = parseSessionKeyText(*q->after);
    if (!key.ok()) return sendError(res, key.error());
    filter.after = SessionKey{fromUnixMillis(key->first), key->second};
  }
  filter.from = q->from;
  filter.to = q->to;
  filter.limit = q->limit + 1;  // one more: is there a next page?
  auto sessions = sessions_.list(filter);
  if (!sessions.ok()) return sendError(res, sessions.error());
  std::vector<Session>& rows = sessions.value();
  if (rows.size() > q->limit) {
    rows.resize(q->limit);
    const Session& last = rows.back();
    setNextPage(req, nextCursor(req, cursors_, listing, sessionKeyText(toUnixMillis(last.created_at), last.id)),
                res);
  }
  // Written straight to text: a DOM of every row cost more than the query.
  std::string body = "[";
  body.reserve(rows.size() * 1024);
  for (const auto& s : rows) {
    if (body.size() > 1) body += ',';
    appendSessionJson(body, s, options_.view);
  }
  body += "]\n";
  res.status = 200;
  res.set_content(std::move(body), "application/json");
}

// Counted by the store (a table kept in step by triggers), never by reading
// the sessions: the cost does not grow with history.
void ApiServer::sessionStats(ApiResponse& res) {
  auto counts = sessions_.counts();
  if (!counts.ok()) return sendError(res, counts.error());
  json by_status = json::object();
  int64_t total = 0;
  int64_t active = 0;
  for (auto name : {"pending", "starting", "running", "stopping", "ended", "failed"}) {
    auto it = counts->by_status.find(name);
    const int64_t n = it == counts->by_status.end() ? 0 : it->second;
    by_status[name] = n;
    total += n;
    if (isActive(*parseSessionStatus(name))) active += n;
  }
  const PortRange& range = sessions_.settings().ports;
  sendJson(res, 200, {{"total", total}, {"active", active}, {"by_status", by_status},
                      {"active_users", counts->active_users}, {"ports_in_use", active},
                      {"ports_free", static_cast<int64_t>(range.size()) - active},
                      {"port_range", {range.start, range.end}}});
}

void ApiServer::getSession(const ApiRequest& req, ApiResponse& res) {
  const std::string id = req.matches[1];
  if (!checkSessionId(id, res)) return;
  auto s = sessions_.get(id);
  if (!s.ok()) return sendError(res, s.error());
  sendJson(res, 200, sessionToJson(s.value(), options_.view));
}

void ApiServer::deleteSession(const ApiRequest& req, ApiResponse& res) {
  const std::string id = req.matches[1];
  if (!checkSessionId(id, res)) return;
  auto s = sessions_.stop(id, "deleted");
  if (!s.ok()) return sendError(res, s.error());
  sendJson(res, 200, sessionToJson(s.value(), options_.view));
}

void ApiServer::deleteAllSessions(const ApiRequest& req, ApiResponse& res) {
  if (req.get_param_value("confirm") != "true") {
    return sendError(res, invalid("deleting every session needs ?confirm=true"));
  }
  auto stopped = sessions_.stopAll("deleted");
  if (!stopped.ok()) return sendError(res, stopped.error());
  json ids = json::array();
  for (const auto& s : stopped.value()) ids.push_back(s.id);
  sendJson(res, 200, {{"deleted", ids}, {"count", ids.size()}});
}

void ApiServer::patchSession(const ApiRequest& req, ApiResponse& res) {
  const std::string id = req.matches[1];
  if (!checkSessionId(id, res)) return;
  auto ttl = parseTtlPatch(req.body);
  if (!ttl.ok()) return sendError(res, ttl.error());
  auto s = sessions_.setTtl(id, ttl.value());
  if (!s.ok()) return sendError(res, s.error());
  sendJson(res, 200, sessionToJson(s.value(), options_.view));
}

void ApiServer::gpus(ApiResponse& res, GpuView view) {
  if (options_.cluster_gpus) {
    return sendJson(res, 200, options_.cluster_gpus(view == GpuView::kInventory  ? "inventory"
                                                    : view == GpuView::kProfiles ? "profiles"
                                                                                 : "available"));
  }
  const GpuLeases& leases = sessions_.gpus();
  auto gpus = leases.snapshot();
  if (!gpus.ok()) return sendError(res, gpus.error());
  // Only sessions that can hold a slice, not history.
  auto active = sessions_.active();
  if (!active.ok()) return sendError(res, active.error());
  const std::vector<Session>& live = active.value();
  json body;
  switch (view) {
    case GpuView::kInventory: body = gpusJson(gpus.value(), live); break;
    case GpuView::kProfiles: body = profilesJson(gpus.value(), live); break;
    case GpuView::kAvailable: body = availableJson(gpus.value(), live, leases.settings().mig_mode); break;
  }
  body["backend"] = leases.enabled() ? json(leases.backend()->description()) : json(nullptr);
  sendJson(res, 200, body);
}

void ApiServer::sessionConnections(const ApiRequest& req, ApiResponse& res) {
  const std::string id = req.matches[1];
  if (!checkSessionId(id, res)) return;
  const std::string listing = "connections\n" + id;
  size_t limit = 0;
  auto page = rowPage(req, cursors_, listing, &limit);
  if (!page.ok()) return sendError(res, page.error());
  sendRowPage(req, cursors_, listing, limit, sessions_.connections(id, page.value()), connectionJson, res);
}

void ApiServer::sessionEvents(const ApiRequest& req, ApiResponse& res) {
  const std::string id = req.matches[1];
  if (!checkSessionId(id, res)) return;
  const std::string listing = "events\n" + id;
  size_t limit = 0;
  auto page = rowPage(req, cursors_, listing, &limit);
  if (!page.ok()) return sendError(res, page.error());
  sendRowPage(req, cursors_, listing, limit, sessions_.events(id, page.value()), sessionEventJson, res);
}

void ApiServer::putUserKey(const ApiRequest& req, ApiResponse& res) {
  auto line = parseUserKeyRequest(req.body);
  if (!line.ok()) return sendError(res, line.error());
  auto key = user_keys_.add(req.matches[1], line.value());
  if (!key.ok()) return sendError(res, key.error());
  sendJson(res, 200, userKeyJson(key.value()));
}

void ApiServer::listUserKeys(const ApiRequest& req, ApiResponse& res) {
  const std::string user = req.matches[1];
  const std::string listing = "keys\n" + user;
  size_t limit = 0;
  auto page = rowPage(req, cursors_, listing, &limit);
  if (!page.ok()) return sendError(res, page.error());
  sendRowPage(req, cursors_, listing, limit, user_keys_.list(user, page.value()), userKeyJson, res);
}

void ApiServer::deleteUserKey(const ApiRequest& req, ApiResponse& res) {
  const std::string& raw = req.matches[2];
  int64_t key_id = 0;
  auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), key_id);
  if (raw.empty() || raw.size() > 18 || ec != std::errc() || end != raw.data() + raw.size() || key_id < 0) {
    return sendError(res, invalid("key id must be a whole number: " + printableExcerpt(raw, 32)));
  }
  auto st = user_keys_.remove(req.matches[1], key_id);
  if (!st.ok()) return sendError(res, st.error());
  sendJson(res, 200, {{"deleted", key_id}});
}

void ApiServer::readyz(ApiResponse& res) {
  json checks;
  auto docker = runtime_.ping();
  auto store = store_.ping();
  checks["docker"] = docker.ok() ? "ok" : docker.error().message;
  checks["store"] = store.ok() ? "ok" : store.error().message;
  bool ready = docker.ok() && store.ok();
  json body = {{"status", ready ? "ready" : "not ready"}, {"checks", checks}};
  if (options_.role) body["role"] = options_.role();  // a follower is ready too: it serves reads
  sendJson(res, ready ? 200 : 503, body);
}

Status ApiServer::bind(const std::string& host, int port) {
  // Every module has added its routes by now: a gap in the published
  // document is said at start-up, not discovered by a client.
  for (const auto& route : undocumentedRoutes(router_)) logWarn("openapi: a route has no documentation", {{"route", route}});
  for (const auto& key : router_.staleDocs()) logWarn("openapi: documentation names no route", {{"doc", key}});
  return listener_.bind(host, port);
}

void ApiServer::serve() { listener_.serve(); }

void ApiServer::stop() { listener_.stop(); }

}  // namespace sandman
