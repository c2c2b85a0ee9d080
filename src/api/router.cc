#include "api/router.h"

namespace sandman {
namespace {

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    out.push_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

bool isCapture(const std::string& segment) { return segment.size() >= 2 && segment.front() == '{'; }

// "/a/b" and "/a/b/" match the same route, "/a//b" does not match "/a/b".
bool matches(const Router::Route& route, std::string_view path, const std::vector<std::string_view>& parts,
             std::vector<std::string>* captures) {
  if (route.segments.size() != parts.size()) return false;
  if (path.find("//") != std::string_view::npos) return false;
  captures->clear();
  for (size_t i = 0; i < parts.size(); ++i) {
    if (isCapture(route.segments[i])) {
      captures->emplace_back(parts[i]);
    } else if (route.segments[i] != parts[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

void Router::add(std::string method, const std::string& pattern, HttpHandler handler) {
  std::vector<std::string> segments;
  for (auto part : splitPath(pattern)) segments.emplace_back(part);
  routes_.push_back({std::move(method), pattern, std::move(segments), std::move(handler), nullptr});
}

void Router::document(const nlohmann::json& table) {
  if (table.contains("schemas")) {
    for (const auto& [name, schema] : table["schemas"].items()) schemas_[name] = schema;
  }
  if (!table.contains("routes")) return;
  // Shared entries first, so that an exact /api/v1 entry overrides its twin's.
  for (const bool exact_pass : {false, true}) {
    for (const auto& [key, op] : table["routes"].items()) {
      const size_t space = key.find(' ');
      const std::string method = key.substr(0, space);
      const std::string path = space == std::string::npos ? "" : key.substr(space + 1);
      const bool versioned = path.rfind("/api/v1/", 0) == 0;
      if (versioned != exact_pass) continue;
      auto doc = std::make_shared<const nlohmann::json>(op);
      bool found = false;
      for (auto& route : routes_) {
        if (route.method != method) continue;
        if (route.pattern != path && (versioned || route.pattern != "/api/v1" + path)) continue;
        route.doc = doc;
        found = true;
      }
      if (!found) stale_docs_.push_back(key);
    }
  }
}

Router::Outcome Router::dispatch(ApiRequest& req, ApiResponse& res) const {
  const auto parts = splitPath(req.path);
  std::vector<std::string> captures;
  std::string allow;
  for (const auto& route : routes_) {
    if (!matches(route, req.path, parts, &captures)) continue;
    if (route.method != req.method) {
      if (allow.find(route.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + route.method;
      continue;
    }
    req.matches.clear();
    req.matches.push_back(req.path);
    for (auto& c : captures) req.matches.push_back(std::move(c));
    route.handler(req, res);
    return Outcome::kHandled;
  }
  if (allow.empty()) return Outcome::kNoRoute;
  res.set_header("Allow", allow);
  return Outcome::kWrongMethod;
}

}  // namespace sandman
