// ApiRequest and ApiResponse: the API's own view of one HTTP exchange,
// independent of the server library that reads it off the wire, so route
// code and tests never see Beast. Plain values; not shared between threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace sandman {

struct ApiRequest {
  std::string method;  // "GET", as sent
  std::string target;  // the raw request target, "/api/v1/sessions?limit=5"
  std::string path;    // percent-decoded path of target
  std::vector<std::pair<std::string, std::string>> params;   // decoded query, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote_addr;
  std::vector<std::string> matches;  // path captures of the route, [0] is the whole path
  bool authenticated = false;        // carried the API token (set by the ApiServer)

  bool has_param(std::string_view name) const;
  // The first value of a query parameter, or "" when absent.
  std::string get_param_value(std::string_view name) const;
  bool has_header(std::string_view lower_name) const;
  // The first value of a header (name lower-case), or "" when absent.
  std::string get_header_value(std::string_view lower_name) const;
};

struct ApiResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type/Length

  void set_header(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
  void set_content(std::string b, std::string type) {
    body = std::move(b);
    content_type = std::move(type);
  }
};

// Splits a request target into its decoded path and query parameters. Fails
// (with the reason) on a target that is not origin-form, on bad percent
// escapes, on NUL bytes and on anything that does not decode to UTF-8.
Status parseTarget(std::string_view target, std::string* path,
                   std::vector<std::pair<std::string, std::string>>* params);

}  // namespace sandman
