// ApiServer: the REST API (/api/v1/... and the seed's bare paths), with
// bearer-token auth, JSON errors and request logging, served by HttpListener.
// Routes translate HTTP to SessionManager calls and nothing more. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "api/http_listener.h"
#include "api/http_util.h"
#include "api/json_mapping.h"
#include "api/list_query.h"
#include "api/login_sessions.h"
#include "common/histogram.h"
#include "common/result.h"
#include "core/session_manager.h"
#include "core/user_keys.h"
#include "runtime/runtime.h"
#include "store/store.h"

namespace sandman {

struct ApiOptions {
  std::string token;  // empty: --auth none
  std::string viewer_token;  // --viewer-token-file: may only read; empty: none
  LoginOptions login;        // browser logins (POST /login)
  SessionView view;
  HttpLimits limits;
  bool metrics_auth = false;  // GET /metrics needs the token too (--metrics-auth)
  // Set on a cluster (Kubernetes backend): /gpus, /gpus/profiles and
  // /gpus/available answer from its nodes ("inventory", "profiles", "available").
  std::function<nlohmann::json(const std::string& view)> cluster_gpus;
  // Replicas: what a write request on a follower is told (naming the leader),
  // or nullopt when this replica may write. Unset: always writes.
  std::function<std::optional<std::string>()> not_leader;
  // Replicas: "leader" or "follower", shown by /readyz (ready either way).
  std::function<std::string()> role;
  // Paths answered without the token (the dashboard's static files). Unset: none.
  std::function<bool(const std::string& path)> is_public;
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
  int port() const { return listener_.port(); }
  Status enableTls(const std::string& cert_file, const std::string& key_file) {
    tls_ = true;
    return listener_.enableTls(cert_file, key_file);
  }
  // Runs a GET of this API in process, as an admin, and returns its JSON
  // body (e.g. the event stream's cost event shows budgets exactly as
  // GET /budgets does).
  Result<nlohmann::json> internalGet(const std::string& target);
  LoginSessions& logins() { return logins_; }
  // The route table (for the OpenAPI checks).
  const Router& router() const { return router_; }
  // Serves until stop(); call after bind().
  void serve();
  void stop();
  HttpListenerStats listenerStats() const { return listener_.stats(); }
  // The whole pipeline for one parsed request: auth, routing, errors, logging
  // (what the listener calls; the HTTP fuzzer drives it directly too).
  void handle(ApiRequest& req, ApiResponse& res);

 private:
  void registerRoutes(const std::string& prefix);
  void createSession(const ApiRequest& req, ApiResponse& res);
  void listSessions(const ApiRequest& req, ApiResponse& res);
  void sessionStats(ApiResponse& res);
  void getSession(const ApiRequest& req, ApiResponse& res);
  void deleteSession(const ApiRequest& req, ApiResponse& res);
  void deleteAllSessions(const ApiRequest& req, ApiResponse& res);
  void patchSession(const ApiRequest& req, ApiResponse& res);
  enum class GpuView { kInventory, kProfiles, kAvailable };
  void gpus(ApiResponse& res, GpuView view);
  void readyz(ApiResponse& res);
  void sessionConnections(const ApiRequest& req, ApiResponse& res);
  void sessionEvents(const ApiRequest& req, ApiResponse& res);
  void putUserKey(const ApiRequest& req, ApiResponse& res);
  void listUserKeys(const ApiRequest& req, ApiResponse& res);
  void deleteUserKey(const ApiRequest& req, ApiResponse& res);
  void reject(int status, const std::string& message, ApiResponse& res);
  bool sameOrigin(const ApiRequest& req, ApiResponse& res) const;
  bool authorized(ApiRequest& req, ApiResponse& res) const;
  bool jsonBody(const ApiRequest& req, ApiResponse& res) const;
  bool writable(const ApiRequest& req, ApiResponse& res) const;
  bool permitted(const ApiRequest& req, ApiResponse& res) const;
  void login(const ApiRequest& req, ApiResponse& res);
  void logout(const ApiRequest& req, ApiResponse& res);
  void whoami(const ApiRequest& req, ApiResponse& res);
  std::string cookieAttributes() const;

  ApiOptions options_;
  SessionManager& sessions_;
  UserKeys& user_keys_;
  Runtime& runtime_;
  Store& store_;
  std::once_flag openapi_once_;
  std::string openapi_text_;  // GET /openapi.json, built once from router_
  const CursorCodec cursors_;  // seals the page cursors of every listing here
  Router router_;
  mutable LoginSessions logins_;  // its own lock; lookups touch idle timers
  HttpListener listener_;
  std::atomic<int64_t> last_reject_log_ms_{0};
  bool tls_ = false;
  Histogram request_seconds_{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
};

}  // namespace sandman
