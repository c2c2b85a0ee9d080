#include "api/gpu_device_routes.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "common/time_format.h"
#include "common/utf8.h"

namespace sandman {
namespace {

using nlohmann::json;

json nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
json num(const std::optional<double>& v) {
  if (!v) return nullptr;
  return std::round(*v * 10.0) / 10.0;
}

constexpr size_t kMaxMigItems = 16;

bool overlaps(int a, int as, int b, int bs) { return a < b + bs && b < a + as; }

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string holderOf(const std::vector<HeldSlot>& held, const std::string& gpu_uuid, int start, int size,
                     const std::string& device_uuid) {
  for (const auto& h : held) {
    if (h.gpu_uuid != gpu_uuid) continue;
    if (h.whole) return h.device_uuid.empty() ? "a whole-GPU session" : h.device_uuid;
    if ((!device_uuid.empty() && h.device_uuid == device_uuid) ||
        (h.placement_start >= 0 && overlaps(h.placement_start, h.placement_size, start, size))) {
      return h.device_uuid.empty() ? "a reserved slice" : h.device_uuid;
    }
  }
  return "";
}

json instanceJson(const MigInstance& m) {
  return {{"deviceId", m.uuid},
          {"profile", m.profile_name},
          {"gpuInstanceId", m.gpu_instance_id},
          {"placementStart", m.placement_start},
          {"placementSize", m.placement_size},
          {"memoryMib", m.memory_total_mib}};
}

}  // namespace

std::string normalizeMigProfile(const std::string& raw) {
  std::string s = raw;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s.find('.') != std::string::npos) return s;  // already "1g.10gb" / "1g.10gb+me"
  // The seeds' "<MODEL>_<n>G<m>GB[_ME]".
  bool me = false;
  if (s.size() > 3 && s.compare(s.size() - 3, 3, "_me") == 0) {
    me = true;
    s.resize(s.size() - 3);
  }
  auto us = s.rfind('_');
  if (us != std::string::npos) s = s.substr(us + 1);
  auto g = s.find('g');
  if (g == std::string::npos || g == 0 || g + 1 >= s.size()) return raw;
  return s.substr(0, g + 1) + "." + s.substr(g + 1) + (me ? "+me" : "");
}

Result<MigRequest> parseMigRequest(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return invalid("the body must be JSON: a list of profiles, e.g. [\"1g.10gb\", \"3g.40gb\"]");
  MigRequest r;
  json items;
  if (j.is_array()) {
    items = j;
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k != "profiles" && k != "instances" && k != "replace") {
        return invalid("unknown field '" + printableExcerpt(k, 40) + "' (profiles, instances, replace)");
      }
    }
    if (j.contains("profiles") == j.contains("instances")) {
      return invalid("give exactly one of 'profiles' (a list of names) or 'instances' (a list of "
                     "{\"profile\", \"placement_start\"})");
    }
    if (j.contains("replace")) {
      if (!j["replace"].is_boolean()) return invalid("'replace' must be true or false");
      r.replace = j["replace"].get<bool>();
    }
    items = j.contains("profiles") ? j["profiles"] : j["instances"];
    if (!items.is_array()) return invalid("'profiles' / 'instances' must be a list");
  } else {
    return invalid("the body must be a list of profiles or an object with 'profiles' or 'instances'");
  }
  if (items.empty()) return invalid("name at least one MIG profile");
  if (items.size() > kMaxMigItems) return invalid("at most 16 instances per request");
  for (const auto& it : items) {
    MigRequestItem item;
    if (it.is_string()) {
      item.profile = it.get<std::string>();
    } else if (it.is_object()) {
      for (const auto& [k, v] : it.items()) {
        if (k != "profile" && k != "placement_start") {
          return invalid("unknown field '" + printableExcerpt(k, 40) + "' in an instance (profile, placement_start)");
        }
      }
      if (!it.contains("profile") || !it["profile"].is_string()) return invalid("each instance needs a 'profile' string");
      item.profile = it["profile"].get<std::string>();
      if (it.contains("placement_start")) {
        if (!it["placement_start"].is_number_integer() || it["placement_start"].get<int64_t>() < 0 ||
            it["placement_start"].get<int64_t>() > 64) {
          return invalid("'placement_start' must be a memory-slice index (0 to 7 on most GPUs)");
        }
        item.placement_start = static_cast<int>(it["placement_start"].get<int64_t>());
      }
    } else {
      return invalid("each item must be a profile name or {\"profile\", \"placement_start\"}");
    }
    if (item.profile.empty() || item.profile.size() > 40 || !isValidUtf8(item.profile)) {
      return invalid("a profile name is 1 to 40 characters, e.g. 1g.10gb");
    }
    item.profile = normalizeMigProfile(item.profile);
    r.items.push_back(std::move(item));
  }
  return r;
}

