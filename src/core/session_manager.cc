#include "core/session_manager.h"

#include <map>
#include <random>
#include <regex>
#include <set>

#include "common/fault_point.h"
#include "common/log.h"
#include "common/net.h"
#include "common/time_format.h"
#include "core/validation.h"
#include "model/image_name.h"
#include "ssh/keys.h"

namespace sandman {
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
  if (auto s = mayMutate(); !s.ok()) return s.error();
  if (auto s = validateTtl(req.ttl.value_or(settings_.ttl_default), settings_.ttl_max); !s.ok()) {
    return s.error();
  }
  if (req.image) {
    if (auto s = validateImageName(*req.image); !s.ok()) return s.error();
    // Before anything is reserved: a refused image leaves no failed session behind.
    if (auto s = checkImageAllowed(*req.image, settings_.allowed_images); !s.ok()) return s.error();
  }
  // Refused before keys, ports or a GPU slice are touched: a session that
  // cannot write its workspace or its store rows would only fail later.
  if (space_check_) {
    if (auto s = space_check_(); !s.ok()) return s.error();
  }
  if (host_check_) {
    if (auto s = host_check_(); !s.ok()) return s.error();
  }
  SessionPayer payer;
  if (payer_check_) {
    auto p = payer_check_(req);
    if (!p.ok()) {
      if (p.error().kind == ErrorKind::kOverBudget) {
        recordDemand(req, DemandOutcome::kRefusedBudget, nullptr, p.error().message, payer);
      }
      return p.error();
    }
    payer = std::move(p).value();
  } else if (req.project) {
    return invalid("this daemon keeps no projects: leave project out");
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
  NeedChoice chosen;
  bool capacity = false;
  auto reserved = reserve(req, gpus.value(), host->public_line, user_key, payer, &account, &chosen, &capacity);
  if (!reserved.ok()) {
    if (capacity) recordDemand(req, DemandOutcome::kRefusedCapacity, nullptr, reserved.error().message, payer);
    return reserved.error();
  }
  Session s = std::move(reserved).value();
  recordDemand(req, DemandOutcome::kAccepted, &s, "", payer);
  if (req.gpu.gpu_memory_gb && s.gpu) out.allocation = std::move(chosen);
  notifySchedule();
  logInfo("session reserved", {{"session", s.id}, {"user", s.user_id}, {"port", std::to_string(s.ssh_port)},
                               {"gpu", s.gpu ? s.gpu->profile + "@" + std::to_string(s.gpu->gpu_index) : "none"}});

  SANDMAN_FAULT_POINT("create.reserved");
  if (auto st = materializeGpu(s); !st.ok()) return failCreate(s, "GPU slice: ", st.error());
  SANDMAN_FAULT_POINT("create.gpu_recorded");
  if (auto st = keyring_.put(s.id, gateway->private_openssh); !st.ok()) {
    return failCreate(s, "gateway key: ", st.error());
  }
  SANDMAN_FAULT_POINT("create.key_written");
  if (auto st = startContainer(s, account, host->private_openssh, gateway->private_openssh, gateway->public_line); !st.ok()) {
    return failCreate(s, "start failed: ", st.error());
  }
  SANDMAN_FAULT_POINT("create.container_started");
  if (auto st = waitReady(s); !st.ok()) return failCreate(s, "not ready: ", st.error());
  if (auto st = markRunning(s, learnedGpu(s)); !st.ok()) return st.error();
  SANDMAN_FAULT_POINT("create.running");
  create_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  logInfo("session running", {{"session", s.id}, {"user", s.user_id}, {"container", s.container_id.substr(0, 12)}});
  out.session = std::move(s);
  return out;
}

const char* toString(DemandOutcome o) {
  switch (o) {
    case DemandOutcome::kAccepted: return "accepted";
    case DemandOutcome::kRefusedCapacity: return "refused_capacity";
    case DemandOutcome::kRefusedBudget: return "refused_budget";
  }
  return "accepted";
}

void SessionManager::recordDemand(const CreateRequest& req, DemandOutcome outcome, const Session* s,
                                  const std::string& reason, const SessionPayer& payer) {
  if (!on_demand_) return;
  DemandEvent e;
  e.at = s != nullptr ? s->created_at : clock_.now();
  e.user_id = req.user_id;
  e.project = req.project;
  e.team = payer.team;
  e.paying_project = payer.project;
  e.gpu = req.gpu;
  e.outcome = outcome;
  e.reason = reason;
  if (s != nullptr) {
    e.session_id = s->id;
    if (s->gpu) {
      e.granted_profile = s->gpu->profile;
      e.gpu_model = !s->gpu->model.empty() ? s->gpu->model : s->gpu->product;
    }
  }
  on_demand_(e);
}

Result<Session> SessionManager::reserve(const CreateRequest& req, const std::vector<GpuInfo>& gpus,
                                        const std::string& host_public_key, const std::string& user_key,
                                        const SessionPayer& payer, UserAccount* account, NeedChoice* chosen,
                                        bool* capacity) {
  Session s;
  s.id = newSessionId();
  s.user_id = req.user_id;
  s.status = SessionStatus::kStarting;
  s.image = req.image.value_or(settings_.default_image);
  s.user_public_key = user_key;
  s.host_public_key = host_public_key;
  s.created_at = clock_.now();
  s.expires_at = s.created_at + req.ttl.value_or(settings_.ttl_default);
  s.team = payer.team;
  s.project = payer.project;

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
    if (runtime_.directPorts()) {
      auto used = tx.activePorts();
      if (!used.ok()) return used.error();
      auto port = ports_.pick(used.value(), [&](int p) { return isTcpPortFree(bind, p); });
      if (!port) {
        *capacity = true;
        return conflict("no free SSH port in " + std::to_string(settings_.ports.start) + "-" +
                        std::to_string(settings_.ports.end) +
                        "; end a session or widen --ssh-port-start/--ssh-port-end");
      }
      s.ssh_port = *port;
    }
    if (runtime_.schedulesGpus()) {
      if (auto st = scheduledGpuRequest(req.gpu, s); !st.ok()) return st;
    } else if (req.gpu.gpu_product) {
      return invalid("gpu_product selects a GPU model on the Kubernetes backend; on Docker use mig_profile or "
                     "mig_instance_uuid");
    } else if (auto st = gpus_.reserve(tx, gpus, req.gpu, s, chosen); !st.ok()) {
      *capacity = st.error().kind == ErrorKind::kConflict;
      return st;
    }
    return tx.insertSession(s);
  });
  if (!st.ok()) return st.error();
  notifyChanged(s, true);
  return s;
}

