// The end of a session: one caller wins the right to end it (a
// compare-and-set on its status in the store, plus an in-process lease while
// it is `stopping`), removes what it holds, and records how it ended.
#include <algorithm>
#include <atomic>
#include <thread>

#include "common/fault_point.h"
#include "common/log.h"
#include "common/time_format.h"
#include "core/session_manager.h"
#include "core/validation.h"

namespace sandman {

Result<SessionManager::EndClaim> SessionManager::claimEnd(Session& s, const std::string& reason) {
  std::lock_guard lock(transition_mu_);
  // A lost compare-and-set means another writer moved the session in
  // between (another daemon thread, or a create step): read it again.
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto cur = store_.getSession(s.id);
    if (!cur.ok()) return cur.error();
    s = cur.value();
    if (s.status == SessionStatus::kStopping) {
      // Left `stopping` by a finisher that hit an error, or by a crash: it
      // may be retried, but only by one caller at a time.
      if (finishing_.count(s.id)) return EndClaim::kInProgress;
      finishing_.insert(s.id);
      return EndClaim::kWon;
    }
    if (!canBeginEnd(s.status)) return EndClaim::kEnded;
    Session next = s;
    next.status = SessionStatus::kStopping;
    next.end_reason = reason;
    auto won = store_.updateSessionIf(next, s.status);
    if (!won.ok()) return won.error();
    if (won.value()) {
      s = std::move(next);
      notifyChanged(s);
      finishing_.insert(s.id);
      return EndClaim::kWon;
    }
  }
  return unavailable("session " + s.id + " keeps changing under this stop; try again");
}

void SessionManager::releaseClaim(const std::string& id) {
  std::lock_guard lock(transition_mu_);
  finishing_.erase(id);
}

void SessionManager::fail(Session& s, const std::string& reason) {
  logWarn("session failed", {{"session", s.id}, {"user", s.user_id}, {"reason", reason}});
  auto claim = claimEnd(s, reason);
  if (!claim.ok() || claim.value() != EndClaim::kWon) return;  // someone else ends it and cleans up
  finishEnded(s, SessionStatus::kFailed, reason);
}

// Removes the container, files, key and MIG instance of a session this
// caller has claimed, then records its final status. On an error the session
// stays `stopping` (still holding its port and slice, so nobody is handed
// them) and reconcile() retries.
void SessionManager::finishEnded(Session& s, SessionStatus final_status, const std::string& reason) {
  // First, so gateway users read why (e.g. "deleted") before their sshd goes away.
  if (on_end_) on_end_(s.id, reason);
  SANDMAN_FAULT_POINT("stop.claimed");
  if (!s.container_id.empty()) {
    if (auto st = runtime_.stop(s.container_id); !st.ok()) {
      logError("container removal failed; will retry", {{"session", s.id}, {"error", st.error().message}});
      releaseClaim(s.id);
      return;
    }
  }
  SANDMAN_FAULT_POINT("stop.container_removed");
  (void)sshd_files_.remove(s.id);
  keyring_.remove(s.id);
  SANDMAN_FAULT_POINT("stop.files_removed");
  if (auto st = gpus_.release(s); !st.ok()) {
    logError("MIG instance not destroyed; will retry", {{"session", s.id}, {"error", st.error().message}});
    releaseClaim(s.id);
    return;
  }
  {
    std::lock_guard lock(transition_mu_);
    Session next = s;
    next.status = final_status;
    next.ended_at = clock_.now();
    next.end_reason = reason;
    auto won = store_.updateSessionIf(next, SessionStatus::kStopping);
    if (!won.ok()) {
      logError("cannot record session end", {{"session", s.id}, {"error", won.error().message}});
    } else if (!won.value()) {
      // Only the claim holder writes a `stopping` session: a broken invariant.
      logError("session left 'stopping' under its finisher", {{"session", s.id}});
    } else {
      s = std::move(next);
      notifyChanged(s);
    }
    finishing_.erase(s.id);
  }
  SANDMAN_FAULT_POINT("stop.recorded");
  if (on_ended_ && (s.status == SessionStatus::kEnded || s.status == SessionStatus::kFailed)) on_ended_(s);
}

