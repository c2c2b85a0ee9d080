#include "api/node_listing.h"

#include <algorithm>
#include <cctype>

#include "common/time_format.h"
#include "common/utf8.h"

namespace sandman {
namespace {

using nlohmann::json;

bool printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
}

// Cluster names and label keys: letters, digits, '.', '_', '-', '/'.
bool validKey(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-' || c == '/';
  });
}

Result<json> objectBody(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid("the body must be a JSON object");
  return j;
}

Result<std::string> byOf(const json& j) {
  if (!j.contains("by")) return std::string("api");
  if (!j["by"].is_string()) return invalid("'by' must be a string");
  std::string by = j["by"].get<std::string>();
  if (by.empty() || by.size() > 64 ||
      !std::all_of(by.begin(), by.end(), [](char c) { return c >= 0x20 && c <= 0x7e; })) {
    return invalid("'by' must be 1 to 64 printable ASCII characters");
  }
  return by;
}

std::string param(const ApiRequest& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : std::string();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string textOf(const json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The value a node sorts by, as a comparable JSON value (null sorts first).
json sortValue(const json& n, const std::string& field) {
  auto it = n.find(field);
  return it == n.end() ? json(nullptr) : *it;
}

}  // namespace

const std::string_view kGpuNodeDocs = R"json({
"schemas": {
  "GpuNode": {
    "type": "object",
    "description": "One GPU node. Both backends give these fields; the Kubernetes backend adds the node's resources, taints and MIG state; one node's GET adds gpus and still_running.",
    "required": ["name", "cluster", "description", "labels", "status", "status_reason", "updated_at", "updated_by", "takes_sessions", "refusal", "gpu_count"],
    "properties": {
      "id": {"type": "string"}, "name": {"type": "string"}, "backend": {"type": "string", "enum": ["docker", "kubernetes"]},
      "cluster": {"type": "string"}, "description": {"type": "string"},
      "labels": {"type": "object", "additionalProperties": {"type": "string"}},
      "status": {"$ref": "#/components/schemas/NodeStatus"}, "status_reason": {"type": ["string", "null"]},
      "updated_at": {"$ref": "#/components/schemas/NullableTimestamp"}, "updated_by": {"type": ["string", "null"]},
      "takes_sessions": {"type": "boolean"}, "refusal": {"type": ["string", "null"]},
      "gpu_count": {"type": "integer", "minimum": 0}, "gpu_models": {"type": "object", "additionalProperties": {"type": "integer"}},
      "gpu_memory_mib": {"type": "integer"}, "mig_instances": {"type": "integer"},
      "sessions": {"type": "array", "items": {"type": "string"}}, "running_sessions": {"type": "integer"},
      "drain_complete": {"type": ["boolean", "null"]}, "telemetry_at": {"$ref": "#/components/schemas/NullableTimestamp"},
      "gpus": {"type": "array", "items": {"type": "object"}},
      "still_running": {"type": "array", "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}}
    }
  },
  "NodeStatus": {"type": "string", "enum": ["active", "maintenance", "drained"]},
  "NodeBy": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[ -~]+$", "default": "api", "description": "who made the change (printable ASCII)"},
  "NodeMetaEdit": {
    "type": "object", "additionalProperties": false,
    "description": "fields left out keep their value; name/id, if given, must be the node's own",
    "properties": {
      "name": {"type": "string"}, "id": {"type": "string"},
      "cluster": {"type": "string", "pattern": "^[A-Za-z0-9._/-]{1,63}$"},
      "description": {"type": "string", "maxLength": 512},
      "labels": {"type": "object", "maxProperties": 32, "propertyNames": {"pattern": "^[A-Za-z0-9._/-]{1,63}$"},
                 "additionalProperties": {"type": "string", "maxLength": 256}},
      "by": {"$ref": "#/components/schemas/NodeBy"}
    }
  },
  "NodeStatusEdit": {
    "type": "object", "additionalProperties": false, "required": ["status"],
    "properties": {"status": {"$ref": "#/components/schemas/NodeStatus"}, "reason": {"type": "string", "maxLength": 512},
                   "by": {"$ref": "#/components/schemas/NodeBy"}}
  }
},
"routes": {
  "GET /gpu-nodes": {"operationId": "listGpuNodes", "summary": "GPU nodes: filter, sort and page", "tag": "Nodes",
    "parameters": [
      {"name": "search", "in": "query", "schema": {"type": "string", "maxLength": 128}, "description": "in name, description and cluster"},
      {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/NodeStatus"}},
      {"name": "cluster", "in": "query", "schema": {"type": "string", "maxLength": 63}},
      {"name": "changed_since", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 UTC or unix seconds"},
      {"name": "sort", "in": "query", "schema": {"type": "string", "default": "name",
        "enum": ["name", "status", "cluster", "updated_at", "gpu_count", "-name", "-status", "-cluster", "-updated_at", "-gpu_count"]}},
      {"$ref": "#/components/parameters/Limit"}, {"$ref": "#/components/parameters/Cursor"},
      {"$ref": "#/components/parameters/From"}, {"$ref": "#/components/parameters/To"}],
    "responses": {"200": {"json": {"type": "object", "required": ["nodes", "count", "total", "backend"],
      "description": "the Kubernetes backend adds gpus, nodes_listed, synced, in_use_counts and fits_now",
      "properties": {"nodes": {"type": "array", "items": {"$ref": "#/components/schemas/GpuNode"}},
        "count": {"type": "integer", "minimum": 0}, "total": {"type": "integer", "minimum": 0},
        "backend": {"type": "string", "enum": ["docker", "kubernetes"]}}}}},
    "errors": [400]},
  "POST /gpu-nodes": {"operationId": "createGpuNode", "summary": "Refused: nodes come from the backend (the host, or the cluster)", "tag": "Nodes",
    "responses": {}, "errors": [400]},
  "GET /gpu-nodes/recent": {"operationId": "recentNodeChanges", "summary": "Node metadata and status changes of the last hours", "tag": "Nodes",
    "parameters": [
      {"name": "hours", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 744, "default": 24}},
      {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}],
    "responses": {"200": {"json": {"type": "object", "additionalProperties": false, "required": ["changes", "count"],
      "properties": {"since": {"$ref": "#/components/schemas/Timestamp"},
        "changes": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["id", "node", "at", "kind", "detail", "by"],
          "properties": {"id": {"type": "integer"}, "node": {"type": "string"}, "at": {"$ref": "#/components/schemas/Timestamp"},
            "kind": {"type": "string"}, "detail": {"type": "string"}, "by": {"type": ["string", "null"]}}}},
        "count": {"type": "integer", "minimum": 0},
        "nodes": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["name", "changed_at"],
          "properties": {"name": {"type": "string"}, "changed_at": {"$ref": "#/components/schemas/Timestamp"}}}}}}}},
    "errors": [400]},
  "GET /gpu-nodes/{name}": {"operationId": "getGpuNode", "summary": "One GPU node with its GPUs and sessions", "tag": "Nodes",
    "parameters": [{"$ref": "#/components/parameters/NodeName"}],
    "responses": {"200": {"json": {"$ref": "#/components/schemas/GpuNode"}}}, "errors": [400, 404]},
  "PUT /gpu-nodes/{name}": {"operationId": "updateGpuNode", "summary": "Edit a node's cluster, description and labels", "tag": "Nodes",
    "parameters": [{"$ref": "#/components/parameters/NodeName"}],
    "body": {"$ref": "#/components/schemas/NodeMetaEdit"},
    "responses": {"200": {"json": {"$ref": "#/components/schemas/GpuNode"}}}, "errors": [400, 404, 503]},
  "DELETE /gpu-nodes/{name}": {"operationId": "deleteGpuNode", "summary": "Refused: take a node out of service with its status instead", "tag": "Nodes",
    "parameters": [{"$ref": "#/components/parameters/NodeName"}],
    "responses": {}, "errors": [400, 404]},
  "PATCH /gpu-nodes/{name}/status": {"operationId": "setGpuNodeStatus", "summary": "Put a node in maintenance, drain it or reopen it", "tag": "Nodes",
    "parameters": [{"$ref": "#/components/parameters/NodeName"}],
    "body": {"$ref": "#/components/schemas/NodeStatusEdit"},
    "responses": {"200": {"json": {"$ref": "#/components/schemas/GpuNode"}}}, "errors": [400, 404, 503]}
}
})json";

