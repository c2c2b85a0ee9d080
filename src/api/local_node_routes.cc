#include "api/local_node_routes.h"

#include <charconv>
#include <map>

#include "api/node_listing.h"
#include "common/time_format.h"
#include "common/utf8.h"
#include "model/session.h"

namespace sandman {
namespace {

using nlohmann::json;

json nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

std::string statusSentence(const NodeMeta& m) {
  std::string s = "status " + m.status;
  if (!m.status_reason.empty()) s += " (" + m.status_reason + ")";
  return s;
}

}  // namespace

NodeMeta defaultNodeMeta(const std::string& name, const std::string& cluster) {
  NodeMeta m;
  m.name = name;
  m.cluster = cluster;
  return m;
}

void addNodeMetaJson(json& out, const NodeMeta& m, bool stored) {
  out["cluster"] = m.cluster;
  out["description"] = m.description;
  out["labels"] = m.labels;
  out["status"] = m.status;
  out["status_reason"] = nullable(m.status_reason);
  out["updated_at"] = stored ? json(formatRfc3339(m.updated_at)) : json(nullptr);
  out["updated_by"] = nullable(m.updated_by);
}

Error nodeRefusal(const NodeMeta& m) {
  std::string msg = "node " + m.name + (m.status == "drained" ? " is drained" : " is in " + m.status);
  if (!m.status_reason.empty()) msg += " (" + m.status_reason + ")";
  if (!m.updated_by.empty()) msg += ", set by " + m.updated_by;
  msg += ": it takes no new sessions; running ones continue. PATCH /api/v1/gpu-nodes/" + m.name +
         "/status {\"status\":\"active\"} reopens it";
  return conflict(msg);
}

Result<NodeMeta> LocalNodeRoutes::meta(bool* stored) {
  auto m = meta_.get(host_);
  if (!m.ok()) return m.error();
  *stored = m->has_value();
  return m->has_value() ? **m : defaultNodeMeta(host_, "local");
}

Status LocalNodeRoutes::takesSessions() {
  bool stored = false;
  auto m = meta(&stored);
  if (!m.ok()) return m.error();
  if (nodeStatusTakesSessions(m->status)) return {};
  return nodeRefusal(m.value());
}

Result<json> LocalNodeRoutes::nodeJson(bool detail) {
  bool stored = false;
  auto m = meta(&stored);
  if (!m.ok()) return m.error();
  auto active = store_.activeSessions();
  if (!active.ok()) return active.error();
  json out = {{"id", host_}, {"name", host_}, {"backend", "docker"}};
  addNodeMetaJson(out, m.value(), stored);
  SnapshotPtr snap = sampler_.latest();
  std::map<std::string, int> models;
  int64_t gpus = 0, instances = 0, memory_mib = 0;
  json devices = json::array();
  if (snap) {
    for (const auto& g : snap->gpus) {
      ++gpus;
      ++models[g.model_name];
      memory_mib += static_cast<int64_t>(g.memory_total_mib);
      devices.push_back({{"uuid", g.uuid}, {"index", g.gpu_index}, {"model", g.model_name},
                         {"mig_enabled", g.mig_enabled}, {"memory_total_mib", g.memory_total_mib}});
    }
    instances = static_cast<int64_t>(snap->instances.size());
  }
  json sessions = json::array(), running = json::array();
  for (const auto& s : active.value()) {
    sessions.push_back(s.id);
    running.push_back({{"id", s.id}, {"user_id", s.user_id}, {"status", toString(s.status)},
                       {"expires_at", formatRfc3339(s.expires_at)},
                       {"gpu_uuid", s.gpu_uuid ? json(*s.gpu_uuid) : json(nullptr)}});
  }
  const bool takes = nodeStatusTakesSessions(m->status);
  out["takes_sessions"] = takes;
  out["refusal"] = takes ? json(nullptr) : json(nodeRefusal(m.value()).message);
  out["gpu_count"] = gpus;
  out["gpu_models"] = models;
  out["gpu_memory_mib"] = memory_mib;
  out["mig_instances"] = instances;
  out["sessions"] = sessions;
  out["running_sessions"] = sessions.size();
  // drained: maintenance that also says when nothing of the old work remains.
  out["drain_complete"] = m->status == "drained" ? json(sessions.empty()) : json(nullptr);
  out["telemetry_at"] = snap ? json(formatRfc3339(snap->taken_at)) : json(nullptr);
  if (detail) {
    out["gpus"] = devices;
    out["still_running"] = running;
  }
  return out;
}

std::vector<json> LocalNodeRoutes::nodes() {
  auto n = nodeJson(false);
  if (!n.ok()) return {};
  return {std::move(n).value()};
}

void LocalNodeRoutes::registerRoutes(Router& router) {
  using Req = const ApiRequest&;
  using Res = ApiResponse&;
  for (const char* prefix : kApiPrefixes) {
    const std::string base = std::string(prefix) + "/gpu-nodes";
    router.get(base, [this](Req q, Res r) { list(q, r); });
    router.post(base, [this](Req, Res r) { refuseCreate(r); });
    router.get(base + "/recent", [this](Req q, Res r) { recent(q, r); });
    router.get(base + "/{name}", [this](Req q, Res r) { get(q, r); });
    router.put(base + "/{name}", [this](Req q, Res r) { update(q, r); });
    router.del(base + "/{name}", [this](Req q, Res r) { refuseDelete(q, r); });
    router.patch(base + "/{name}/status", [this](Req q, Res r) { setStatus(q, r); });
  }
  router.document(kGpuNodeDocs);
}

Status LocalNodeRoutes::isHost(const ApiRequest& req) const {
  const std::string& name = req.matches[1];
  if (!validNodeId(name)) return invalid("not a node name: " + printableExcerpt(name, 64));
  if (name != host_) {
    return notFound("no node " + name + ": the Docker backend has one node, the local host " + host_);
  }
  return {};
}

void LocalNodeRoutes::list(const ApiRequest& req, ApiResponse& res) {
  auto n = nodeJson(false);
  if (!n.ok()) return sendError(res, n.error());
  auto body = listNodes(req, cursors_, {std::move(n).value()}, res);
  if (!body.ok()) return sendError(res, body.error());
  json out = std::move(body).value();
  out["backend"] = "docker";
  sendJson(res, 200, out);
}

void LocalNodeRoutes::get(const ApiRequest& req, ApiResponse& res) {
  if (Status s = isHost(req); !s.ok()) return sendError(res, s.error());
  auto n = nodeJson(true);
  if (!n.ok()) return sendError(res, n.error());
  sendJson(res, 200, n.value());
}

Result<json> recentNodeChanges(const ApiRequest& req, NodeMetaStore& meta, const Clock& clock) {
  int64_t hours = 24, limit = 100;
  for (auto [name, value, max] : {std::tuple{"hours", &hours, int64_t{744}}, std::tuple{"limit", &limit, int64_t{1000}}}) {
    if (!req.has_param(name)) continue;
    const std::string v = req.get_param_value(name);
    int64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < 1 || n > max) {
      return invalid(std::string(name) + " must be a whole number from 1 to " + std::to_string(max));
    }
    *value = n;
  }
  const TimePoint since = clock.now() - std::chrono::hours(hours);
  auto events = meta.events("", since, static_cast<size_t>(limit));
  if (!events.ok()) return events.error();
  json list = json::array();
  std::map<std::string, std::string> latest;
  for (const auto& e : events.value()) {
    list.push_back({{"id", e.id}, {"node", e.node}, {"at", formatRfc3339(e.at)}, {"kind", e.kind},
                    {"detail", e.detail}, {"by", nullable(e.by)}});
    latest.emplace(e.node, formatRfc3339(e.at));
  }
  json nodes = json::array();
  for (const auto& [node, at] : latest) nodes.push_back({{"name", node}, {"changed_at", at}});
  return json{{"since", formatRfc3339(since)}, {"changes", list}, {"count", list.size()}, {"nodes", nodes}};
}

