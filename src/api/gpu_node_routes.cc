#include "api/gpu_node_routes.h"

#include <algorithm>

#include "api/local_node_routes.h"
#include "api/node_listing.h"
#include "common/time_format.h"
#include "common/utf8.h"
#include "runtime/kube_client.h"

namespace sandman {
namespace {

using nlohmann::json;

json nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

int64_t at(const std::map<std::string, int64_t>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

// The GPUs a node has: GFD's count, else the device plugin's whole GPUs.
int64_t gpuCount(const NodeView& n) {
  return n.gpu_count > 0 ? n.gpu_count : at(n.capacity, "nvidia.com/gpu");
}

bool hasMigResources(const NodeView& n) {
  return std::any_of(n.capacity.begin(), n.capacity.end(),
                     [](const auto& kv) { return !migProfileOf(kv.first).empty(); });
}

// Node names are DNS subdomains: lower-case alphanumerics, '-' and '.'.
bool validNodeName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

// {"config": ..., "by": ...}: only the given fields; by defaults to "api".
Result<json> bodyObject(const std::string& body, const std::vector<std::string>& allowed) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid("the body must be a JSON object");
  for (const auto& [k, v] : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return invalid("unknown field '" + printableExcerpt(k, 40) + "'");
    }
    if (!v.is_string()) return invalid("'" + k + "' must be a string");
  }
  return j;
}

Result<std::string> byOf(const json& j) {
  std::string by = j.value("by", std::string("api"));
  if (by.empty() || by.size() > 64 ||
      !std::all_of(by.begin(), by.end(), [](char c) { return c >= 0x20 && c <= 0x7e; })) {
    return invalid("'by' must be 1 to 64 printable ASCII characters");
  }
  return by;
}

}  // namespace

constexpr const char* kAnnCluster = "sandman.io/cluster";
constexpr const char* kAnnDescription = "sandman.io/description";
constexpr const char* kAnnLabels = "sandman.io/labels";
constexpr const char* kAnnStatus = "sandman.io/status";
constexpr const char* kAnnStatusReason = "sandman.io/status-reason";
constexpr const char* kAnnUpdatedAt = "sandman.io/updated-at";
constexpr const char* kAnnUpdatedBy = "sandman.io/updated-by";

NodeMeta nodeMetaFromAnnotations(const NodeView& n, bool* stored) {
  const auto& a = n.sandman_annotations;
  auto get = [&a](const char* k) {
    auto it = a.find(k);
    return it == a.end() ? std::string() : it->second;
  };
  NodeMeta m = defaultNodeMeta(n.name, "default");
  *stored = false;
  for (const char* k : {kAnnCluster, kAnnDescription, kAnnLabels, kAnnStatus, kAnnUpdatedAt}) {
    if (a.count(k)) *stored = true;
  }
  if (!get(kAnnCluster).empty()) m.cluster = get(kAnnCluster);
  m.description = get(kAnnDescription);
  json labels = json::parse(get(kAnnLabels), nullptr, false);
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) {
      if (v.is_string()) m.labels[k] = v.get<std::string>();
    }
  }
  // An annotation edited by hand to something else reads as maintenance:
  // keeping sessions off is the safe side.
  const std::string st = get(kAnnStatus);
  m.status = st.empty() ? "active" : (validNodeStatus(st) ? st : "maintenance");
  m.status_reason = get(kAnnStatusReason);
  if (!st.empty() && !validNodeStatus(st)) m.status_reason = "unknown status annotation '" + printableExcerpt(st, 40) + "'";
  auto at = parseRfc3339(get(kAnnUpdatedAt));
  if (at) m.updated_at = *at;
  m.updated_by = get(kAnnUpdatedBy);
  return m;
}

