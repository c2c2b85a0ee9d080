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
