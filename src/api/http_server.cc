#include "api/http_server.h"

#include <httplib.h>

#include <set>

#include "api/gpu_json.h"
#include "api/http_util.h"
#include "api/token_auth.h"
#include "common/log.h"
#include "core/validation.h"

namespace sandman {

void sendJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

void sendError(httplib::Response& res, const Error& e) { sendJson(res, httpStatus(e.kind), errorJson(e)); }

namespace {

// When this worker thread's current request was routed, for the request
// duration histogram (httplib runs each request on one pool thread).
thread_local std::chrono::steady_clock::time_point t_request_start;

using nlohmann::json;

// A listing as a JSON array, or the error that kept it from being read.
template <typename T, typename ToJson>
void sendList(httplib::Response& res, const Result<std::vector<T>>& list, ToJson toJson) {
  if (!list.ok()) return sendError(res, list.error());
  json arr = json::array();
  for (const auto& item : list.value()) arr.push_back(toJson(item));
  sendJson(res, 200, arr);
}

// Path ids are checked before any lookup: "../x" and friends are a 400.
bool checkSessionId(const std::string& id, httplib::Response& res) {
  if (isSessionId(id)) return true;
  std::string msg = "not a session id (expected s- and 16 hex digits): ";
  msg.append(id, 0, 64);
  sendError(res, invalid(std::move(msg)));
  return false;
}

}  // namespace

ApiServer::ApiServer(ApiOptions options, SessionManager& sessions, UserKeys& user_keys, Runtime& runtime,
                     Store& store)
    : options_(std::move(options)),
      sessions_(sessions),
      user_keys_(user_keys),
      runtime_(runtime),
      store_(store),
      server_(std::make_unique<httplib::Server>()) {
  // Creates wait for sshd; enough workers that slow creates never starve reads.
  server_->new_task_queue = [] { return new httplib::ThreadPool(32); };
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    t_request_start = std::chrono::steady_clock::now();
    return admissible(req, res) && authorized(req, res) ? httplib::Server::HandlerResponse::Unhandled
                                                        : httplib::Server::HandlerResponse::Handled;
  });
  server_->set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 413) {
      sendJson(res, 413, errorJson({ErrorKind::kTooLarge, "request body over 64 KiB"}));
    } else if (res.status == 404) {
      sendJson(res, 404, errorJson(notFound("no route " + req.method + " " + req.path.substr(0, 128))));
    } else {
      sendJson(res, res.status, {{"error", "malformed or unsupported request to " + req.method + " " +
                                              req.path.substr(0, 128) + ": check the method, path and body"},
                                 {"code", res.status >= 500 ? "internal" : "invalid"}});
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  server_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    request_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t_request_start).count());
    logInfo("http", {{"method", req.method}, {"path", req.path}, {"status", std::to_string(res.status)},
                     {"remote", req.remote_addr}});
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    sendJson(res, 200, {{"status", "healthy"}, {"service", "gpu-ssh-gateway-orchestrator"}});
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) { readyz(res); });
  for (const char* prefix : kApiPrefixes) registerRoutes(prefix);
}

ApiServer::~ApiServer() = default;

void ApiServer::addRoutes(RouteModule& module) { module.registerRoutes(*server_); }

// Runs before any body is read. cpp-httplib applies the 64 KiB limit only to
// bodies with a Content-Length, so chunked bodies are refused outright.
bool ApiServer::admissible(const httplib::Request& req, httplib::Response& res) const {
  if (req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos) {
    sendJson(res, 411, {{"error", "chunked request bodies are not accepted; send a Content-Length (at most 64 KiB)"},
                        {"code", "invalid"}});
    return false;
  }
  // cpp-httplib reads a POST/PUT/PATCH without Content-Length until the
  // client closes, so `curl -X POST url` would hang 5 s and then get a 400.
  const bool has_body_method = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
  if (has_body_method && !req.has_header("Content-Length")) {
    sendJson(res, 411, {{"error", req.method + " needs a Content-Length: send a JSON body, or '-d \"\"' / "
                                  "'Content-Length: 0' for none"},
                        {"code", "invalid"}});
    return false;
  }
  return true;
}

