#include "core/session_directory.h"

namespace sandman {

Result<std::optional<Session>> SessionDirectory::runningSession(const std::string& user_id) {
  auto running = store_.listSessions({user_id, SessionStatus::kRunning});
  if (!running.ok()) return running.error();
  if (running->empty()) return std::optional<Session>();
  return std::optional<Session>(running->front());
}

Result<GatewayRoute> SessionDirectory::route(const std::string& user_id) {
  auto s = runningSession(user_id);
  if (!s.ok()) return s.error();
  if (!s.value()) return notFound("no active session for " + user_id);
  const Session& session = *s.value();
  auto key = keyring_.get(session.id);
  if (!key.ok()) return key.error();
  // Docker: the published port on this host; Kubernetes: the pod IP from the watch cache.
  auto where = runtime_.endpoint(session.container_id, session.ssh_port);
  if (!where.ok()) return unavailable("session " + session.id + " cannot be reached: " + where.error().message);
  GatewayRoute r;
  r.session_id = session.id;
  r.upstream_host = where->host;
  r.upstream_port = where->port;
  r.upstream_host_key = session.host_public_key;
  r.upstream_private_key = key.value();
  r.upstream_user = session.user_id;
  r.expires_at = session.expires_at;
  if (session.gpu_uuid) {
    r.gpu = (session.gpu && !session.gpu->whole ? session.gpu->profile + " " : std::string("whole GPU ")) +
            *session.gpu_uuid;
  }
  return r;
}

Result<std::vector<std::string>> SessionDirectory::authorizedKeys(const std::string& user_id) {
  std::vector<std::string> keys;
  auto s = runningSession(user_id);
  if (!s.ok()) return s.error();
  if (s.value()) keys.push_back(s.value()->user_public_key);
  auto registered = store_.listUserKeys(user_id);
  if (!registered.ok()) return registered.error();
  for (const auto& k : registered.value()) keys.push_back(k.public_key);
  return keys;
}

Result<int64_t> SessionDirectory::connectionStarted(const ConnectionRecord& c) { return store_.insertConnection(c); }

Status SessionDirectory::connectionEnded(int64_t id, const ConnectionRecord& c) {
  ConnectionRecord done = c;
  done.id = id;
  return store_.finishConnection(done);
}

}  // namespace sandman