json nodeMetaPatch(const NodeMeta& m) {
  auto val = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  json labels = json::object();
  for (const auto& [k, v] : m.labels) labels[k] = v;
  return {{"metadata",
           {{"annotations",
             {{kAnnCluster, val(m.cluster)},
              {kAnnDescription, val(m.description)},
              {kAnnLabels, m.labels.empty() ? json(nullptr) : json(labels.dump())},
              {kAnnStatus, m.status == "active" ? json(nullptr) : json(m.status)},
              {kAnnStatusReason, val(m.status_reason)},
              {kAnnUpdatedAt, formatRfc3339(m.updated_at)},
              {kAnnUpdatedBy, val(m.updated_by)}}}}}};
}

NodeHolds maintenanceHolds(const std::vector<NodeView>& nodes) {
  NodeHolds out;
  for (const auto& n : nodes) {
    bool stored = false;
    NodeMeta m = nodeMetaFromAnnotations(n, &stored);
    if (!nodeStatusTakesSessions(m.status)) out.emplace(n.name, nodeRefusal(m).message);
  }
  return out;
}

json gpuNodeJson(const ClusterNode& c, bool detail) {
  const NodeView& n = c.node;
  json resources = json::array();
  for (const auto& [res, cap] : n.capacity) {
    const int64_t alloc = at(n.allocatable, res);
    const int64_t used = at(c.in_use, res);
    resources.push_back({{"resource", res}, {"profile", nullable(migProfileOf(res))}, {"capacity", cap},
                         {"allocatable", alloc}, {"in_use", used},
                         {"free", c.refusal.empty() ? std::max<int64_t>(0, alloc - used) : 0}});
  }
  json taints = json::array();
  for (const auto& t : n.taints) taints.push_back({{"key", t.key}, {"value", t.value}, {"effect", t.effect}});
  json profiles = json::object();
  for (const auto& [p, l] : n.mig_profiles) {
    profiles[p] = {{"count", l.count}, {"memory_mib", l.memory_mib}, {"multiprocessors", l.multiprocessors},
                   {"slices_gi", l.slices_gi}};
  }
  const bool sandman_hold = c.refusal.rfind("MIG layout", 0) == 0;
  json out = {{"name", n.name},
              {"product", nullable(n.product)},
              {"gpu_count", gpuCount(n)},
              {"gpu_memory_mib", n.gpu_memory_mib},
              {"mig_strategy", nullable(n.mig_strategy)},
              {"mig_capable", n.mig_capable},
              {"mig_profiles", profiles},
              {"resources", resources},
              {"ready", n.ready},
              {"cordoned", n.unschedulable},
              {"held_by_sandman", sandman_hold ? json(c.refusal) : json(nullptr)},
              {"takes_sessions", c.refusal.empty()},
              {"refusal", nullable(c.refusal)},
              {"taints", taints},
              {"mig_config", nullable(n.mig_config)},
              {"mig_config_state", nullable(n.mig_config_state)},
              {"sessions", c.sessions}};
  bool stored = false;
  const NodeMeta meta = nodeMetaFromAnnotations(n, &stored);
  addNodeMetaJson(out, meta, stored);
  out["id"] = n.name;
  out["backend"] = "kubernetes";
  out["running_sessions"] = c.sessions.size();
  out["drain_complete"] = meta.status == "drained" ? json(c.sessions.empty()) : json(nullptr);
  if (detail) {
    // "labels" are Sandman's own (PUT /gpu-nodes/{name}); these are the node's nvidia.com/ ones.
    out["gpu_labels"] = n.gpu_labels;
    out["ready_reason"] = nullable(n.ready_reason);
    out["ready_message"] = nullable(n.ready_message);
    out["resource_version"] = n.resource_version;
  }
  return out;
}

json fitsJson(const std::vector<ResourceFit>& fits) {
  json out = json::array();
  for (const auto& f : fits) {
    json nodes = json::array();
    for (const auto& [node, n] : f.nodes) {
      auto p = f.products.find(node);
      nodes.push_back({{"node", node}, {"fits", n}, {"product", p == f.products.end() ? json(nullptr) : nullable(p->second)}});
    }
    out.push_back({{"resource", f.resource}, {"profile", nullable(f.profile)}, {"fits", f.fits}, {"nodes", nodes}});
  }
  return out;
}