Result<MigPlan> planMigLayout(const GpuInfo& gpu, const MigRequest& req, const std::vector<HeldSlot>& held) {
  MigPlan plan;
  std::vector<std::pair<int, int>> occupied;  // start, size
  for (const auto& m : gpu.instances) {
    const std::string holder = holderOf(held, gpu.uuid, m.placement_start, m.placement_size, m.uuid);
    if (req.replace) {
      if (!holder.empty()) {
        return conflict("instance " + m.uuid + " (" + m.profile_name + ") on GPU " + gpu.uuid +
                        " is held by a session (" + holder + "): replace would destroy it; end that session first");
      }
      plan.destroy.push_back(m);
    } else {
      occupied.emplace_back(m.placement_start, m.placement_size);
    }
  }
  // Whole-GPU sessions and reserved slices without an instance also occupy.
  for (const auto& h : held) {
    if (h.gpu_uuid != gpu.uuid) continue;
    if (h.whole) return conflict("a session holds GPU " + gpu.uuid + " whole: no MIG instance can be laid out on it");
    if (h.device_uuid.empty() && h.placement_start >= 0) occupied.emplace_back(h.placement_start, h.placement_size);
  }
  std::vector<std::string> names;
  for (const auto& p : gpu.profiles) names.push_back(p.name);
  for (const auto& item : req.items) {
    auto p = std::find_if(gpu.profiles.begin(), gpu.profiles.end(),
                          [&](const MigProfile& mp) { return mp.name == item.profile; });
    if (p == gpu.profiles.end()) {
      return invalid("GPU " + gpu.uuid + " (" + gpu.name + ") offers no MIG profile '" +
                     printableExcerpt(item.profile, 40) + "'; it offers: " + joined(names));
    }
    int start = item.placement_start;
    if (start >= 0) {
      if (std::find(p->placement_starts.begin(), p->placement_starts.end(), start) == p->placement_starts.end()) {
        std::string starts;
        for (int s : p->placement_starts) starts += (starts.empty() ? "" : ", ") + std::to_string(s);
        return invalid("profile " + p->name + " cannot start at memory slice " + std::to_string(start) +
                       "; valid starts: " + starts);
      }
      for (const auto& [os, osz] : occupied) {
        if (!overlaps(start, p->memory_slices, os, osz)) continue;
        const std::string holder = holderOf(held, gpu.uuid, start, p->memory_slices, "");
        if (!holder.empty()) {
          return conflict("memory slices " + std::to_string(start) + "-" + std::to_string(start + p->memory_slices - 1) +
                          " of GPU " + gpu.uuid + " are held by a session (" + holder + ")");
        }
        return conflict("memory slices " + std::to_string(start) + "-" + std::to_string(start + p->memory_slices - 1) +
                        " of GPU " + gpu.uuid +
                        " are taken by an instance no session holds: pass \"replace\": true to lay the GPU out anew");
      }
    } else {
      for (int s : p->placement_starts) {
        bool free = std::none_of(occupied.begin(), occupied.end(), [&](const auto& o) {
          return overlaps(s, p->memory_slices, o.first, o.second);
        });
        if (free) {
          start = s;
          break;
        }
      }
      if (start < 0) {
        return conflict("no free placement for profile " + p->name + " on GPU " + gpu.uuid +
                        " after the instances before it; pass \"replace\": true to lay the GPU out anew");
      }
    }
    occupied.emplace_back(start, p->memory_slices);
    plan.create.push_back({p->profile_id, p->name, start, p->memory_slices});
  }
  return plan;
}

