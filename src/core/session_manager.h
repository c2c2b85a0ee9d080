// SessionManager: the session lifecycle (create, stop, TTL changes, expiry,
// start-up reconciliation). Every transition is written to the store before
// Docker is touched, so a crash anywhere is repaired by reconcile().
// Thread-safe: every transition is a compare-and-set on the session's status
// in the store (serialised in-process by transition_mu_); Docker and NVML
// calls and readiness waits run outside the lock, by the one claim holder.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <array>
#include <atomic>
#include <map>
#include <set>

#include "common/clock.h"
#include "common/histogram.h"
#include "common/result.h"
#include "core/gpu_leases.h"
#include "core/port_allocator.h"
#include "model/session.h"
#include "runtime/runtime.h"
#include "ssh/gateway_keyring.h"
#include "ssh/sshd_files.h"
#include "store/store.h"
#include "workspace/workspace_manager.h"

namespace sandman {

struct SessionSettings {
  std::string default_image = "sandman-workspace:latest";
  std::vector<std::string> allowed_images;  // images a request may name; empty: any
  std::string ssh_bind = "0.0.0.0";  // where direct ports listen (checked free before one is handed out)
  PortRange ports;
  Millis ttl_default = std::chrono::minutes(60);
  Millis ttl_max = std::chrono::minutes(1440);
  int64_t memory_bytes = 0;
  int64_t nano_cpus = 0;
  int64_t pids_limit = 0;
  Millis ready_timeout = std::chrono::seconds(60);
  Millis ready_poll = std::chrono::milliseconds(5);
  int reap_workers = 4;  // expired sessions stopped in parallel, at most
  // Written into each session's sshd_config (--allow-agent-forwarding,
  // --allow-remote-forwarding): both ways in, direct port and gateway.
  bool allow_agent_forwarding = false;
  bool allow_remote_forwarding = false;
};

struct CreateRequest {
  std::string user_id;
  std::optional<Millis> ttl;
  std::optional<std::string> image;
  std::optional<std::string> ssh_public_key;
  SlotRequest gpu;  // mig_profile / mig_instance_uuid; neither: the default slice (if the host has GPUs)
  std::optional<std::string> project{};  // who pays; none: the user's first project
};

// Who pays for a session, fixed at create.
struct SessionPayer {
  std::string team;
  std::string project;
};

struct CreatedSession {
  Session session;
  std::optional<std::string> ssh_private_key;  // only when Sandman generated the pair
  std::optional<NeedChoice> allocation;        // a request by gpu_memory_gb: what was chosen and why
};

// What became of one create request: the demand record's input (accepted,
// or refused for GPU / port capacity or for a budget). Bad input is no demand.
enum class DemandOutcome { kAccepted, kRefusedCapacity, kRefusedBudget };
const char* toString(DemandOutcome o);
struct DemandEvent {
  TimePoint at{};
  std::string user_id;
  std::optional<std::string> project;  // as asked; the team and project paid are filled where known
  std::string team;
  std::string paying_project;
  SlotRequest gpu;
  DemandOutcome outcome = DemandOutcome::kAccepted;
  std::string session_id;       // accepted only
  std::string granted_profile;  // accepted only: "3g.40gb", "whole", "" (no GPU)
  std::string gpu_model;        // accepted only
  std::string reason;           // refused only: the error message
};

// Readiness check of a session's sshd (ssh/kexinit_probe.h in production);
// injected so lifecycle tests can run without a network.
using ReadyProbe = std::function<Status(const std::string& host, int port, Millis timeout)>;

class SessionManager {
 public:
  SessionManager(SessionSettings settings, Store& store, Runtime& runtime,
                 WorkspaceManager& workspaces, SshdFiles& sshd_files, const GatewayKeyring& keyring,
                 const GpuLeases& gpus, const Clock& clock, ReadyProbe probe);

  // Reserves (store), then creates the workspace, files and container, and
  // returns once the container's sshd completes a handshake.
  Result<CreatedSession> create(const CreateRequest& req);
  Result<Session> get(const std::string& id);
  // Newest first, one page (filter.limit rows after filter.after).
  Result<std::vector<Session>> list(const SessionFilter& filter);
  // Sessions that may hold a port or GPU slice (pending to stopping), oldest first.
  Result<std::vector<Session>> active();
  // Counts by status and active users, without reading the sessions.
  Result<SessionCounts> counts();
  // Gateway connections of a session, newest first (kNotFound for an unknown session).
  Result<std::vector<ConnectionRecord>> connections(const std::string& id, const RowPage& page = {});
  // Idle-policy decisions about a session, oldest first (kNotFound for an unknown session).
  Result<std::vector<SessionEvent>> events(const std::string& id, const RowPage& page = {});
  // Stops a session (container removed, workspace kept). Exactly one caller
  // ends a session: stopping one that is ended, or that another caller is
  // ending right now, returns it as it stands and does nothing.
  Result<Session> stop(const std::string& id, const std::string& reason);
  Result<std::vector<Session>> stopAll(const std::string& reason);
  // Sets the time left to `ttl` from now (extend or shorten).
  Result<Session> setTtl(const std::string& id, Millis ttl);
  // Moves a running session's expiry to new_expires only if it is still
  // expected_expires (compare-and-set): an automatic extension computed
  // from a stale read never undoes an admin's change (kConflict instead).
  Result<Session> extendIf(const std::string& id, TimePoint expected_expires, TimePoint new_expires);

