// Router: the API's route table. Patterns are paths whose "{name}" segments
// capture one non-empty path segment ("/sessions/{id}/events"); the first
// registered route that matches wins, so literal routes go before captures.
// Built before serving, then only read: concurrent dispatch is safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

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

 private:
  std::vector<Route> routes_;
};

}  // namespace sandman
