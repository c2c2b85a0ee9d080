// RouteServer: a module's routes served by the real HttpListener on an
// ephemeral loopback port, on its own thread, for integration tests.
#pragma once

#include <thread>

#include "api/http_listener.h"
#include "api/http_util.h"

namespace sandman::testing {

class RouteServer {
 public:
  explicit RouteServer(HttpLimits limits = {})
      : listener_(
            limits,
            [this](ApiRequest& req, ApiResponse& res) {
              if (router_.dispatch(req, res) != Router::Outcome::kHandled) {
                sendError(res, notFound("no route " + req.path));
              }
            },
            [](int status, const std::string& message, ApiResponse& res) {
              sendJson(res, status, {{"error", message}, {"code", "invalid"}});
            }) {}
  ~RouteServer() { stop(); }

  Router& router() { return router_; }
  HttpListener& listener() { return listener_; }

  // Binds 127.0.0.1 on a free port and serves on a thread; returns the port.
  int start() {
    if (!listener_.bind("127.0.0.1", 0).ok()) return 0;
    thread_ = std::thread([this] { listener_.serve(); });
    return listener_.port();
  }
  void stop() {
    if (!thread_.joinable()) return;
    listener_.stop();
    thread_.join();
  }

 private:
  Router router_;
  HttpListener listener_;
  std::thread thread_;
};

}  // namespace sandman::testing