// On an engine that schedules GPUs itself (Kubernetes), a session asks for a
// kind of slice and the scheduler finds a node with one free: only the
// request's shape is checked here, and the device is learned once it runs.
Status SessionManager::scheduledGpuRequest(const SlotRequest& req, Session& s) const {
  static const std::regex kProfile("^[1-7]g\\.[0-9]{1,4}gb$");
  static const std::regex kProduct("^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$");  // a label value
  if (req.gpu_memory_gb) {
    return invalid("gpu_memory_gb (allocation by need) is not supported on --backend kubernetes: the scheduler "
                   "places sessions there; ask for mig_profile (such as 1g.10gb, or whole) instead");
  }
  if (req.mig_instance_uuid) {
    return invalid("mig_instance_uuid names a device on this host; on Kubernetes ask for mig_profile (the "
                   "scheduler picks the node and the device plugin the device)");
  }
  if (req.gpu_product && !std::regex_match(*req.gpu_product, kProduct)) {
    return invalid("gpu_product must be a GPU feature discovery product label value such as "
                   "NVIDIA-H100-80GB-HBM3 (letters, digits, '.', '_', '-'; at most 63)");
  }
  if (!req.mig_profile) {
    if (req.gpu_product) return invalid("gpu_product needs mig_profile (a MIG profile such as 1g.10gb, or whole)");
    return {};  // a CPU-only session
  }
  GpuSlot slot;
  if (*req.mig_profile == "whole") {
    slot.whole = true;
    slot.profile = "whole";
  } else if (std::regex_match(*req.mig_profile, kProfile)) {
    slot.profile = *req.mig_profile;
  } else {
    return invalid("mig_profile must be a full MIG profile name such as 1g.10gb or 3g.40gb (the device plugin's "
                   "nvidia.com/mig-<profile> resource), or whole for a whole GPU");
  }
  slot.product = req.gpu_product.value_or("");
  slot.attach = "scheduler";
  s.gpu = std::move(slot);
  return {};
}