json gpuOverviewJson(const TelemetrySnapshot* snap, int64_t allocations) {
  std::map<std::string, int64_t> by_model;
  double util_sum = 0;
  int util_n = 0;
  int64_t gpus = 0, instances = 0, free_instances = 0;
  if (snap) {
    gpus = static_cast<int64_t>(snap->gpus.size());
    instances = static_cast<int64_t>(snap->instances.size());
    for (const auto& g : snap->gpus) {
      ++by_model[g.model_name];
      if (!g.mig_enabled && g.utilization_pct) {
        util_sum += *g.utilization_pct;
        ++util_n;
      }
    }
    for (const auto& m : snap->instances) {
      if (m.session_id.empty()) ++free_instances;
      if (m.utilization_pct) {
        util_sum += *m.utilization_pct;
        ++util_n;
      }
    }
  }
  return {{"totalGpuDevices", gpus},
          {"activeAllocations", allocations},
          {"totalMigInstances", instances},
          {"availableMigInstances", free_instances},
          {"overallGpuUtilization", util_n ? num(util_sum / util_n) : json(nullptr)},
          {"devicesByModel", by_model},
          {"sampledAt", snap ? json(formatRfc3339(snap->taken_at)) : json(nullptr)}};
}

namespace {

// OpenAPI operations of the routes below (api/openapi.h). This resource's
// fields are camelCase, as the dashboard's clients expect.
constexpr std::string_view kDocs = R"json({
"schemas": {
  "MigInstanceMade": {"type": "object", "additionalProperties": false,
    "required": ["deviceId", "profile", "gpuInstanceId", "placementStart", "placementSize", "memoryMib"],
    "properties": {"deviceId": {"type": "string"}, "profile": {"type": "string"}, "gpuInstanceId": {"type": "integer"},
      "placementStart": {"type": "integer"}, "placementSize": {"type": "integer"}, "memoryMib": {"type": "integer"}}},
  "MigItem": {"oneOf": [
    {"type": "string", "minLength": 1, "maxLength": 40, "description": "a profile name, such as 1g.10gb"},
    {"type": "object", "additionalProperties": false, "required": ["profile"],
     "properties": {"profile": {"type": "string", "minLength": 1, "maxLength": 40}, "placement_start": {"type": "integer", "minimum": 0, "maximum": 64}}}]}
},
"routes": {
  "GET /gpu/overview": {"operationId": "gpuOverview", "summary": "GPU totals: devices, allocations, MIG instances, utilisation", "tag": "GPUs",
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false,
      "required": ["totalGpuDevices", "activeAllocations", "totalMigInstances", "availableMigInstances", "overallGpuUtilization", "devicesByModel", "sampledAt", "backend"],
      "properties": {"totalGpuDevices": {"type": "integer"}, "activeAllocations": {"type": "integer"}, "totalMigInstances": {"type": "integer"},
        "availableMigInstances": {"type": "integer"}, "overallGpuUtilization": {"type": ["number", "null"]},
        "devicesByModel": {"type": "object", "additionalProperties": {"type": "integer"}},
        "sampledAt": {"$ref": "#/components/schemas/NullableTimestamp"}, "backend": {"type": "string", "enum": ["docker", "kubernetes"]}}}}}},
  "GET /gpu/devices": {"operationId": "listGpuDevices", "summary": "GPUs with their MIG instances and holders, by node", "tag": "GPUs",
    "parameters": [
      {"name": "nodeName", "in": "query", "schema": {"type": "string", "pattern": "^[A-Za-z0-9.-]{1,253}$"}},
      {"$ref": "#/components/parameters/Limit"}, {"$ref": "#/components/parameters/Cursor"}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["devices", "count", "total", "sampledAt"],
      "properties": {"devices": {"type": "array", "items": {"type": "object", "additionalProperties": false,
          "required": ["deviceId", "nodeName", "gpuIndex", "modelName", "memoryTotalMib", "memoryUsedMib", "utilization", "temperature",
                       "powerW", "powerLimitW", "migEnabled", "migInstances", "sessionId", "userId"],
          "properties": {"deviceId": {"type": "string"}, "nodeName": {"type": "string"}, "gpuIndex": {"type": "integer"},
            "modelName": {"type": "string"}, "memoryTotalMib": {"type": "integer"}, "memoryUsedMib": {"type": "integer"},
            "utilization": {"type": ["number", "null"]}, "temperature": {"type": ["number", "null"]},
            "powerW": {"type": ["number", "null"]}, "powerLimitW": {"type": ["number", "null"]}, "migEnabled": {"type": "boolean"},
            "migInstances": {"type": "array", "items": {"type": "object", "additionalProperties": false,
              "required": ["deviceId", "profile", "gpuInstanceId", "computeSlices", "memoryTotalMib", "memoryUsedMib", "utilization", "sessionId", "userId"],
              "properties": {"deviceId": {"type": "string"}, "profile": {"type": "string"}, "gpuInstanceId": {"type": "integer"},
                "computeSlices": {"type": "integer"}, "memoryTotalMib": {"type": "integer"}, "memoryUsedMib": {"type": "integer"},
                "utilization": {"type": ["number", "null"]}, "sessionId": {"type": ["string", "null"]}, "userId": {"type": ["string", "null"]}}}},
            "sessionId": {"type": ["string", "null"]}, "userId": {"type": ["string", "null"]}}}},
        "count": {"type": "integer"}, "total": {"type": "integer"}, "sampledAt": {"$ref": "#/components/schemas/Timestamp"}}}}},
    "errors": [400, 404, 503]},
  "POST /gpu/devices/{id}/mig": {"operationId": "createMigInstances", "summary": "Create MIG instances on a GPU (static MIG on a Docker host)", "tag": "GPUs",
    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "a GPU UUID or index"}],
    "body": {"oneOf": [
      {"type": "array", "items": {"$ref": "#/components/schemas/MigItem"}, "minItems": 1, "maxItems": 16},
      {"type": "object", "additionalProperties": false,
       "properties": {"profiles": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 40}, "minItems": 1, "maxItems": 16},
         "instances": {"type": "array", "items": {"$ref": "#/components/schemas/MigItem"}, "minItems": 1, "maxItems": 16},
         "replace": {"type": "boolean", "description": "destroy the GPU's free instances first"}},
       "oneOf": [{"required": ["profiles"]}, {"required": ["instances"]}]}]},
    "responses": {"201": {"description": "Created", "json": {"type": "object", "additionalProperties": false,
      "required": ["deviceId", "gpuIndex", "nodeName", "created", "destroyed", "migInstances"],
      "properties": {"deviceId": {"type": "string"}, "gpuIndex": {"type": "integer"}, "nodeName": {"type": "string"},
        "created": {"type": "array", "items": {"$ref": "#/components/schemas/MigInstanceMade"}},
        "destroyed": {"type": "array", "items": {"$ref": "#/components/schemas/MigInstanceMade"}},
        "migInstances": {"type": "array", "items": {"$ref": "#/components/schemas/MigInstanceMade"}}}}}},
    "errors": [400, 404, 409, 503]}
}
})json";

}  // namespace