json clusterGpusJson(const std::vector<ClusterNode>& nodes, const std::string& view) {
  if (view == "inventory") {
    json list = json::array();
    for (const auto& c : nodes) {
      const NodeView& n = c.node;
      const bool mig = hasMigResources(n);
      for (int64_t i = 0; i < gpuCount(n); ++i) {
        // The API server knows models and counts, not devices: no UUIDs,
        // telemetry or per-GPU slices (those come from the node's agent).
        list.push_back({{"index", i},
                        {"node", n.name},
                        {"uuid", nullptr},
                        {"name", nullable(n.product)},
                        {"memory_total", n.gpu_memory_mib},
                        {"memory_used", nullptr},
                        {"memory_free", nullptr},
                        {"utilization", nullptr},
                        {"temperature", nullptr},
                        {"power_usage", nullptr},
                        {"power_limit", nullptr},
                        {"mig_enabled", mig},
                        {"mig_pending", n.mig_config_state == "pending"},
                        {"mig_instances", json::array()},
                        {"session_id", nullptr}});
      }
    }
    return {{"gpus", list}, {"count", list.size()}, {"nodes", nodes.size()},
            {"source", "Node objects: GPU feature discovery labels and device plugin capacity"}};
  }
  if (view == "profiles") {
    std::map<std::string, json> by_name;
    for (const auto& c : nodes) {
      for (const auto& [res, alloc] : c.node.allocatable) {
        const std::string p = migProfileOf(res);
        if (p.empty()) continue;
        json& e = by_name[p];
        auto labels = c.node.mig_profiles.find(p);
        if (e.is_null()) {
          e = {{"name", p}, {"resource", res}, {"instance_count", 0}, {"nodes", json::array()}};
          if (labels != c.node.mig_profiles.end()) {
            e["memory_mib"] = labels->second.memory_mib;
            e["compute_slices"] = labels->second.slices_gi;
            e["multiprocessors"] = labels->second.multiprocessors;
          }
        }
        const int64_t used = at(c.in_use, res);
        e["instance_count"] = e["instance_count"].get<int64_t>() + alloc;
        e["nodes"].push_back({{"node", c.node.name}, {"product", nullable(c.node.product)}, {"allocatable", alloc},
                              {"in_use", used},
                              {"available", c.refusal.empty() ? std::max<int64_t>(0, alloc - used) : 0}});
      }
    }
    json list = json::array();
    for (auto& [_, e] : by_name) list.push_back(std::move(e));
    return {{"profiles", list}, {"count", list.size()}};
  }
  // available
  json instances = json::array(), whole = json::array(), closed = json::array();
  int64_t count = 0;
  for (const auto& c : nodes) {
    if (!c.refusal.empty()) {
      closed.push_back({{"node", c.node.name}, {"reason", c.refusal}});
      continue;
    }
    for (const auto& [res, alloc] : c.node.allocatable) {
      const int64_t free = std::max<int64_t>(0, alloc - at(c.in_use, res));
      if (free == 0) continue;
      count += free;
      const std::string p = migProfileOf(res);
      if (!p.empty()) {
        instances.push_back({{"node", c.node.name}, {"profile", p}, {"resource", res}, {"free", free}});
      } else {
        whole.push_back({{"node", c.node.name}, {"name", nullable(c.node.product)}, {"resource", res}, {"free", free}});
      }
    }
  }
  // Layouts change only through the GPU operator (nvidia.com/mig.config): static, as Sandman sees it.
  return {{"mig_mode", "static"},
          {"available_instances", instances},
          {"whole_gpus", whole},
          {"count", count},
          {"fits_now", fitsJson(fitsNow(nodes))},
          {"nodes_not_taking_sessions", closed},
          {"in_use_counts", "this daemon's session pods only"}};
}

json migProposalJson(const MigLayoutProposal& p) {
  return {{"id", p.id},
          {"node", p.node},
          {"config", p.config},
          {"state", p.state},
          {"message", p.message},
          {"previous_config", nullable(p.previous_config)},
          {"proposed_by", p.proposed_by},
          {"approved_by", nullable(p.approved_by)},
          {"created_at", formatRfc3339(p.created_at)},
          {"updated_at", formatRfc3339(p.updated_at)}};
}

