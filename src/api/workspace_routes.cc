#include "api/workspace_routes.h"

#include "common/time_format.h"
#include "core/validation.h"

namespace sandman {
namespace {

using nlohmann::json;

json quotaJson(const DiskPolicyView& p) {
  json q = {{"bytes", p.quota_bytes > 0 ? json(p.quota_bytes) : json(nullptr)}, {"enforced", p.quota_enforced}};
  if (!p.quota_note.empty()) q["note"] = p.quota_note;
  return q;
}

// OpenAPI operations of the routes below (api/openapi.h).
constexpr std::string_view kDocs = R"json({
"schemas": {
  "Workspace": {
    "type": "object", "additionalProperties": false,
    "required": ["user_id", "path", "measured", "used_bytes", "quota_bytes", "quota_enforced", "over_quota"],
    "properties": {
      "user_id": {"type": "string"}, "path": {"type": "string"}, "measured": {"type": "boolean"},
      "used_bytes": {"type": ["integer", "null"]}, "quota_bytes": {"type": ["integer", "null"]},
      "quota_enforced": {"type": "boolean"}, "over_quota": {"type": "boolean"},
      "measured_at": {"$ref": "#/components/schemas/Timestamp"},
      "method": {"type": "string", "description": "how the usage was measured"}
    }
  }
},
"routes": {
  "GET /workspaces": {"operationId": "listWorkspaces", "summary": "Every user's workspace usage, the quota and free disk", "tag": "Users",
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false,
      "required": ["workspaces", "count", "over_quota", "quota", "min_free_disk", "filesystems"],
      "properties": {
        "workspaces": {"type": "array", "items": {"$ref": "#/components/schemas/Workspace"}},
        "count": {"type": "integer", "minimum": 0},
        "over_quota": {"type": "integer", "minimum": 0},
        "quota": {"type": "object", "additionalProperties": false, "required": ["bytes", "enforced"],
                  "properties": {"bytes": {"type": ["integer", "null"]}, "enforced": {"type": "boolean"}, "note": {"type": "string"}}},
        "min_free_disk": {"type": ["integer", "number", "string", "null"]},
        "filesystems": {"type": "array", "items": {"type": "object", "additionalProperties": false,
          "required": ["name", "path", "size_bytes", "avail_bytes", "avail_percent"],
          "properties": {"name": {"type": "string"}, "path": {"type": "string"}, "size_bytes": {"type": "integer"},
                         "avail_bytes": {"type": "integer"}, "avail_percent": {"type": "number"}}}}
      }}}}},
  "GET /users/{user}/workspace": {"operationId": "getUserWorkspace", "summary": "One user's workspace usage", "tag": "Users",
    "parameters": [{"$ref": "#/components/parameters/User"}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/Workspace"}}}, "errors": [400, 404]}
}
})json";

}  // namespace

json WorkspaceRoutes::workspaceJson(const WorkspaceUsage& u, const std::string& root, const DiskPolicyView& p) {
  json j = {{"user_id", u.user_id},
            {"path", root + "/" + u.user_id},
            {"measured", u.measured},
            {"used_bytes", u.measured ? json(u.used_bytes) : json(nullptr)},
            {"quota_bytes", p.quota_bytes > 0 ? json(p.quota_bytes) : json(nullptr)},
            {"quota_enforced", p.quota_enforced},
            {"over_quota", u.overQuota(p.quota_bytes)}};
  if (u.measured) {
    j["measured_at"] = formatRfc3339(u.measured_at);
    j["method"] = u.method;
  }
  return j;
}

void WorkspaceRoutes::registerRoutes(Router& router) {
  for (const char* prefix : kApiPrefixes) {
    const std::string p = prefix;
    router.get(p + "/workspaces", [this](const ApiRequest&, ApiResponse& res) { list(res); });
    router.get(p + "/users/{user}/workspace", [this](const ApiRequest& req, ApiResponse& res) { one(req, res); });
  }
  router.document(kDocs);
}

void WorkspaceRoutes::list(ApiResponse& res) {
  const std::string& root = monitor_.options().root;
  json arr = json::array();
  int over = 0;
  for (const auto& u : monitor_.all()) {
    if (u.overQuota(policy_.quota_bytes)) ++over;
    arr.push_back(workspaceJson(u, root, policy_));
  }
  json fs = json::array();
  for (const auto& f : disk_.read().filesystems) {
    fs.push_back({{"name", f.name},
                  {"path", f.path},
                  {"size_bytes", f.size_bytes},
                  {"avail_bytes", f.avail_bytes},
                  {"avail_percent", f.size_bytes == 0 ? 0.0
                                                       : 100.0 * static_cast<double>(f.avail_bytes) /
                                                             static_cast<double>(f.size_bytes)}});
  }
  sendJson(res, 200,
           {{"workspaces", arr},
            {"count", arr.size()},
            {"over_quota", over},
            {"quota", quotaJson(policy_)},
            {"min_free_disk", policy_.min_free_disk},
            {"filesystems", fs}});
}

void WorkspaceRoutes::one(const ApiRequest& req, ApiResponse& res) {
  const std::string& user = req.matches[1];
  if (auto st = validateUserId(user); !st.ok()) return sendError(res, st.error());
  auto u = monitor_.get(user);
  if (!u) return sendError(res, notFound("no workspace for user " + user + " (made by their first session; the usage monitor lists it within one --workspace-usage-interval)"));
  sendJson(res, 200, workspaceJson(*u, monitor_.options().root, policy_));
}

}  // namespace sandman