void GpuDeviceRoutes::registerRoutes(Router& router) {
  using Req = const ApiRequest&;
  using Res = ApiResponse&;
  for (const char* prefix : kApiPrefixes) {
    const std::string p = prefix;
    router.get(p + "/gpu/overview", [this](Req, Res r) { overview(r); });
    router.get(p + "/gpu/devices", [this](Req q, Res r) { devices(q, r); });
    router.post(p + "/gpu/devices/{id}/mig", [this](Req q, Res r) { createMig(q, r); });
  }
  router.document(kDocs);
}

void GpuDeviceRoutes::overview(ApiResponse& res) const {
  auto active = store_.activeSessions();
  if (!active.ok()) return sendError(res, active.error());
  int64_t allocations = std::count_if(active->begin(), active->end(), [](const Session& s) {
    return s.gpu_uuid.has_value() || s.gpu.has_value();
  });
  SnapshotPtr snap = sampler_.latest();
  json body = gpuOverviewJson(snap.get(), allocations);
  body["backend"] = kubernetes_ ? "kubernetes" : "docker";
  sendJson(res, 200, body);
}

void GpuDeviceRoutes::devices(const ApiRequest& req, ApiResponse& res) const {
  const std::string node = req.has_param("nodeName") ? req.get_param_value("nodeName") : std::string();
  if (req.has_param("nodeName")) {
    const bool ok = !node.empty() && node.size() <= 253 && std::all_of(node.begin(), node.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
    });
    if (!ok) return sendError(res, invalid("nodeName must be a node name (letters, digits, '-', '.')"));
    if (!kubernetes_ && node != local_node_) {
      return sendError(res, notFound("no node " + node + ": the Docker backend has one node, the local host " +
                                     local_node_));
    }
  }
  const std::string listing = "gpu/devices\nnodeName=" + node;
  auto q = parseListQuery(req, cursors_, listing);
  if (!q.ok()) return sendError(res, q.error());
  SnapshotPtr snap = sampler_.latest();
  if (!snap) return sendError(res, unavailable("no telemetry sample yet; retry after one interval"));
  auto nodeOf = [this](const DeviceReading& d) { return d.node.empty() ? local_node_ : d.node; };
  std::vector<const DeviceReading*> gpus;
  for (const auto& g : snap->gpus) {
    if (node.empty() || nodeOf(g) == node) gpus.push_back(&g);
  }
  auto key = [&](const DeviceReading* d) { return json::array({nodeOf(*d), d->gpu_index, d->uuid}).dump(); };
  std::sort(gpus.begin(), gpus.end(), [&](auto* a, auto* b) {
    return std::tuple(nodeOf(*a), a->gpu_index, a->uuid) < std::tuple(nodeOf(*b), b->gpu_index, b->uuid);
  });
  size_t start = 0;
  if (q->after) {
    json after = json::parse(*q->after, nullptr, false);
    if (!after.is_array() || after.size() != 3) return sendError(res, invalid("cursor does not belong to this listing"));
    while (start < gpus.size() && json::parse(key(gpus[start])) <= after) ++start;
  }
  json list = json::array();
  size_t i = start;
  for (; i < gpus.size() && list.size() < q->limit; ++i) {
    const DeviceReading& g = *gpus[i];
    json inst = json::array();
    for (const auto& m : snap->instances) {
      if (m.gpu_uuid != g.uuid || (!m.node.empty() && m.node != g.node)) continue;
      inst.push_back({{"deviceId", m.uuid},
                      {"profile", m.profile},
                      {"gpuInstanceId", m.gpu_instance_id},
                      {"computeSlices", m.compute_slices},
                      {"memoryTotalMib", m.memory_total_mib},
                      {"memoryUsedMib", m.memory_used_mib},
                      {"utilization", num(m.utilization_pct)},
                      {"sessionId", nullable(m.session_id)},
                      {"userId", nullable(m.user_id)}});
    }
    list.push_back({{"deviceId", g.uuid},
                    {"nodeName", nodeOf(g)},
                    {"gpuIndex", g.gpu_index},
                    {"modelName", g.model_name},
                    {"memoryTotalMib", g.memory_total_mib},
                    {"memoryUsedMib", g.memory_used_mib},
                    {"utilization", num(g.utilization_pct)},
                    {"temperature", num(g.temperature_c)},
                    {"powerW", num(g.power_w)},
                    {"powerLimitW", num(g.power_limit_w)},
                    {"migEnabled", g.mig_enabled},
                    {"migInstances", inst},
                    {"sessionId", nullable(g.session_id)},
                    {"userId", nullable(g.user_id)}});
  }
  if (i < gpus.size()) setNextPage(req, nextCursor(req, cursors_, listing, key(gpus[i - 1])), res);
  sendJson(res, 200, {{"devices", list}, {"count", list.size()}, {"total", gpus.size()},
                      {"sampledAt", formatRfc3339(snap->taken_at)}});
}

