#include "core/session_manager.h"

#include <map>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "common/log.h"
#include "common/net.h"
#include "common/time_format.h"
#include "core/validation.h"
#include "ssh/keys.h"

namespace sandman {
namespace {

constexpr const char* kSessionLabel = "sandman.session";
constexpr const char* kInstanceLabel = "sandman.instance";

std::string probeHost(const std::string& bind) {
  return (bind == "0.0.0.0" || bind.empty()) ? "127.0.0.1" : bind;
}

}  // namespace

std::string newSessionId() {
  std::random_device rd;
  std::uniform_int_distribution<int> hex(0, 15);
  std::string id = "s-";
  for (int i = 0; i < 16; ++i) id += "0123456789abcdef"[hex(rd)];
  return id;
}

bool isSessionId(const std::string& s) {
  static const std::regex kId("^s-[0-9a-f]{16}$");
  return std::regex_match(s, kId);
}

SessionManager::SessionManager(SessionSettings settings, Store& store, Runtime& runtime,
                               WorkspaceManager& workspaces, SshdFiles& sshd_files,
                               const GatewayKeyring& keyring, const GpuLeases& gpus, const Clock& clock,
                               ReadyProbe probe)
    : settings_(std::move(settings)),
      store_(store),
      runtime_(runtime),
      workspaces_(workspaces),
      sshd_files_(sshd_files),
      keyring_(keyring),
      gpus_(gpus),
      clock_(clock),
      probe_(std::move(probe)),
      ports_(settings_.ports) {}

Result<CreatedSession> SessionManager::create(const CreateRequest& req) {
  const auto started = std::chrono::steady_clock::now();
  if (auto s = validateUserId(req.user_id); !s.ok()) return s.error();
  if (auto s = validateTtl(req.ttl.value_or(settings_.ttl_default), settings_.ttl_max); !s.ok()) {
    return s.error();
  }
  if (req.image) {
    if (auto s = validateImageName(*req.image); !s.ok()) return s.error();
  }
  CreatedSession out;
  std::string user_key;
  if (req.ssh_public_key) {
    auto parsed = parsePublicKeyLine(*req.ssh_public_key);
    if (!parsed.ok()) return parsed.error();
    user_key = parsed.value();
  } else {
    auto pair = generateEd25519("sandman-" + req.user_id);
    if (!pair.ok()) return pair.error();
    user_key = pair->public_line;
    out.ssh_private_key = pair->private_openssh;
  }
  auto host = generateEd25519("sandman-host");
  if (!host.ok()) return host.error();
  // The gateway's own way into this session; the user's key never leaves them.
  auto gateway = generateEd25519("sandman-gateway");
  if (!gateway.ok()) return gateway.error();

  auto gpus = gpus_.snapshot();
  if (!gpus.ok()) return gpus.error();
  UserAccount account;
  auto reserved = reserve(req, gpus.value(), host->public_line, user_key, &account);
  if (!reserved.ok()) return reserved.error();
  Session s = std::move(reserved).value();
  notifySchedule();
  logInfo("session reserved", {{"session", s.id}, {"user", s.user_id}, {"port", std::to_string(s.ssh_port)},
                               {"gpu", s.gpu ? s.gpu->profile + "@" + std::to_string(s.gpu->gpu_index) : "none"}});

  if (auto st = materializeGpu(s); !st.ok()) {
    fail(s, "GPU slice: " + st.error().message);
    return st.error();
  }
  if (auto st = keyring_.put(s.id, gateway->private_openssh); !st.ok()) {
    fail(s, "gateway key: " + st.error().message);
    return st.error();
  }
  if (auto st = startContainer(s, account, host->private_openssh, gateway->public_line); !st.ok()) {
    fail(s, "start failed: " + st.error().message);
    return st.error();
  }
  if (auto st = waitReady(s); !st.ok()) {
    fail(s, "not ready: " + st.error().message);
    return st.error();
  }
  if (auto st = markRunning(s); !st.ok()) return st.error();
  create_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  logInfo("session running", {{"session", s.id}, {"user", s.user_id}, {"container", s.container_id.substr(0, 12)}});
  out.session = std::move(s);
  return out;
}

Result<Session> SessionManager::reserve(const CreateRequest& req, const std::vector<GpuInfo>& gpus,
                                        const std::string& host_public_key, const std::string& user_key,
                                        UserAccount* account) {
  Session s;
  s.id = newSessionId();
  s.user_id = req.user_id;
  s.status = SessionStatus::kStarting;
  s.image = req.image.value_or(settings_.default_image);
  s.user_public_key = user_key;
  s.host_public_key = host_public_key;
  s.created_at = clock_.now();
  s.expires_at = s.created_at + req.ttl.value_or(settings_.ttl_default);

  const std::string bind = settings_.ssh_bind;
  Status st = store_.transaction([&](StoreTx& tx) -> Status {
    auto existing = tx.activeSessionForUser(s.user_id);
    if (!existing.ok()) return existing.error();
    if (existing.value()) {
      const Session& e = *existing.value();
      return conflict("user " + s.user_id + " already has session " + e.id + " (" + toString(e.status) +
                      ", expires " + formatRfc3339(e.expires_at) + "); delete it or extend it first");
    }
    auto acct = tx.ensureUser(s.user_id);
    if (!acct.ok()) return acct.error();
    *account = acct.value();
    auto used = tx.activePorts();
    if (!used.ok()) return used.error();
    auto port = ports_.pick(used.value(), [&](int p) { return isTcpPortFree(bind, p); });
    if (!port) {
      return conflict("no free SSH port in " + std::to_string(settings_.ports.start) + "-" +
                      std::to_string(settings_.ports.end) + "; end a session or widen --ssh-port-start/--ssh-port-end");
    }
    s.ssh_port = *port;
    if (auto st = gpus_.reserve(tx, gpus, req.gpu, s); !st.ok()) return st;
    return tx.insertSession(s);
  });
  if (!st.ok()) return st.error();
  return s;
}

ContainerSpec SessionManager::containerSpec(const Session& s, const UserAccount& account,
                                            const std::string& files_dir) const {
  ContainerSpec spec;
  spec.name = "sandman-" + s.user_id + "-" + s.id.substr(2, 8);
  spec.image = s.image;
  spec.user = std::to_string(account.uid) + ":" + std::to_string(account.gid);
  spec.hostname = "sandman-" + s.user_id;
  spec.working_dir = "/workspace";
  spec.cmd = {"/usr/sbin/sshd", "-D", "-e", "-f", std::string(kSshdDirInContainer) + "/sshd_config"};
  spec.env = {"HOME=/workspace", "USER=" + s.user_id, "SANDMAN_SESSION_ID=" + s.id};
  spec.labels = {{kSessionLabel, s.id}, {"sandman.user", s.user_id},
                 {kInstanceLabel, settings_.instance}};
  spec.binds = {{files_dir, kSshdDirInContainer, true},
                {files_dir + "/passwd", "/etc/passwd", true},
                {files_dir + "/group", "/etc/group", true},
                {workspaces_.pathFor(s.user_id), "/workspace", false}};
  spec.network = settings_.network;
  spec.publish_host_ip = settings_.ssh_bind;
  spec.publish_host_port = s.ssh_port;
  spec.container_port = kSshdPortInContainer;
  spec.memory_bytes = settings_.memory_bytes;
  spec.nano_cpus = settings_.nano_cpus;
  spec.pids_limit = settings_.pids_limit;
  gpus_.attach(s, spec);
  return spec;
}

Status SessionManager::startContainer(Session& s, const UserAccount& account,
                                      const std::string& host_private_key,
                                      const std::string& gateway_public_key) {
  auto ws = workspaces_.ensure(account);
  if (!ws.ok()) return ws.error();
  std::vector<std::string> login_env = {"SANDMAN_SESSION_ID=" + s.id};
  if (s.gpu_uuid) {
    login_env.push_back("NVIDIA_VISIBLE_DEVICES=" + *s.gpu_uuid);
    login_env.push_back("NVIDIA_DRIVER_CAPABILITIES=compute,utility");
  }
  auto dir = sshd_files_.write(s.id, {account, host_private_key, {s.user_public_key, gateway_public_key}, login_env,
                                      settings_.allow_agent_forwarding, settings_.allow_remote_forwarding});
  if (!dir.ok()) return dir.error();
  auto id = runtime_.createContainer(containerSpec(s, account, dir.value()));
  if (!id.ok()) return id.error();
  if (auto st = recordContainer(s, id.value()); !st.ok()) return st;
  return runtime_.startContainer(s.container_id);
}

Status SessionManager::materializeGpu(Session& s) {
  if (!s.gpu || !s.gpu->created) return {};
  Session made = s;
  if (auto st = gpus_.materialize(made); !st.ok()) return st;
  std::lock_guard lock(transition_mu_);
  auto cur = store_.getSession(s.id);
  if (!cur.ok() || cur->status != SessionStatus::kStarting) {
    (void)gpus_.release(made);
    return conflict("session " + s.id + " was ended while starting");
  }
  s = cur.value();
  s.gpu_uuid = made.gpu_uuid;
  s.gpu = made.gpu;
  return store_.updateSession(s);
}

Status SessionManager::recordContainer(Session& s, const std::string& container_id) {
  std::lock_guard lock(transition_mu_);
  auto cur = store_.getSession(s.id);
  if (!cur.ok() || cur->status != SessionStatus::kStarting) {
    // Deleted or expired while we were creating it: the container is ours to remove.
    (void)runtime_.removeContainer(container_id);
    return conflict("session " + s.id + " was ended while starting (" +
                    (cur.ok() ? cur->end_reason : std::string("gone")) + ")");
  }
  s = cur.value();
  s.container_id = container_id;
  return store_.updateSession(s);
}

Status SessionManager::waitReady(const Session& s) {
  const TimePoint deadline = std::chrono::system_clock::now() + settings_.ready_timeout;
  const std::string host = probeHost(settings_.ssh_bind);
  Status last = unavailable("no answer yet");
  for (int attempt = 1; std::chrono::system_clock::now() < deadline; ++attempt) {
    last = probe_(host, s.ssh_port, std::chrono::seconds(2));
    if (last.ok()) return {};
    // A container whose sshd cannot start never answers: notice it early,
    // without adding a Docker round trip to every fast retry.
    if (attempt % 20 != 0) {
      std::this_thread::sleep_for(settings_.ready_poll);
      continue;
    }
    auto cur = runtime_.inspectContainer(s.container_id);
    if (cur.ok() && !cur->running) {
      return unavailable("the session container exited during start-up; check that image " + s.image +
                         " has /usr/sbin/sshd (images/workspace/build.sh builds one)");
    }
  }
  return unavailable("sshd in the session container did not answer within " +
                     std::to_string(settings_.ready_timeout.count() / 1000) + " s: " + last.error().message);
}

Status SessionManager::markRunning(Session& s) {
  std::lock_guard lock(transition_mu_);
  auto cur = store_.getSession(s.id);
  if (!cur.ok()) return cur.error();
  if (cur->status != SessionStatus::kStarting) {
    return conflict("session " + s.id + " was ended while starting (" + cur->end_reason + ")");
  }
  s = cur.value();
  s.status = SessionStatus::kRunning;
  return store_.updateSession(s);
}

void SessionManager::fail(Session& s, const std::string& reason) {
  logWarn("session failed", {{"session", s.id}, {"user", s.user_id}, {"reason", reason}});
  std::string container;
  {
    std::lock_guard lock(transition_mu_);
    auto cur = store_.getSession(s.id);
    if (cur.ok()) s = cur.value();
    if (!isActive(s.status)) return;  // someone else ended it and cleaned up
    s.status = SessionStatus::kStopping;
    s.end_reason = reason;
    (void)store_.updateSession(s);
  }
  finishEnded(s, SessionStatus::kFailed, reason);
}

// Removes the container and files of a session already marked `stopping`,
// then records its final status. On a Docker error the session stays
// `stopping` and reconcile() retries.
void SessionManager::finishEnded(Session& s, SessionStatus final_status, const std::string& reason) {
  // First, so gateway users read why (e.g. "deleted") before their sshd goes away.
  if (on_end_) on_end_(s.id, reason);
  if (!s.container_id.empty()) {
    if (auto st = runtime_.removeContainer(s.container_id); !st.ok()) {
      logError("container removal failed; will retry", {{"session", s.id}, {"error", st.error().message}});
      return;
    }
  }
  (void)sshd_files_.remove(s.id);
  keyring_.remove(s.id);
  if (auto st = gpus_.release(s); !st.ok()) {
    // The session still ends; reconcile() destroys the instance later.
    logError("MIG instance not destroyed; will retry", {{"session", s.id}, {"error", st.error().message}});
  }
  std::lock_guard lock(transition_mu_);
  s.status = final_status;
  s.ended_at = clock_.now();
  s.end_reason = reason;
  if (auto st = store_.updateSession(s); !st.ok()) {
    logError("cannot record session end", {{"session", s.id}, {"error", st.error().message}});
  }
}

Result<Session> SessionManager::get(const std::string& id) { return store_.getSession(id); }

Result<std::vector<Session>> SessionManager::list(const SessionFilter& filter) {
  return store_.listSessions(filter);
}

Result<std::vector<ConnectionRecord>> SessionManager::connections(const std::string& id) {
  if (auto s = store_.getSession(id); !s.ok()) return s.error();
  return store_.listConnections(id);
}

Result<std::vector<SessionEvent>> SessionManager::events(const std::string& id) {
  if (auto s = store_.getSession(id); !s.ok()) return s.error();
  return store_.listSessionEvents(id);
}

Result<Session> SessionManager::stop(const std::string& id, const std::string& reason) {
  Session s;
  {
    std::lock_guard lock(transition_mu_);
    auto cur = store_.getSession(id);
    if (!cur.ok()) return cur.error();
    s = cur.value();
    if (!isActive(s.status)) return s;
    s.status = SessionStatus::kStopping;
    s.end_reason = reason;
    if (auto st = store_.updateSession(s); !st.ok()) return st.error();
  }
  finishEnded(s, SessionStatus::kEnded, reason);
  if (s.status == SessionStatus::kStopping) {
    return unavailable("could not remove the container of session " + id +
                       " (Docker error); it stays 'stopping' and is retried automatically");
  }
  logInfo("session ended", {{"session", s.id}, {"user", s.user_id}, {"reason", reason}});
  return s;
}

Result<std::vector<Session>> SessionManager::stopAll(const std::string& reason) {
  auto active = store_.activeSessions();
  if (!active.ok()) return active.error();
  std::vector<Session> out;
  for (const auto& s : active.value()) {
    auto r = stop(s.id, reason);
    if (!r.ok()) return r.error();
    out.push_back(r.value());
  }
  return out;
}

Result<Session> SessionManager::setTtl(const std::string& id, Millis ttl) {
  if (auto st = validateTtl(ttl, settings_.ttl_max); !st.ok()) return st.error();
  Session s;
  {
    std::lock_guard lock(transition_mu_);
    auto cur = store_.getSession(id);
    if (!cur.ok()) return cur.error();
    s = cur.value();
    if (s.status != SessionStatus::kRunning && s.status != SessionStatus::kStarting) {
      return conflict("session " + id + " is " + toString(s.status) + "; only a live session's TTL can change");
    }
    s.expires_at = clock_.now() + ttl;
    if (auto st = store_.updateSession(s); !st.ok()) return st.error();
  }
  notifySchedule();
  logInfo("session ttl changed", {{"session", s.id}, {"expires_at", formatRfc3339(s.expires_at)}});
  return s;
}

std::optional<TimePoint> SessionManager::nextExpiry() {
  auto active = store_.activeSessions();
  if (!active.ok()) return std::nullopt;
  std::optional<TimePoint> next;
  for (const auto& s : active.value()) {
    if (s.status == SessionStatus::kStopping) continue;
    if (!next || s.expires_at < *next) next = s.expires_at;
  }
  return next;
}

int SessionManager::reapExpired(TimePoint now) {
  auto active = store_.activeSessions();
  if (!active.ok()) return 0;
  std::vector<std::thread> stops;  // in parallel: one slow removal must not delay the others
  for (const auto& s : active.value()) {
    if (s.status == SessionStatus::kStopping || s.expires_at > now) continue;
    stops.emplace_back([this, id = s.id] { (void)stop(id, "expired"); });
  }
  for (auto& t : stops) t.join();
  return static_cast<int>(stops.size());
}

Status SessionManager::reconcile(ReconcileMode mode) {
  // Only this daemon's containers: several daemons (tests, staging) may share one dockerd.
  auto containers = runtime_.listContainers(std::string(kInstanceLabel) + "=" + settings_.instance);
  if (!containers.ok()) return containers.error();
  auto active = store_.activeSessions();
  if (!active.ok()) return active.error();

  std::set<std::string> live_ids;
  for (const auto& s : active.value()) live_ids.insert(s.id);
  std::map<std::string, ContainerInfo> by_session;
  for (const auto& c : containers.value()) {
    auto it = c.labels.find(kSessionLabel);
    std::string sid = it == c.labels.end() ? "" : it->second;
    if (live_ids.count(sid)) {
      by_session[sid] = c;
      continue;
    }
    logWarn("removing orphan container", {{"container", c.id.substr(0, 12)}, {"session", sid}});
    countRepair(kOrphanContainer);
    (void)runtime_.removeContainer(c.id);
  }
  for (auto s : active.value()) {
    auto it = by_session.find(s.id);
    bool alive = it != by_session.end() && it->second.running;
    if (s.status == SessionStatus::kStarting || s.status == SessionStatus::kPending) {
      if (mode == ReconcileMode::kPeriodic) continue;  // a create is in flight
      // The daemon died mid-create: nobody is waiting for this session any more.
      if (it != by_session.end()) (void)runtime_.removeContainer(it->second.id);
      countRepair(kInterruptedCreate);
      fail(s, "daemon restarted while the session was starting");
    } else if (s.status == SessionStatus::kStopping) {
      countRepair(kInterruptedStop);
      finishEnded(s, SessionStatus::kEnded, s.end_reason.empty() ? "deleted" : s.end_reason);
    } else if (!alive) {
      logWarn("session container gone; ending session", {{"session", s.id}, {"user", s.user_id}});
      countRepair(kContainerGone);
      (void)stop(s.id, "container gone");
    }
  }
  reconcileGpus();
  reapExpired(clock_.now());
  notifySchedule();
  return {};
}

// Destroys dynamic instances whose session has ended, and ends running
// sessions whose slice vanished.
void SessionManager::reconcileGpus() {
  if (!gpus_.enabled()) return;
  auto all = store_.listSessions({});
  if (!all.ok()) return;
  for (auto s : all.value()) {
    if (isActive(s.status) || !s.gpu || !s.gpu->created || s.gpu->released) continue;
    if (auto st = gpus_.release(s); !st.ok()) {
      logWarn("leaked MIG instance not destroyed yet", {{"session", s.id}, {"error", st.error().message}});
      continue;
    }
    countRepair(kLeakedInstance);
    std::lock_guard lock(transition_mu_);
    (void)store_.updateSession(s);
  }
  auto gpus = gpus_.snapshot();
  auto active = store_.activeSessions();
  if (!gpus.ok() || !active.ok()) return;
  for (const auto& id : gpus_.vanished(active.value(), gpus.value())) {
    logWarn("GPU slice of a running session vanished; ending it", {{"session", id}});
    countRepair(kVanishedSlice);
    (void)stop(id, "GPU slice gone");
  }
}

std::map<std::string, uint64_t> SessionManager::reconcileRepairs() const {
  static constexpr const char* kNames[kRepairKinds] = {"orphan_container", "container_gone", "interrupted_create",
                                                       "interrupted_stop", "leaked_instance", "vanished_slice"};
  std::map<std::string, uint64_t> out;
  for (int i = 0; i < kRepairKinds; ++i) out[kNames[i]] = repairs_[i].load(std::memory_order_relaxed);
  return out;
}

void SessionManager::notifySchedule() {
  if (on_schedule_) on_schedule_();
}

}  // namespace sandman