std::vector<ClusterNode> GpuNodeRoutes::snapshot() const {
  auto nodes = nodes_.list();
  NodeHolds holds = layouts_ ? layouts_->holds() : NodeHolds{};
  holds.merge(maintenanceHolds(nodes));  // a MIG layout hold, when both, names the sooner end
  return clusterNodes(nodes, pods_.list(), holds);
}

namespace {

// OpenAPI operations of the MIG layout routes (api/openapi.h); /gpu-nodes is kGpuNodeDocs.
constexpr std::string_view kMigLayoutDocs = R"json({
"schemas": {
  "MigProposal": {"type": "object", "additionalProperties": false,
    "required": ["id", "node", "config", "state", "message", "previous_config", "proposed_by", "approved_by", "created_at", "updated_at"],
    "properties": {"id": {"type": "integer"}, "node": {"type": "string"}, "config": {"type": "string"}, "state": {"type": "string"},
      "message": {"type": "string"}, "previous_config": {"type": ["string", "null"]}, "proposed_by": {"type": "string"},
      "approved_by": {"type": ["string", "null"]}, "created_at": {"$ref": "#/components/schemas/Timestamp"},
      "updated_at": {"$ref": "#/components/schemas/Timestamp"}}}
},
"routes": {
  "GET /mig-layouts": {"operationId": "listMigLayouts", "summary": "MIG layout proposals of every node (Kubernetes)", "tag": "Nodes",
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["proposals", "count"],
      "properties": {"proposals": {"type": "array", "items": {"$ref": "#/components/schemas/MigProposal"}}, "count": {"type": "integer"}}}}}},
  "GET /gpu-nodes/{name}/mig-layout": {"operationId": "getMigLayout", "summary": "A node's MIG layout proposals and state", "tag": "Nodes",
    "parameters": [{"$ref": "#/components/parameters/NodeName"}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["node", "proposals", "held_by_sandman"],
      "properties": {"node": {"type": "string"}, "proposals": {"type": "array", "items": {"$ref": "#/components/schemas/MigProposal"}},
        "mig_config": {"type": ["string", "null"]}, "mig_config_state": {"type": ["string", "null"]}, "held_by_sandman": {"type": ["string", "null"]}}}}},
    "errors": [400]},
  "POST /gpu-nodes/{name}/mig-layout": {"operationId": "proposeMigLayout", "summary": "Propose a MIG layout for a node", "tag": "Nodes",
    "parameters": [{"$ref": "#/components/parameters/NodeName"}],
    "body": {"type": "object", "additionalProperties": false, "required": ["config"],
      "properties": {"config": {"type": "string", "description": "a mig-parted config name, such as all-1g.10gb"}, "by": {"$ref": "#/components/schemas/NodeBy"}}},
    "responses": {"201": {"description": "Proposed", "json": {"$ref": "#/components/schemas/MigProposal"}}}, "errors": [400, 404, 409]},
  "DELETE /gpu-nodes/{name}/mig-layout": {"operationId": "releaseMigLayout", "summary": "Withdraw or release a node's MIG layout proposal", "tag": "Nodes",
    "parameters": [{"$ref": "#/components/parameters/NodeName"}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/MigProposal"}}}, "errors": [400, 404, 409]},
  "POST /gpu-nodes/{name}/mig-layout/approve": {"operationId": "approveMigLayout", "summary": "Approve a node's MIG layout proposal", "tag": "Nodes",
    "parameters": [{"$ref": "#/components/parameters/NodeName"}],
    "body": {"type": "object", "additionalProperties": false, "properties": {"by": {"$ref": "#/components/schemas/NodeBy"}}},
    "body_required": false,
    "responses": {"200": {"json": {"$ref": "#/components/schemas/MigProposal"}}}, "errors": [400, 404, 409]}
}
})json";

}  // namespace

