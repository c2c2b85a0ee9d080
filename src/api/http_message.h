// ApiRequest and ApiResponse: the API's own view of one HTTP exchange,
// independent of the server library that reads it off the wire, so route
// code and tests never see Beast. Plain values; not shared between threads.
#pragma once

#include <functional>
#include <memory>
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
  std::string role;                  // "admin" or "viewer" once authenticated
  std::string via;                   // "token", "cookie" or "none" (--auth none)

  bool has_param(std::string_view name) const;
  // The first value of a query parameter, or "" when absent.
  std::string get_param_value(std::string_view name) const;
  bool has_header(std::string_view lower_name) const;
  // The first value of a header (name lower-case), or "" when absent.
  std::string get_header_value(std::string_view lower_name) const;
};

// The write end of a streamed response (Server-Sent Events), owned by the
// listener's event loop: send() only queues and returns, so a publisher never
// waits on a slow client. Thread-safe.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Queues bytes; false once the client is gone or fell too far behind
  // (the stream is then closed and should be forgotten).
  virtual bool send(std::string bytes) = 0;
  virtual bool isOpen() const = 0;
  virtual void end() = 0;
};

struct ApiResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type/Length
  // Set by a streaming route: the head goes out without a length, the
  // connection is never reused, and this runs once on the event loop with
  // the stream to write to (no thread is held for it).
  std::function<void(std::shared_ptr<ResponseStream>)> on_stream;

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
