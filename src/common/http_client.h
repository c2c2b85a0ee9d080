// HttpClient: blocking HTTP/1.1 over TCP or a unix socket (libcurl). Used by
// the Docker runtime (unix socket) and the CLI (TCP). Thread-safe: each call
// uses its own curl handle.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace sandman {

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // with a unix socket, the host part is ignored: "http://localhost/_ping"
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  long timeout_ms = 30000;
  std::string ca_file;  // https: verify the server against this PEM bundle instead of the system's
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed

  // The first value of a header (name lower-case), or "" when absent.
  std::string header(const std::string& lower_name) const {
    for (const auto& [name, value] : headers) {
      if (name == lower_name) return value;
    }
    return "";
  }
};

class HttpClient {
 public:
  // unix_socket empty: plain TCP.
  explicit HttpClient(std::string unix_socket = "");
  // Transport failures (cannot connect, timeout) are kUnavailable errors;
  // any HTTP status, 4xx/5xx included, is a successful HttpResponse.
  Result<HttpResponse> send(const HttpRequest& req) const;

 private:
  std::string unix_socket_;
};

}  // namespace sandman