void LocalNodeRoutes::recent(const ApiRequest& req, ApiResponse& res) {
  auto body = recentNodeChanges(req, meta_, clock_);
  if (!body.ok()) return sendError(res, body.error());
  sendJson(res, 200, body.value());
}

void LocalNodeRoutes::update(const ApiRequest& req, ApiResponse& res) {
  if (Status s = isHost(req); !s.ok()) return sendError(res, s.error());
  auto edit = parseNodeMetaEdit(req.body, host_);
  if (!edit.ok()) return sendError(res, edit.error());
  bool stored = false;
  auto m = meta(&stored);
  if (!m.ok()) return sendError(res, m.error());
  NodeMeta next = m.value();
  std::vector<std::string> changed;
  if (edit->cluster && *edit->cluster != next.cluster) {
    next.cluster = *edit->cluster;
    changed.push_back("cluster " + next.cluster);
  }
  if (edit->description && *edit->description != next.description) {
    next.description = *edit->description;
    changed.push_back("description");
  }
  if (edit->labels && *edit->labels != next.labels) {
    next.labels = *edit->labels;
    changed.push_back("labels");
  }
  const TimePoint now = clock_.now();
  if (!stored) next.created_at = now;
  if (!changed.empty() || !stored) {
    next.updated_at = now;
    next.updated_by = edit->by;
    std::string detail = "metadata edited:";
    for (const auto& c : changed) detail += " " + c;
    if (changed.empty()) detail = "metadata recorded";
    if (Status s = meta_.put(next, {0, host_, now, "metadata", detail, edit->by}); !s.ok()) {
      return sendError(res, s.error());
    }
  }
  auto n = nodeJson(true);
  if (!n.ok()) return sendError(res, n.error());
  sendJson(res, 200, n.value());
}