std::vector<json> GpuNodeRoutes::nodesJson() const {
  std::vector<json> out;
  for (const auto& c : snapshot()) out.push_back(gpuNodeJson(c, false));
  return out;
}

NodeHolds GpuNodeRoutes::refusedNodes() const {
  NodeHolds out = layouts_ ? layouts_->holds() : NodeHolds{};
  out.merge(maintenanceHolds(nodes_.list()));
  return out;
}

json GpuNodeRoutes::gpus(const std::string& view) const {
  json body = clusterGpusJson(snapshot(), view);
  body["backend"] = "kubernetes";
  return body;
}

void GpuNodeRoutes::registerRoutes(Router& router) {
  using Req = const ApiRequest&;
  using Res = ApiResponse&;
  for (const char* prefix : kApiPrefixes) {
    const std::string base = std::string(prefix) + "/gpu-nodes";
    router.get(base, [this](Req q, Res r) { list(q, r); });
    router.post(base, [](Req, Res r) {
      sendError(r, invalid("on the Kubernetes backend nodes come from the cluster: a node joins through its "
                           "kubelet, and Sandman lists it here once it has NVIDIA GPUs. Edit Sandman's metadata "
                           "of a node with PUT /api/v1/gpu-nodes/{name}"));
    });
    router.get(base + "/recent", [this](Req q, Res r) { recent(q, r); });
    router.get(base + "/{name}", [this](Req q, Res r) { get(q, r); });
    router.put(base + "/{name}", [this](Req q, Res r) { update(q, r); });
    router.del(base + "/{name}", [](Req q, Res r) {
      sendError(r, invalid("node " + printableExcerpt(q.matches[1], 64) + " belongs to the cluster: Sandman does "
                           "not delete Node objects (kubectl delete node does). To keep sessions off it, PATCH "
                           "/api/v1/gpu-nodes/{name}/status {\"status\":\"maintenance\"}"));
    });
    router.patch(base + "/{name}/status", [this](Req q, Res r) { setStatus(q, r); });
    if (!layouts_) continue;
    router.get(std::string(prefix) + "/mig-layouts", [this](Req, Res r) { allProposals(r); });
    router.get(base + "/{name}/mig-layout", [this](Req q, Res r) { proposals(q, r); });
    router.post(base + "/{name}/mig-layout", [this](Req q, Res r) { propose(q, r); });
    router.del(base + "/{name}/mig-layout", [this](Req q, Res r) { release(q, r); });
    router.post(base + "/{name}/mig-layout/approve", [this](Req q, Res r) { approve(q, r); });
  }
  router.document(kGpuNodeDocs);
  if (layouts_) router.document(kMigLayoutDocs);
}

void GpuNodeRoutes::list(const ApiRequest& req, ApiResponse& res) const {
  auto nodes = snapshot();
  std::vector<json> all;
  int64_t gpus = 0;
  for (const auto& c : nodes) {
    all.push_back(gpuNodeJson(c, false));
    gpus += gpuCount(c.node);
  }
  auto body = listNodes(req, cursors_, std::move(all), res);
  if (!body.ok()) return sendError(res, body.error());
  const WatchCacheStats s = nodes_.stats();
  json out = std::move(body).value();
  out["backend"] = "kubernetes";
  out["gpus"] = gpus;
  out["nodes_listed"] = s.objects;
  out["synced"] = s.synced;
  out["in_use_counts"] = "this daemon's session pods only";
  out["fits_now"] = fitsJson(fitsNow(nodes));
  sendJson(res, 200, out);
}

Status GpuNodeRoutes::patchMeta(const NodeMeta& m, const NodeEvent& event) {
  if (client_ == nullptr) return unavailable("this daemon has no Kubernetes client for node edits");
  auto r = client_->patchMerge("/api/v1/nodes/" + urlEncode(m.name), nodeMetaPatch(m));
  if (!r.ok()) return r.error();
  if (r->status == 404) return notFound("no node " + m.name);
  if (r->status < 200 || r->status >= 300) {
    return unavailable("cannot annotate node " + m.name + ": HTTP " + std::to_string(r->status) +
                       (r->status == 403 ? " (the ClusterRole sandman-node-labels grants patch on nodes)" : ""));
  }
  if (meta_ != nullptr) (void)meta_->addEvent(event);
  return {};
}