  // Removes labelled containers without a live session, ends sessions whose
  // container is gone, finishes interrupted stops, and reaps expired ones.
  // At start-up, sessions caught mid-create are failed too; periodically
  // they are left to the create in flight.
  enum class ReconcileMode { kStartup, kPeriodic };
  Status reconcile(ReconcileMode mode = ReconcileMode::kStartup);

  // Replicas (Kubernetes, two daemons): brings the sessions the cluster
  // records into this store. Adopts running ones this store does not know
  // (after a failover, the previous leader's). A follower also ends here
  // what has no pod any more and takes the recorded expiry; a leader instead
  // records its expiry where the pod's differs. Touches only this store (and
  // the keyring) on a follower.
  struct ClusterSync {
    int adopted = 0;
    int ended = 0;
    int expiries = 0;
  };
  Result<ClusterSync> syncFromCluster(bool leading);
  // Asked before every mutation (create, stop, TTL change, reaping,
  // reconciliation): a non-ok status refuses it; reconciliation and reaping
  // are then skipped quietly. Replicas: ok only on the leader once it has
  // synced. Set before serving.
  void setMutationGate(std::function<Status()> fn) { gate_ = std::move(fn); }
  // Earliest expires_at among sessions that can still expire.
  std::optional<TimePoint> nextExpiry();
  // Stops every session whose expires_at <= now; returns how many.
  int reapExpired(TimePoint now);

  // Called whenever an expiry changes, so the reaper can re-arm its timer.
  void setScheduleListener(std::function<void()> fn) { on_schedule_ = std::move(fn); }
  // Called when a session has ended (the gateway closes its connections).
  void setEndListener(std::function<void(const std::string& id, const std::string& reason)> fn) {
    on_end_ = std::move(fn);
  }
  // Called once a session's end is recorded (ended or failed), outside every
  // lock: the cost ledger books it.
  void setEndedListener(std::function<void(const Session&)> fn) { on_ended_ = std::move(fn); }
  // Called once per create request that is demand (see DemandEvent), on the
  // request's thread, outside every lock. Set before serving.
  void setDemandListener(std::function<void(const DemandEvent&)> fn) { on_demand_ = std::move(fn); }
  // Called after every recorded change of a session (created, each status
  // step, a new expiry, its end), possibly under the transition lock: it must
  // only queue (the event stream). Set before serving.
  // `created` is true for the first record of a session.
  void setChangeListener(std::function<void(const Session&, bool created)> fn) { on_change_ = std::move(fn); }
  // Asked before anything is reserved: a non-ok status (kNoSpace when the
  // state or workspace file system is below --min-free-disk) refuses the
  // create with nothing changed. Set before serving.
  void setSpaceCheck(std::function<Status()> fn) { space_check_ = std::move(fn); }
  // Whether the host takes new sessions (an admin put it in maintenance):
  // asked before anything is reserved; a non-ok status refuses the create
  // with nothing changed. Unset: always. Set before serving.
  void setHostCheck(std::function<Status()> fn) { host_check_ = std::move(fn); }
  // Who pays for a new session (team, project) and whether it may start at
  // all (budgets); asked before anything is reserved. Unset: nobody pays.
  void setPayerCheck(std::function<Result<SessionPayer>(const CreateRequest&)> fn) { payer_check_ = std::move(fn); }
  // Asked before a live session's expiry moves later (an admin's TTL change
  // or an automatic extension); a non-ok status refuses it. Shortening is
  // never refused.
  void setExtendCheck(std::function<Status(const Session&)> fn) { extend_check_ = std::move(fn); }
  // The pre-login banner a new session of this user gets (e.g. a workspace
  // over its quota, or a quota this host cannot enforce); empty: none.
  void setLoginBanner(std::function<std::string(const std::string& user_id)> fn) { banner_ = std::move(fn); }
  const SessionSettings& settings() const { return settings_; }
  // Seconds from a create request to a session whose sshd answered (successes only).
  const Histogram& createSeconds() const { return create_seconds_; }
  // What reconciliation had to repair since start, by kind ("orphan_container",
  // "container_gone", "interrupted_create", "interrupted_stop",
  // "leaked_instance", "vanished_slice").
  std::map<std::string, uint64_t> reconcileRepairs() const;
  const WorkspaceManager& workspaces() const { return workspaces_; }
  const GpuLeases& gpus() const { return gpus_; }