SessionWorkload SessionManager::workload(const Session& s, const UserAccount& account,
                                         const std::string& files_dir) const {
  SessionWorkload w;
  w.session_id = s.id;
  w.user_id = s.user_id;
  w.image = s.image;
  w.uid = account.uid;
  w.gid = account.gid;
  w.sshd_files_dir = files_dir;
  if (runtime_.hostWorkspaces()) w.workspace_dir = workspaces_.pathFor(s.user_id);
  w.env = {"HOME=/workspace", "USER=" + s.user_id, "SANDMAN_SESSION_ID=" + s.id};
  w.expires_at = s.expires_at;
  w.created_at = s.created_at;
  w.user_public_key = s.user_public_key;
  w.host_public_key = s.host_public_key;
  w.direct_port = s.ssh_port;
  w.memory_bytes = settings_.memory_bytes;
  w.nano_cpus = settings_.nano_cpus;
  w.pids_limit = settings_.pids_limit;
  gpus_.attach(s, w);
  if (runtime_.schedulesGpus() && s.gpu) {
    w.gpu_resource = s.gpu->whole ? "nvidia.com/gpu" : "nvidia.com/mig-" + s.gpu->profile;
    w.gpu_product = s.gpu->product;
  }
  return w;
}

Status SessionManager::startContainer(Session& s, const UserAccount& account,
                                      const std::string& host_private_key,
                                      const std::string& gateway_private_key,
                                      const std::string& gateway_public_key) {
  if (runtime_.hostWorkspaces()) {
    auto ws = workspaces_.ensure(account);
    if (!ws.ok()) return ws.error();
  }
  std::vector<std::string> login_env = {"SANDMAN_SESSION_ID=" + s.id};
  if (s.gpu_uuid) {
    login_env.push_back("NVIDIA_VISIBLE_DEVICES=" + *s.gpu_uuid);
    login_env.push_back("NVIDIA_DRIVER_CAPABILITIES=compute,utility");
  }
  auto dir = sshd_files_.write(s.id, {account, host_private_key, {s.user_public_key, gateway_public_key}, login_env,
                                      settings_.allow_agent_forwarding, settings_.allow_remote_forwarding,
                                      banner_ ? banner_(s.user_id) : std::string()});
  if (!dir.ok()) return dir.error();
  SessionWorkload w = workload(s, account, dir.value());
  w.gateway_private_key = gateway_private_key;
  auto id = runtime_.launch(w);
  if (!id.ok()) return id.error();
  // Launched, not recorded yet: start-up reconciliation finds it by its session label.
  SANDMAN_FAULT_POINT("create.container_created");
  return recordContainer(s, id.value());
}

Status SessionManager::materializeGpu(Session& s) {
  if (!s.gpu || !s.gpu->created) return {};
  Session made = s;
  if (auto st = gpus_.materialize(made); !st.ok()) return st;
  std::lock_guard lock(transition_mu_);
  auto cur = store_.getSession(s.id);
  if (cur.ok() && cur->status == SessionStatus::kStarting) {
    Session next = cur.value();
    next.gpu_uuid = made.gpu_uuid;
    next.gpu = made.gpu;
    auto won = store_.updateSessionIf(next, SessionStatus::kStarting);
    if (!won.ok()) return won.error();
    if (won.value()) {
      s = std::move(next);
      notifyChanged(s);
      return {};
    }
  }
  // Ended while NVML was creating it: nobody else knows this instance.
  (void)gpus_.release(made);
  return endedWhileStarting(s.id);
}

Status SessionManager::recordContainer(Session& s, const std::string& container_id) {
  std::lock_guard lock(transition_mu_);
  auto cur = store_.getSession(s.id);
  if (cur.ok() && cur->status == SessionStatus::kStarting) {
    Session next = cur.value();
    next.container_id = container_id;
    auto won = store_.updateSessionIf(next, SessionStatus::kStarting);
    if (!won.ok()) return won.error();
    if (won.value()) {
      s = std::move(next);
      notifyChanged(s);
      return {};
    }
  }
  // Deleted or expired while we were creating it: the container is ours to remove.
  (void)runtime_.stop(container_id);
  return endedWhileStarting(s.id);
}

// What the creator of a session that someone ended meanwhile is told: 409
// with the reason (e.g. "deleted"), never the error its own start ran into
// because the container was removed under it.
Error SessionManager::endedWhileStarting(const std::string& id) {
  auto cur = store_.getSession(id);
  std::string why = cur.ok() ? cur->end_reason : std::string("gone");
  return conflict("session " + id + " was ended while starting (" + (why.empty() ? "deleted" : why) +
                  "); create it again if it is still wanted");
}