void GpuNodeRoutes::update(const ApiRequest& req, ApiResponse& res) {
  const std::string name = req.matches[1];
  if (!validNodeName(name)) return sendError(res, invalid("not a node name: " + printableExcerpt(name, 64)));
  auto edit = parseNodeMetaEdit(req.body, name);
  if (!edit.ok()) return sendError(res, edit.error());
  auto view = nodes_.get(name);
  if (!view || !isGpuNode(*view)) return sendError(res, notFound(view ? "node " + name + " has no NVIDIA GPUs" : "no node " + name));
  bool stored = false;
  NodeMeta m = nodeMetaFromAnnotations(*view, &stored);
  if (edit->cluster) m.cluster = *edit->cluster;
  if (edit->description) m.description = *edit->description;
  if (edit->labels) m.labels = *edit->labels;
  const TimePoint now = clock_ ? clock_->now() : TimePoint{};
  m.updated_at = now;
  m.updated_by = edit->by;
  if (Status s = patchMeta(m, {0, name, now, "metadata", "metadata edited", edit->by}); !s.ok()) {
    return sendError(res, s.error());
  }
  // The watch cache sees the patch a moment later: answer with what was written.
  view->sandman_annotations.clear();
  const json written = nodeMetaPatch(m);
  for (const auto& [k, v] : written["metadata"]["annotations"].items()) {
    if (v.is_string()) view->sandman_annotations[k] = v.get<std::string>();
  }
  for (auto& c : clusterNodes({*view}, pods_.list(), layouts_ ? layouts_->holds() : NodeHolds{})) {
    return sendJson(res, 200, gpuNodeJson(c, true));
  }
  sendError(res, notFound("node " + name + " has no NVIDIA GPUs"));
}

void GpuNodeRoutes::setStatus(const ApiRequest& req, ApiResponse& res) {
  const std::string name = req.matches[1];
  if (!validNodeName(name)) return sendError(res, invalid("not a node name: " + printableExcerpt(name, 64)));
  auto edit = parseNodeStatusEdit(req.body);
  if (!edit.ok()) return sendError(res, edit.error());
  auto view = nodes_.get(name);
  if (!view || !isGpuNode(*view)) return sendError(res, notFound(view ? "node " + name + " has no NVIDIA GPUs" : "no node " + name));
  bool stored = false;
  NodeMeta m = nodeMetaFromAnnotations(*view, &stored);
  const std::string before = m.status;
  m.status = edit->status;
  m.status_reason = edit->reason;
  const TimePoint now = clock_ ? clock_->now() : TimePoint{};
  m.updated_at = now;
  m.updated_by = edit->by;
  if (Status s = patchMeta(m, {0, name, now, "status", "status " + before + " -> " + m.status +
                                                          (m.status_reason.empty() ? "" : " (" + m.status_reason + ")"),
                               edit->by});
      !s.ok()) {
    return sendError(res, s.error());
  }
  view->sandman_annotations.clear();
  const json written = nodeMetaPatch(m);
  for (const auto& [k, v] : written["metadata"]["annotations"].items()) {
    if (v.is_string()) view->sandman_annotations[k] = v.get<std::string>();
  }
  NodeHolds holds = layouts_ ? layouts_->holds() : NodeHolds{};
  holds.merge(maintenanceHolds({*view}));
  for (auto& c : clusterNodes({*view}, pods_.list(), holds)) {
    json out = gpuNodeJson(c, true);
    json still = json::array();
    for (const auto& sid : c.sessions) still.push_back({{"id", sid}});
    out["still_running"] = still;
    return sendJson(res, 200, out);
  }
  sendError(res, notFound("node " + name + " has no NVIDIA GPUs"));
}

