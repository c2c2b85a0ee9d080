// NodeListing: what both backends' GET /gpu-nodes share — the node record's
// edit rules (cluster, description, labels, status bodies checked strictly),
// and filtering, sorting and paging a list of node JSON objects (search,
// status, cluster, changed_since, sort, limit, cursor). Pure; thread-safe.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/http_message.h"
#include "api/list_query.h"
#include "common/result.h"

namespace sandman {

// A PUT /gpu-nodes/{name} body: only these fields; absent ones unchanged.
struct NodeMetaEdit {
  std::optional<std::string> cluster;
  std::optional<std::string> description;
  std::optional<std::map<std::string, std::string>> labels;
  std::string by = "api";
};
// `name` is the node edited: a body naming another (name/id) is refused.
Result<NodeMetaEdit> parseNodeMetaEdit(const std::string& body, const std::string& name);

// A PATCH /gpu-nodes/{name}/status body: {"status": ..., "reason"?, "by"?}.
struct NodeStatusEdit {
  std::string status;
  std::string reason;
  std::string by = "api";
};
Result<NodeStatusEdit> parseNodeStatusEdit(const std::string& body);

// Node names: DNS subdomains (lower-case alphanumerics, '-' and '.'), or a
// host name as gethostname gives it (upper case allowed).
bool validNodeId(const std::string& s);

// OpenAPI docs of /gpu-nodes shared by both backends' modules (api/openapi.h).
extern const std::string_view kGpuNodeDocs;

// Filters, sorts and pages `nodes` (each with name, cluster, status,
// description, updated_at (RFC 3339 or null), gpu_count) as the request
// asks; sets the Link/X-Next-Cursor headers on `res` when more follow.
// Returns {"nodes": page, "count", "total"} or kInvalid for a bad parameter.
Result<nlohmann::json> listNodes(const ApiRequest& req, const CursorCodec& codec, std::vector<nlohmann::json> nodes,
                                 ApiResponse& res);

}  // namespace sandman
