// ApiServer: the REST API (/api/v1/... and the seed's bare paths), with
// bearer-token auth, JSON errors and request logging. Routes translate HTTP to
// SessionManager calls and nothing more. Thread-safe (httplib thread pool).
#pragma once

#include <memory>
#include <string>

#include "api/http_util.h"
#include "api/json_mapping.h"
#include "common/histogram.h"
#include "common/result.h"
#include "core/session_manager.h"
#include "core/user_keys.h"
#include "runtime/runtime.h"
#include "store/store.h"

namespace sandman {

struct ApiOptions {
  std::string token;  // empty: --auth none
  SessionView view;
  size_t max_body_bytes = 64 * 1024;
  bool metrics_auth = false;  // GET /metrics needs the token too (--metrics-auth)
};

class ApiServer {
 public:
  ApiServer(ApiOptions options, SessionManager& sessions, UserKeys& user_keys, Runtime& runtime, Store& store);
  ~ApiServer();
  // Adds a module's routes; call before bind().
  void addRoutes(RouteModule& module);
  // Wall time of every request, routed or not (for /metrics).
  const Histogram& requestSeconds() const { return request_seconds_; }
  // Binds; kUnavailable when the address is taken.
  Status bind(const std::string& host, int port);
  // Serves until stop(); call after bind().
  void serve();
  void stop();

 private:
  void registerRoutes(const std::string& prefix);
  void createSession(const httplib::Request& req, httplib::Response& res);
  void listSessions(const httplib::Request& req, httplib::Response& res);
  void sessionStats(httplib::Response& res);
  void getSession(const httplib::Request& req, httplib::Response& res);
  void deleteSession(const httplib::Request& req, httplib::Response& res);
  void deleteAllSessions(const httplib::Request& req, httplib::Response& res);
  void patchSession(const httplib::Request& req, httplib::Response& res);
  enum class GpuView { kInventory, kProfiles, kAvailable };
  void gpus(httplib::Response& res, GpuView view);
  void readyz(httplib::Response& res);
  void sessionConnections(const httplib::Request& req, httplib::Response& res);
  void sessionEvents(const httplib::Request& req, httplib::Response& res);
  void putUserKey(const httplib::Request& req, httplib::Response& res);
  void listUserKeys(const httplib::Request& req, httplib::Response& res);
  void deleteUserKey(const httplib::Request& req, httplib::Response& res);
  bool admissible(const httplib::Request& req, httplib::Response& res) const;
  bool authorized(const httplib::Request& req, httplib::Response& res) const;

  ApiOptions options_;
  SessionManager& sessions_;
  UserKeys& user_keys_;
  Runtime& runtime_;
  Store& store_;
  std::unique_ptr<httplib::Server> server_;
  Histogram request_seconds_{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
};

}  // namespace sandman