Result<Session> SessionManager::stop(const std::string& id, const std::string& reason) {
  if (auto st = mayMutate(); !st.ok()) return st.error();
  Session s;
  s.id = id;
  auto claim = claimEnd(s, reason);
  if (!claim.ok()) return claim.error();
  // Ended already, or being ended by another caller right now: that caller
  // does the work; this one reports where it stands.
  if (claim.value() != EndClaim::kWon) return s;
  finishEnded(s, SessionStatus::kEnded, s.end_reason.empty() ? reason : s.end_reason);
  if (s.status == SessionStatus::kStopping) {
    return unavailable("could not release session " + id +
                       " (Docker or NVML error); it stays 'stopping' and is retried automatically");
  }
  logInfo("session ended", {{"session", s.id}, {"user", s.user_id}, {"reason", s.end_reason}});
  return s;
}

Result<std::vector<Session>> SessionManager::stopAll(const std::string& reason) {
  if (auto st = mayMutate(); !st.ok()) return st.error();
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
  if (auto st = mayMutate(); !st.ok()) return st.error();
  Session s;
  {
    std::lock_guard lock(transition_mu_);
    auto cur = store_.getSession(id);
    if (!cur.ok()) return cur.error();
    s = cur.value();
    if (s.status != SessionStatus::kRunning && s.status != SessionStatus::kStarting) {
      return conflict("session " + id + " is " + toString(s.status) + "; only a live session's TTL can change");
    }
    const SessionStatus was = s.status;
    const TimePoint new_expires = clock_.now() + ttl;
    if (new_expires > s.expires_at && extend_check_) {
      if (auto st = extend_check_(s); !st.ok()) return st.error();
    }
    s.expires_at = new_expires;
    auto won = store_.updateSessionIf(s, was);
    if (!won.ok()) return won.error();
    if (!won.value()) return conflict("session " + id + " changed meanwhile; read it and try again");
    notifyChanged(s);
  }
  notifySchedule();
  recordExpiry(s);
  logInfo("session ttl changed", {{"session", s.id}, {"expires_at", formatRfc3339(s.expires_at)}});
  return s;
}

Result<Session> SessionManager::extendIf(const std::string& id, TimePoint expected_expires, TimePoint new_expires) {
  if (auto st = mayMutate(); !st.ok()) return st.error();
  Session s;
  {
    std::lock_guard lock(transition_mu_);
    auto cur = store_.getSession(id);
    if (!cur.ok()) return cur.error();
    s = cur.value();
    if (s.status != SessionStatus::kRunning) {
      return conflict("session " + id + " is " + toString(s.status) + "; only a running session is extended");
    }
    if (new_expires > s.expires_at && extend_check_) {
      if (auto st = extend_check_(s); !st.ok()) return st.error();
    }
    s.expires_at = new_expires;
    auto won = store_.updateSessionIf(s, SessionStatus::kRunning, expected_expires);
    if (!won.ok()) return won.error();
    if (!won.value()) {
      return conflict("the expiry of session " + id + " changed since it was read (an admin set it?); left as is");
    }
    notifyChanged(s);
  }
  notifySchedule();
  recordExpiry(s);
  return s;
}

// Beside the workload too (Kubernetes: the pod's annotation), so that a
// replica adopting the session after a failover keeps the new expiry. The
// store holds it already: a failure here is repaired by the leader's next
// sync with the cluster.
void SessionManager::recordExpiry(const Session& s) {
  if (s.container_id.empty()) return;
  if (auto st = runtime_.recordExpiry(s.container_id, s.expires_at); !st.ok()) {
    logWarn("session expiry not recorded beside its workload yet", {{"session", s.id}, {"error", st.error().message}});
  }
}

std::optional<TimePoint> SessionManager::nextExpiry() {
  // Only the one who may reap waits for expiries (a follower's mirror holds
  // expired sessions until the leader ends them).
  if (!mayMutate().ok()) return std::nullopt;
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
  if (!mayMutate().ok()) return 0;
  auto active = store_.activeSessions();
  if (!active.ok()) return 0;
  std::vector<std::string> due;
  for (const auto& s : active.value()) {
    if (s.status != SessionStatus::kStopping && s.expires_at <= now) due.push_back(s.id);
  }
  // A bounded pool: one slow removal must not delay the others, and a
  // thousand sessions expiring at once must not start a thousand threads.
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < due.size(); i = next++) (void)stop(due[i], "expired");
  };
  const size_t n = std::min<size_t>(due.size(), std::max(1, settings_.reap_workers));
  std::vector<std::thread> pool;
  for (size_t i = 1; i < n; ++i) pool.emplace_back(worker);
  if (!due.empty()) worker();
  for (auto& t : pool) t.join();
  return static_cast<int>(due.size());
}

}  // namespace sandman
