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