Result<CreatedSession> SessionManager::failCreate(Session& s, const std::string& what, const Error& e) {
  auto cur = store_.getSession(s.id);
  if (cur.ok() && cur->status != SessionStatus::kStarting) return endedWhileStarting(s.id);
  fail(s, what + e.message);
  return e;
}

Status SessionManager::waitReady(const Session& s) {
  const TimePoint deadline = clock_.now() + settings_.ready_timeout;
  Status last = unavailable("no answer yet");
  std::optional<WorkloadEndpoint> where;
  std::string waiting_for;
  for (int attempt = 1; clock_.now() < deadline; ++attempt) {
    // The engine is asked first and then now and then: a workload that cannot
    // start (no node fits, no image, sshd missing) never answers, and a
    // session deleted meanwhile will not either; notice both early, without
    // adding an engine round trip to every fast retry.
    if (!where || attempt % 20 == 0) {
      if (auto cur = store_.getSession(s.id); cur.ok() && cur->status != SessionStatus::kStarting) {
        return endedWhileStarting(s.id);
      }
      auto info = runtime_.inspect(s.container_id);
      if (info.ok() && !info->problem.empty()) {
        return Error{info->problem_kind, info->problem + (runtime_.directPorts() && !info->running
                                                              ? "; check that image " + s.image +
                                                                    " has /usr/sbin/sshd (images/workspace/build.sh builds one)"
                                                              : "")};
      }
      if (info.ok()) waiting_for = info->waiting_for;
      if (info.ok() && info->running) {
        auto ep = runtime_.endpoint(s.container_id, s.ssh_port);
        if (ep.ok()) where = ep.value();
      }
    }
    if (where) {
      last = probe_(where->host, where->port, std::chrono::seconds(2));
      if (last.ok()) return {};
    }
    clock_.sleepFor(settings_.ready_poll);
  }
  if (!where && !waiting_for.empty()) {
    return unavailable("the session was not ready within " + std::to_string(settings_.ready_timeout.count() / 1000) +
                       " s: " + waiting_for);
  }
  return unavailable("sshd in the session did not answer within " +
                     std::to_string(settings_.ready_timeout.count() / 1000) + " s: " + last.error().message);
}

SessionManager::LearnedGpu SessionManager::learnedGpu(const Session& s) {
  if (!runtime_.schedulesGpus() || !s.gpu) return {};
  auto info = runtime_.inspect(s.container_id);
  if (!info.ok()) return {};
  return {info->gpu_uuid, info->gpu_model};
}

Status SessionManager::markRunning(Session& s, LearnedGpu learned) {
  std::lock_guard lock(transition_mu_);
  auto cur = store_.getSession(s.id);
  if (!cur.ok()) return cur.error();
  Session next = cur.value();
  next.status = SessionStatus::kRunning;
  if (learned.uuid) next.gpu_uuid = std::move(learned.uuid);
  // A slot asked for by resource alone (any model) is priced by the model it landed on.
  if (next.gpu && next.gpu->model.empty() && !learned.model.empty()) next.gpu->model = std::move(learned.model);
  auto won = store_.updateSessionIf(next, SessionStatus::kStarting);
  if (!won.ok()) return won.error();
  if (!won.value()) return endedWhileStarting(s.id);
  s = std::move(next);
  notifyChanged(s);
  return {};
}

Result<Session> SessionManager::get(const std::string& id) { return store_.getSession(id); }

Result<std::vector<Session>> SessionManager::list(const SessionFilter& filter) {
  return store_.listSessions(filter);
}

Result<std::vector<Session>> SessionManager::active() { return store_.activeSessions(); }

Result<SessionCounts> SessionManager::counts() { return store_.sessionCounts(); }

Result<std::vector<ConnectionRecord>> SessionManager::connections(const std::string& id, const RowPage& page) {
  if (auto s = store_.getSession(id); !s.ok()) return s.error();
  return store_.listConnections(id, page);
}

Result<std::vector<SessionEvent>> SessionManager::events(const std::string& id, const RowPage& page) {
  if (auto s = store_.getSession(id); !s.ok()) return s.error();
  return store_.listSessionEvents(id, page);
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
