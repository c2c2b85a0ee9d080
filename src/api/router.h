// Router: the API's route table. Patterns are paths whose "{name}" segments
// capture one non-empty path segment ("/sessions/{id}/events"); the first
// registered route that matches wins, so literal routes go before captures.
// Each route carries its OpenAPI operation (see api/openapi.h), attached by
// the module that adds it, so the published document is this very table.
// Built before serving, then only read: concurrent dispatch is safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/http_message.h"

namespace sandman {

using HttpHandler = std::function<void(const ApiRequest&, ApiResponse&)>;

class Router {
 public:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{...}" marks a capture
    HttpHandler handler;
    // The OpenAPI operation object (with api/openapi.h's shorthands); null
    // until document() names this route.
    std::shared_ptr<const nlohmann::json> doc;
  };

  void add(std::string method, const std::string& pattern, HttpHandler handler);
  void get(const std::string& pattern, HttpHandler h) { add("GET", pattern, std::move(h)); }
  void post(const std::string& pattern, HttpHandler h) { add("POST", pattern, std::move(h)); }
  void put(const std::string& pattern, HttpHandler h) { add("PUT", pattern, std::move(h)); }
  void patch(const std::string& pattern, HttpHandler h) { add("PATCH", pattern, std::move(h)); }
  void del(const std::string& pattern, HttpHandler h) { add("DELETE", pattern, std::move(h)); }

  enum class Outcome { kHandled, kNoRoute, kWrongMethod };
  // Runs the matching handler with req.matches filled in. kWrongMethod sets
  // res's Allow header to the methods the path does answer.
  Outcome dispatch(ApiRequest& req, ApiResponse& res) const;

  const std::vector<Route>& routes() const { return routes_; }

  // Attaches a module's docs: {"schemas": {...}, "routes": {"GET /sessions/{id}": {operation}}}.
  // A key's path names the route with that exact pattern and its /api/v1 twin
  // (so one entry covers the bare seed alias too); an exact /api/v1 key wins.
  // Keys that name no route are kept in staleDocs(): a doc must not outlive its route.
  void document(const nlohmann::json& table);
  // Parses a module's docs table written as JSON text; a malformed table
  // throws at start-up (the unit tests register every module).
  void document(std::string_view table_json) { document(nlohmann::json::parse(table_json)); }
  const nlohmann::json& schemas() const { return schemas_; }
  const std::vector<std::string>& staleDocs() const { return stale_docs_; }

 private:
  std::vector<Route> routes_;
  nlohmann::json schemas_ = nlohmann::json::object();
  std::vector<std::string> stale_docs_;
};

}  // namespace sandman