bool ApiServer::authorized(const httplib::Request& req, httplib::Response& res) const {
  if (options_.token.empty() || req.path == "/healthz" || req.path == "/readyz") return true;
  if (!options_.metrics_auth && req.path == "/metrics") return true;
  if (bearerMatches(req.get_header_value("Authorization"), options_.token)) return true;
  res.set_header("WWW-Authenticate", "Bearer");
  sendJson(res, 401, errorJson({ErrorKind::kUnauthorized,
                                "missing or wrong API token: send 'Authorization: Bearer <token>' "
                                "with the token from the daemon's --token-file"}));
  return false;
}

void ApiServer::registerRoutes(const std::string& p) {
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  server_->Post(p + "/sessions", [this](Req q, Res r) { createSession(q, r); });
  server_->Get(p + "/sessions", [this](Req q, Res r) { listSessions(q, r); });
  server_->Get(p + "/sessions/stats", [this](Req, Res r) { sessionStats(r); });
  server_->Get(p + R"(/sessions/([^/]+))", [this](Req q, Res r) { getSession(q, r); });
  server_->Delete(p + R"(/sessions/([^/]+))", [this](Req q, Res r) { deleteSession(q, r); });
  server_->Delete(p + "/sessions", [this](Req q, Res r) { deleteAllSessions(q, r); });
  server_->Patch(p + R"(/sessions/([^/]+))", [this](Req q, Res r) { patchSession(q, r); });
  server_->Get(p + R"(/sessions/([^/]+)/connections)", [this](Req q, Res r) { sessionConnections(q, r); });
  server_->Get(p + R"(/sessions/([^/]+)/events)", [this](Req q, Res r) { sessionEvents(q, r); });
  server_->Put(p + R"(/users/([^/]+)/keys)", [this](Req q, Res r) { putUserKey(q, r); });
  server_->Get(p + R"(/users/([^/]+)/keys)", [this](Req q, Res r) { listUserKeys(q, r); });
  server_->Delete(p + R"(/users/([^/]+)/keys/([0-9]{1,18}))", [this](Req q, Res r) { deleteUserKey(q, r); });
  server_->Get(p + "/gpus", [this](Req, Res r) { gpus(r, GpuView::kInventory); });
  server_->Get(p + "/gpus/profiles", [this](Req, Res r) { gpus(r, GpuView::kProfiles); });
  server_->Get(p + "/gpus/available", [this](Req, Res r) { gpus(r, GpuView::kAvailable); });
}

void ApiServer::createSession(const httplib::Request& req, httplib::Response& res) {
  auto parsed = parseCreateRequest(req.body);
  if (!parsed.ok()) return sendError(res, parsed.error());
  auto created = sessions_.create(parsed.value());
  if (!created.ok()) return sendError(res, created.error());
  json j = sessionToJson(created->session, options_.view);
  if (created->ssh_private_key) j["ssh_private_key"] = *created->ssh_private_key;
  sendJson(res, 201, j);
}

void ApiServer::listSessions(const httplib::Request& req, httplib::Response& res) {
  SessionFilter filter;
  if (req.has_param("user_id")) {
    std::string u = req.get_param_value("user_id");
    if (auto st = validateUserId(u); !st.ok()) return sendError(res, st.error());
    filter.user_id = u;
  }
  if (req.has_param("status")) {
    auto st = parseSessionStatus(req.get_param_value("status"));
    if (!st) {
      return sendError(res, invalid("status must be one of pending, starting, running, stopping, ended, failed"));
    }
    filter.status = *st;
  }
  sendList(res, sessions_.list(filter), [this](const Session& s) { return sessionToJson(s, options_.view); });
}

void ApiServer::sessionStats(httplib::Response& res) {
  auto all = sessions_.list({});
  if (!all.ok()) return sendError(res, all.error());
  json by_status = json::object();
  for (auto st : {"pending", "starting", "running", "stopping", "ended", "failed"}) by_status[st] = 0;
  std::set<std::string> active_users;
  int active = 0;
  for (const auto& s : all.value()) {
    by_status[toString(s.status)] = by_status[toString(s.status)].get<int>() + 1;
    if (isActive(s.status)) {
      ++active;
      active_users.insert(s.user_id);
    }
  }
  const PortRange& range = sessions_.settings().ports;
  sendJson(res, 200, {{"total", all->size()}, {"active", active}, {"by_status", by_status},
                      {"active_users", active_users.size()}, {"ports_in_use", active},
                      {"ports_free", range.size() - active}, {"port_range", {range.start, range.end}}});
}