void GpuNodeRoutes::recent(const ApiRequest& req, ApiResponse& res) {
  if (meta_ == nullptr || clock_ == nullptr) return sendJson(res, 200, {{"changes", json::array()}, {"count", 0}});
  auto body = recentNodeChanges(req, *meta_, *clock_);
  if (!body.ok()) return sendError(res, body.error());
  sendJson(res, 200, body.value());
}

void GpuNodeRoutes::get(const ApiRequest& req, ApiResponse& res) const {
  const std::string name = req.matches[1];
  if (!validNodeName(name)) return sendError(res, invalid("not a node name: " + printableExcerpt(name, 64)));
  for (const auto& c : snapshot()) {
    if (c.node.name == name) return sendJson(res, 200, gpuNodeJson(c, true));
  }
  sendError(res, notFound(nodes_.get(name) ? "node " + name + " has no NVIDIA GPUs" : "no node " + name));
}

void GpuNodeRoutes::proposals(const ApiRequest& req, ApiResponse& res) const {
  const std::string name = req.matches[1];
  if (!validNodeName(name)) return sendError(res, invalid("not a node name: " + printableExcerpt(name, 64)));
  auto rows = layouts_->list(name);
  if (!rows.ok()) return sendError(res, rows.error());
  json list = json::array();
  for (const auto& p : rows.value()) list.push_back(migProposalJson(p));
  auto view = nodes_.get(name);
  json out = {{"node", name}, {"proposals", list}};
  if (view) {
    out["mig_config"] = nullable(view->mig_config);
    out["mig_config_state"] = nullable(view->mig_config_state);
  }
  auto holds = layouts_->holds();
  auto h = holds.find(name);
  out["held_by_sandman"] = h == holds.end() ? json(nullptr) : json(h->second);
  sendJson(res, 200, out);
}

void GpuNodeRoutes::allProposals(ApiResponse& res) const {
  auto rows = layouts_->list("");
  if (!rows.ok()) return sendError(res, rows.error());
  json list = json::array();
  for (const auto& p : rows.value()) list.push_back(migProposalJson(p));
  sendJson(res, 200, {{"proposals", list}, {"count", list.size()}});
}

void GpuNodeRoutes::propose(const ApiRequest& req, ApiResponse& res) {
  const std::string name = req.matches[1];
  if (!validNodeName(name)) return sendError(res, invalid("not a node name: " + printableExcerpt(name, 64)));
  auto body = bodyObject(req.body, {"config", "by"});
  if (!body.ok()) return sendError(res, body.error());
  if (!body->contains("config")) return sendError(res, invalid("'config' is required, e.g. {\"config\": \"all-1g.10gb\"}"));
  auto by = byOf(body.value());
  if (!by.ok()) return sendError(res, by.error());
  auto p = layouts_->propose(name, (*body)["config"].get<std::string>(), by.value());
  if (!p.ok()) return sendError(res, p.error());
  sendJson(res, 201, migProposalJson(p.value()));
}

void GpuNodeRoutes::approve(const ApiRequest& req, ApiResponse& res) {
  const std::string name = req.matches[1];
  if (!validNodeName(name)) return sendError(res, invalid("not a node name: " + printableExcerpt(name, 64)));
  auto body = bodyObject(req.body, {"by"});
  if (!body.ok()) return sendError(res, body.error());
  auto by = byOf(body.value());
  if (!by.ok()) return sendError(res, by.error());
  auto p = layouts_->approve(name, by.value());
  if (!p.ok()) return sendError(res, p.error());
  sendJson(res, 200, migProposalJson(p.value()));
}

void GpuNodeRoutes::release(const ApiRequest& req, ApiResponse& res) {
  const std::string name = req.matches[1];
  if (!validNodeName(name)) return sendError(res, invalid("not a node name: " + printableExcerpt(name, 64)));
  auto p = layouts_->release(name, "api");
  if (!p.ok()) return sendError(res, p.error());
  sendJson(res, 200, migProposalJson(p.value()));
}

}  // namespace sandman