bool validNodeId(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

Result<NodeMetaEdit> parseNodeMetaEdit(const std::string& body, const std::string& name) {
  auto j = objectBody(body);
  if (!j.ok()) return j.error();
  NodeMetaEdit e;
  for (const auto& [k, v] : j->items()) {
    if (k == "name" || k == "id") {
      if (!v.is_string() || v.get<std::string>() != name) {
        return invalid("'" + k + "' must be the node's own name (" + name + "): a node cannot be renamed");
      }
    } else if (k == "cluster") {
      if (!v.is_string() || !validKey(v.get<std::string>(), 63)) {
        return invalid("'cluster' must be 1 to 63 letters, digits, '.', '_', '-' or '/'");
      }
      e.cluster = v.get<std::string>();
    } else if (k == "description") {
      if (!v.is_string() || v.get<std::string>().size() > 512 || !printable(v.get<std::string>()) ||
          !isValidUtf8(v.get<std::string>())) {
        return invalid("'description' must be a string of at most 512 printable characters");
      }
      e.description = v.get<std::string>();
    } else if (k == "labels") {
      if (!v.is_object()) return invalid("'labels' must be an object of strings, e.g. {\"rack\": \"r12\"}");
      if (v.size() > 32) return invalid("'labels' may hold 32 entries at most");
      std::map<std::string, std::string> labels;
      for (const auto& [lk, lv] : v.items()) {
        if (!validKey(lk, 63)) {
          return invalid("label key '" + printableExcerpt(lk, 40) +
                         "' must be 1 to 63 letters, digits, '.', '_', '-' or '/'");
        }
        if (!lv.is_string() || lv.get<std::string>().size() > 256 || !printable(lv.get<std::string>()) ||
            !isValidUtf8(lv.get<std::string>())) {
          return invalid("label '" + lk + "' must have a string value of at most 256 printable characters");
        }
        labels[lk] = lv.get<std::string>();
      }
      e.labels = std::move(labels);
    } else if (k == "by") {
      auto by = byOf(j.value());
      if (!by.ok()) return by.error();
      e.by = by.value();
    } else if (k == "status") {
      return invalid("'status' changes through PATCH /api/v1/gpu-nodes/" + name + "/status");
    } else {
      return invalid("unknown field '" + printableExcerpt(k, 40) + "' (cluster, description, labels, by)");
    }
  }
  return e;
}

Result<NodeStatusEdit> parseNodeStatusEdit(const std::string& body) {
  auto j = objectBody(body);
  if (!j.ok()) return j.error();
  NodeStatusEdit e;
  for (const auto& [k, v] : j->items()) {
    if (k != "status" && k != "reason" && k != "by") {
      return invalid("unknown field '" + printableExcerpt(k, 40) + "' (status, reason, by)");
    }
  }
  if (!j->contains("status") || !(*j)["status"].is_string()) {
    return invalid("'status' is required: active, maintenance or drained");
  }
  e.status = (*j)["status"].get<std::string>();
  if (e.status != "active" && e.status != "maintenance" && e.status != "drained") {
    return invalid("'status' must be active, maintenance or drained, not '" + printableExcerpt(e.status, 40) + "'");
  }
  if (j->contains("reason")) {
    const json& r = (*j)["reason"];
    if (!r.is_string() || r.get<std::string>().size() > 512 || !printable(r.get<std::string>()) ||
        !isValidUtf8(r.get<std::string>())) {
      return invalid("'reason' must be a string of at most 512 printable characters");
    }
    e.reason = r.get<std::string>();
  }
  auto by = byOf(j.value());
  if (!by.ok()) return by.error();
  e.by = by.value();
  return e;
}

Result<json> listNodes(const ApiRequest& req, const CursorCodec& codec, std::vector<json> nodes, ApiResponse& res) {
  const std::string search = param(req, "search"), status = param(req, "status"), cluster = param(req, "cluster");
  const std::string changed = param(req, "changed_since");
  std::string sort = req.has_param("sort") ? req.get_param_value("sort") : std::string("name");
  if (!status.empty() && status != "active" && status != "maintenance" && status != "drained") {
    return invalid("status must be active, maintenance or drained");
  }
  if (search.size() > 128) return invalid("search is 128 characters at most");
  if (cluster.size() > 63) return invalid("cluster is 63 characters at most");
  const bool desc = !sort.empty() && sort[0] == '-';
  const std::string field = desc ? sort.substr(1) : sort;
  static const char* kSortable[] = {"name", "status", "cluster", "updated_at", "gpu_count"};
  if (std::none_of(std::begin(kSortable), std::end(kSortable), [&](const char* s) { return field == s; })) {
    return invalid("sort must be one of name, status, cluster, updated_at, gpu_count (a leading '-': descending)");
  }
  std::optional<TimePoint> since;
  if (!changed.empty()) {
    auto t = parseTimeParam("changed_since", changed);
    if (!t.ok()) return t.error();
    since = t.value();
  }
  const std::string listing = "gpu-nodes\nsearch=" + search + "\nstatus=" + status + "\ncluster=" + cluster +
                              "\nchanged_since=" + changed + "\nsort=" + sort;
  auto q = parseListQuery(req, codec, listing);
  if (!q.ok()) return q.error();

  const std::string needle = lower(search);
  std::vector<json> kept;
  for (auto& n : nodes) {
    if (!status.empty() && textOf(n, "status") != status) continue;
    if (!cluster.empty() && textOf(n, "cluster") != cluster) continue;
    if (!needle.empty()) {
      const std::string hay =
          lower(textOf(n, "name") + "\n" + textOf(n, "description") + "\n" + textOf(n, "cluster"));
      if (hay.find(needle) == std::string::npos) continue;
    }
    const std::string updated = textOf(n, "updated_at");
    if (since || q->from || q->to) {
      if (updated.empty()) continue;
      auto t = parseTimeParam("updated_at", updated);
      if (!t.ok()) continue;
      if (since && t.value() < *since) continue;
      if (q->from && t.value() < *q->from) continue;
      if (q->to && !(t.value() < *q->to)) continue;
    }
    kept.push_back(std::move(n));
  }
  auto key = [&field](const json& n) { return json::array({sortValue(n, field), textOf(n, "name")}); };
  auto before = [desc](const json& a, const json& b) { return desc ? b < a : a < b; };
  std::sort(kept.begin(), kept.end(), [&](const json& a, const json& b) { return before(key(a), key(b)); });
  size_t start = 0;
  if (q->after) {
    json after = json::parse(*q->after, nullptr, false);
    if (!after.is_array()) return invalid("cursor does not belong to this listing");
    while (start < kept.size() && !before(after, key(kept[start]))) ++start;
  }
  json page = json::array();
  for (size_t i = start; i < kept.size() && page.size() < q->limit; ++i) page.push_back(kept[i]);
  if (start + page.size() < kept.size()) {
    setNextPage(req, nextCursor(req, codec, listing, key(page.back()).dump()), res);
  }
  return json{{"nodes", page}, {"count", page.size()}, {"total", kept.size()}};
}

}  // namespace sandman