void LocalNodeRoutes::setStatus(const ApiRequest& req, ApiResponse& res) {
  if (Status s = isHost(req); !s.ok()) return sendError(res, s.error());
  auto edit = parseNodeStatusEdit(req.body);
  if (!edit.ok()) return sendError(res, edit.error());
  bool stored = false;
  auto m = meta(&stored);
  if (!m.ok()) return sendError(res, m.error());
  NodeMeta next = m.value();
  const std::string before = statusSentence(next);
  const TimePoint now = clock_.now();
  if (!stored) next.created_at = now;
  next.status = edit->status;
  next.status_reason = edit->reason;
  next.updated_at = now;
  next.updated_by = edit->by;
  const std::string detail = before + " -> " + statusSentence(next);
  if (Status s = meta_.put(next, {0, host_, now, "status", detail, edit->by}); !s.ok()) {
    return sendError(res, s.error());
  }
  auto n = nodeJson(true);
  if (!n.ok()) return sendError(res, n.error());
  sendJson(res, 200, n.value());
}

void LocalNodeRoutes::refuseCreate(ApiResponse& res) const {
  sendError(res, invalid("this daemon runs the Docker backend, whose one node is the local host " + host_ +
                         ": no node can be added (nodes join on the Kubernetes backend, from the cluster). "
                         "Edit the host's metadata with PUT /api/v1/gpu-nodes/" + host_));
}

void LocalNodeRoutes::refuseDelete(const ApiRequest& req, ApiResponse& res) const {
  if (Status s = isHost(req); !s.ok()) return sendError(res, s.error());
  sendError(res, invalid("node " + host_ + " is the local host, the Docker backend's one node: it cannot be "
                         "deleted. To take it out of service, PATCH /api/v1/gpu-nodes/" + host_ +
                         "/status {\"status\":\"maintenance\"}"));
}

}  // namespace sandman