void GpuDeviceRoutes::createMig(const ApiRequest& req, ApiResponse& res) {
  if (kubernetes_ || leases_ == nullptr) {
    return sendError(res, invalid("on the Kubernetes backend MIG layouts change through the GPU operator: propose "
                                  "one with POST /api/v1/gpu-nodes/{node}/mig-layout {\"config\": \"all-1g.10gb\"} "
                                  "and approve it with POST /api/v1/gpu-nodes/{node}/mig-layout/approve"));
  }
  if (!leases_->enabled()) return sendError(res, invalid("this host has no GPU backend (--gpu-backend none)"));
  if (leases_->settings().mig_mode != MigMode::kStatic) {
    return sendError(res, invalid("this daemon runs --mig-mode dynamic: it creates an instance for each session "
                                  "itself. Lay instances out ahead only with --mig-mode static"));
  }
  const std::string id = req.matches[1];
  auto body = parseMigRequest(req.body);
  if (!body.ok()) return sendError(res, body.error());
  auto gpus = leases_->backend()->listGpus();
  if (!gpus.ok()) return sendError(res, gpus.error());
  const GpuInfo* gpu = nullptr;
  for (const auto& g : gpus.value()) {
    if (g.uuid == id || std::to_string(g.index) == id) gpu = &g;
  }
  if (gpu == nullptr) {
    return sendError(res, notFound("no GPU '" + printableExcerpt(id, 80) +
                                   "' on this host (a GPU uuid or index, as GET /api/v1/gpu/devices lists)"));
  }
  if (!gpu->mig_enabled) {
    return sendError(res, invalid("MIG mode is off on GPU " + gpu->uuid + " (index " + std::to_string(gpu->index) +
                                  "); Sandman never changes MIG mode: an operator enables it (nvidia-smi -i " +
                                  std::to_string(gpu->index) + " -mig 1, then a GPU reset)"));
  }
  json created = json::array(), destroyed = json::array();
  Status done = store_.transaction([&](StoreTx& tx) -> Status {
    // Inside the store's write transaction: a session reservation cannot
    // slip in between the check and the change.
    auto active = tx.activeSessions();
    if (!active.ok()) return active.error();
    auto plan = planMigLayout(*gpu, body.value(), GpuLeases::heldSlots(active.value()));
    if (!plan.ok()) return plan.error();
    for (const auto& m : plan->destroy) {
      if (Status s = leases_->backend()->destroyOwnedInstance(gpu->index, m); !s.ok() && s.error().kind != ErrorKind::kNotFound) {
        return s;
      }
      destroyed.push_back(instanceJson(m));
    }
    std::vector<MigInstance> made;
    for (const auto& item : plan->create) {
      auto m = leases_->backend()->createInstance(gpu->index, item.profile_id, item.placement_start);
      if (!m.ok()) {
        for (const auto& undo : made) (void)leases_->backend()->destroyOwnedInstance(gpu->index, undo);
        Error e = m.error();
        e.message = "cannot create " + item.profile + " at memory slice " + std::to_string(item.placement_start) +
                    " on GPU " + gpu->uuid + ": " + e.message +
                    (made.empty() ? "" : " (the instances this request had created were destroyed again)");
        return e;
      }
      made.push_back(m.value());
      created.push_back(instanceJson(m.value()));
    }
    return {};
  });
  if (!done.ok()) return sendError(res, done.error());
  if (meta_ != nullptr) {
    std::string detail = "MIG layout on GPU " + std::to_string(gpu->index) + ": created";
    for (const auto& c : created) {
      detail += ' ';
      detail += c["profile"].get<std::string>();
    }
    if (!destroyed.empty()) detail += " (replaced " + std::to_string(destroyed.size()) + ")";
    (void)meta_->addEvent({0, local_node_, clock_.now(), "mig", detail, "api"});
  }
  json now = json::array();
  if (auto after = leases_->backend()->listGpus(); after.ok()) {
    for (const auto& g : after.value()) {
      if (g.uuid != gpu->uuid) continue;
      for (const auto& m : g.instances) now.push_back(instanceJson(m));
    }
  }
  sendJson(res, 201, {{"deviceId", gpu->uuid}, {"gpuIndex", gpu->index}, {"nodeName", local_node_},
                      {"created", created}, {"destroyed", destroyed}, {"migInstances", now}});
}

}  // namespace sandman
