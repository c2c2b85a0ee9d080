// Reconciliation: the store against Docker and NVML, at start-up (repairing
// whatever a crash left) and periodically (what changed behind our back).
#include <map>
#include <set>

#include "common/fault_point.h"
#include "common/log.h"
#include "core/session_manager.h"

namespace sandman {
namespace {

// Why a running session whose container does not run is ended. A container
// that is still there stopped behind our back (dockerd restarted without
// live-restore, an OOM kill, `docker stop`); it is not started again, since
// what ran in it is gone, and its user is better told than handed an empty
// shell. Only seen from a reply of Docker: an unreachable Docker ends nothing.
std::string notRunningReason(const WorkloadInfo* c, const std::string& engine) {
  if (c == nullptr) return "container gone";
  std::string reason = "container stopped outside Sandman (" + engine + " state: " + (c->state.empty() ? "unknown" : c->state);
  if (c->exit_code >= 0) reason += ", exit code " + std::to_string(c->exit_code);
  return reason + ")";
}

}  // namespace

Status SessionManager::reconcile(ReconcileMode mode) {
  // A follower removes nothing: pods it does not know are the leader's.
  if (!mayMutate().ok()) return {};
  auto containers = runtime_.listOurs();
  if (!containers.ok()) return containers.error();
  auto active = store_.activeSessions();
  if (!active.ok()) return active.error();

  std::set<std::string> live_ids;
  for (const auto& s : active.value()) live_ids.insert(s.id);
  std::map<std::string, WorkloadInfo> by_session;
  for (const auto& c : containers.value()) {
    const std::string& sid = c.session_id;
    if (live_ids.count(sid)) {
      by_session[sid] = c;
      continue;
    }
    logWarn("removing orphan container", {{"container", c.id.substr(0, 12)}, {"session", sid}});
    countRepair(kOrphanContainer);
    (void)runtime_.stop(c.id);
    SANDMAN_FAULT_POINT("reconcile.orphan_removed");
  }
  for (auto s : active.value()) {
    auto it = by_session.find(s.id);
    bool alive = it != by_session.end() && it->second.running;
    if (s.status == SessionStatus::kStarting || s.status == SessionStatus::kPending) {
      if (mode == ReconcileMode::kPeriodic) continue;  // a create is in flight
      // The daemon died mid-create: nobody is waiting for this session any
      // more. Its container may not be recorded yet: remove it by label.
      if (it != by_session.end()) (void)runtime_.stop(it->second.id);
      countRepair(kInterruptedCreate);
      SANDMAN_FAULT_POINT("reconcile.failing_interrupted_create");
      fail(s, "daemon restarted while the session was starting");
    } else if (s.status == SessionStatus::kStopping) {
      // Claimed here only if no stop in this process is working on it (a
      // periodic pass overlapping a slow `docker rm` must not run it twice).
      auto claim = claimEnd(s, s.end_reason.empty() ? "deleted" : s.end_reason);
      if (!claim.ok() || claim.value() != EndClaim::kWon) continue;
      countRepair(kInterruptedStop);
      SANDMAN_FAULT_POINT("reconcile.finishing_interrupted_stop");
      finishEnded(s, SessionStatus::kEnded, s.end_reason.empty() ? "deleted" : s.end_reason);
    } else if (!alive) {
      const std::string reason =
          notRunningReason(it == by_session.end() ? nullptr : &it->second, runtime_.engineName());
      logWarn(it == by_session.end() ? "session container gone; ending session"
                                     : "session container stopped (dockerd restarted without live-restore?); ending session",
              {{"session", s.id}, {"user", s.user_id}, {"reason", reason}});
      countRepair(kContainerGone);
      (void)stop(s.id, reason);
    }
  }
  reconcileGpus();
  reapExpired(clock_.now());
  notifySchedule();
  return {};
}

// Destroys dynamic instances whose session ended without releasing them
// (rows written before a session kept its slice until released), and ends
// running sessions whose slice vanished.
void SessionManager::reconcileGpus() {
  if (!gpus_.enabled()) return;
  // Only the rows that still hold an instance (a partial index), not history.
  auto leaked = store_.endedSessionsHoldingGpu();
  if (!leaked.ok()) return;
  for (auto s : leaked.value()) {
    if (isActive(s.status) || !s.gpu || !s.gpu->created || s.gpu->released) continue;
    const SessionStatus was = s.status;
    if (auto st = gpus_.release(s); !st.ok()) {
      logWarn("leaked MIG instance not destroyed yet", {{"session", s.id}, {"error", st.error().message}});
      continue;
    }
    countRepair(kLeakedInstance);
    std::lock_guard lock(transition_mu_);
    (void)store_.updateSessionIf(s, was);
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

}  // namespace sandman