void ApiServer::getSession(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  if (!checkSessionId(id, res)) return;
  auto s = sessions_.get(id);
  if (!s.ok()) return sendError(res, s.error());
  sendJson(res, 200, sessionToJson(s.value(), options_.view));
}

void ApiServer::deleteSession(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  if (!checkSessionId(id, res)) return;
  auto s = sessions_.stop(id, "deleted");
  if (!s.ok()) return sendError(res, s.error());
  sendJson(res, 200, sessionToJson(s.value(), options_.view));
}

void ApiServer::deleteAllSessions(const httplib::Request& req, httplib::Response& res) {
  if (req.get_param_value("confirm") != "true") {
    return sendError(res, invalid("deleting every session needs ?confirm=true"));
  }
  auto stopped = sessions_.stopAll("deleted");
  if (!stopped.ok()) return sendError(res, stopped.error());
  json ids = json::array();
  for (const auto& s : stopped.value()) ids.push_back(s.id);
  sendJson(res, 200, {{"deleted", ids}, {"count", ids.size()}});
}

void ApiServer::patchSession(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  if (!checkSessionId(id, res)) return;
  auto ttl = parseTtlPatch(req.body);
  if (!ttl.ok()) return sendError(res, ttl.error());
  auto s = sessions_.setTtl(id, ttl.value());
  if (!s.ok()) return sendError(res, s.error());
  sendJson(res, 200, sessionToJson(s.value(), options_.view));
}

void ApiServer::gpus(httplib::Response& res, GpuView view) {
  const GpuLeases& leases = sessions_.gpus();
  auto gpus = leases.snapshot();
  if (!gpus.ok()) return sendError(res, gpus.error());
  auto active = sessions_.list({});
  if (!active.ok()) return sendError(res, active.error());
  std::vector<Session> live;
  for (const auto& s : active.value()) {
    if (isActive(s.status)) live.push_back(s);
  }
  json body;
  switch (view) {
    case GpuView::kInventory: body = gpusJson(gpus.value(), live); break;
    case GpuView::kProfiles: body = profilesJson(gpus.value(), live); break;
    case GpuView::kAvailable: body = availableJson(gpus.value(), live, leases.settings().mig_mode); break;
  }
  body["backend"] = leases.enabled() ? json(leases.backend()->description()) : json(nullptr);
  sendJson(res, 200, body);
}

void ApiServer::sessionConnections(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  if (!checkSessionId(id, res)) return;
  sendList(res, sessions_.connections(id), connectionJson);
}

void ApiServer::sessionEvents(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  if (!checkSessionId(id, res)) return;
  sendList(res, sessions_.events(id), sessionEventJson);
}

void ApiServer::putUserKey(const httplib::Request& req, httplib::Response& res) {
  auto line = parseUserKeyRequest(req.body);
  if (!line.ok()) return sendError(res, line.error());
  auto key = user_keys_.add(req.matches[1], line.value());
  if (!key.ok()) return sendError(res, key.error());
  sendJson(res, 200, userKeyJson(key.value()));
}

void ApiServer::listUserKeys(const httplib::Request& req, httplib::Response& res) {
  sendList(res, user_keys_.list(req.matches[1]), userKeyJson);
}

void ApiServer::deleteUserKey(const httplib::Request& req, httplib::Response& res) {
  auto st = user_keys_.remove(req.matches[1], std::stoll(std::string(req.matches[2])));
  if (!st.ok()) return sendError(res, st.error());
  sendJson(res, 200, {{"deleted", std::stoll(std::string(req.matches[2]))}});
}

void ApiServer::readyz(httplib::Response& res) {
  json checks;
  auto docker = runtime_.ping();
  auto store = store_.ping();
  checks["docker"] = docker.ok() ? "ok" : docker.error().message;
  checks["store"] = store.ok() ? "ok" : store.error().message;
  bool ready = docker.ok() && store.ok();
  sendJson(res, ready ? 200 : 503, {{"status", ready ? "ready" : "not ready"}, {"checks", checks}});
}

Status ApiServer::bind(const std::string& host, int port) {
  if (!server_->bind_to_port(host, port)) {
    return unavailable("cannot listen on " + host + ":" + std::to_string(port) + " (in use? use --port)");
  }
  return {};
}

void ApiServer::serve() { server_->listen_after_bind(); }

void ApiServer::stop() { server_->stop(); }

}  // namespace sandman