 private:
  // `capacity` is set when the refusal was for want of a GPU slice or port.
  Result<Session> reserve(const CreateRequest& req, const std::vector<GpuInfo>& gpus,
                          const std::string& host_public_key, const std::string& user_key,
                          const SessionPayer& payer, UserAccount* account, NeedChoice* chosen, bool* capacity);
  void recordDemand(const CreateRequest& req, DemandOutcome outcome, const Session* s, const std::string& reason,
                    const SessionPayer& payer);
  // Creates the dynamic MIG instance and records it, unless the session left
  // `starting` meanwhile (then the instance is destroyed again).
  Status materializeGpu(Session& s);
  void reconcileGpus();
  Status mayMutate() const { return gate_ ? gate_() : Status(); }
  void recordExpiry(const Session& s);
  Status adopt(const RecordedSession& r);
  Status startContainer(Session& s, const UserAccount& account, const std::string& host_private_key,
                        const std::string& gateway_private_key,
                        const std::string& gateway_public_key);
  Status waitReady(const Session& s);
  Status scheduledGpuRequest(const SlotRequest& req, Session& s) const;
  SessionWorkload workload(const Session& s, const UserAccount& account, const std::string& files_dir) const;
  // Records the container id unless the session left `starting` meanwhile.
  Status recordContainer(Session& s, const std::string& container_id);
  // What an engine that schedules GPUs itself (Kubernetes) says about the
  // device once the workload runs: its UUID and its GPU's model, where known.
  struct LearnedGpu {
    std::optional<std::string> uuid;
    std::string model;
  };
  LearnedGpu learnedGpu(const Session& s);
  Status markRunning(Session& s, LearnedGpu learned = {});
  // Who may end a session: kWon (this caller, now holding its claim), kEnded
  // (ended or failed already), kInProgress (another caller is ending it).
  enum class EndClaim { kWon, kEnded, kInProgress };
  // Moves `s` (re-read from the store) to `stopping` by compare-and-set and
  // takes the in-process claim on it; a `stopping` session nobody in this
  // process works on is claimed as it is (a retry after an error or crash).
  Result<EndClaim> claimEnd(Session& s, const std::string& reason);
  void releaseClaim(const std::string& id);
  Error endedWhileStarting(const std::string& id);
  Result<CreatedSession> failCreate(Session& s, const std::string& what, const Error& e);
  void fail(Session& s, const std::string& reason);
  // The caller holds the claim on `s`; released here.
  void finishEnded(Session& s, SessionStatus final_status, const std::string& reason);
  void notifySchedule();

  SessionSettings settings_;
  Store& store_;
  Runtime& runtime_;
  WorkspaceManager& workspaces_;
  SshdFiles& sshd_files_;
  const GatewayKeyring& keyring_;
  const GpuLeases& gpus_;
  const Clock& clock_;
  ReadyProbe probe_;
  PortAllocator ports_;
  std::function<Status()> space_check_;
  std::function<Status()> host_check_;
  std::function<Status()> gate_;
  std::function<Result<SessionPayer>(const CreateRequest&)> payer_check_;
  std::function<Status(const Session&)> extend_check_;
  std::function<std::string(const std::string&)> banner_;
  std::function<void()> on_schedule_;
  std::function<void(const std::string&, const std::string&)> on_end_;
  std::function<void(const Session&)> on_ended_;
  std::function<void(const DemandEvent&)> on_demand_;
  std::function<void(const Session&, bool)> on_change_;
  void notifyChanged(const Session& s, bool created = false) const {
    if (on_change_) on_change_(s, created);
  }
  std::mutex transition_mu_;  // serialises read-check-write of a session's status
  std::set<std::string> finishing_;  // sessions whose end path runs now; GUARDED_BY(transition_mu_)
  Histogram create_seconds_{0.25, 0.5, 1, 2, 5, 10, 30, 60};
  enum Repair { kOrphanContainer, kContainerGone, kInterruptedCreate, kInterruptedStop, kLeakedInstance,
                kVanishedSlice, kRepairKinds };
  void countRepair(Repair r) { repairs_[r].fetch_add(1, std::memory_order_relaxed); }
  std::array<std::atomic<uint64_t>, kRepairKinds> repairs_{};
};

// "s-" followed by 16 random hex digits.
std::string newSessionId();
bool isSessionId(const std::string& s);

}  // namespace sandman
