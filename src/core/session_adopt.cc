// Replicas: each daemon keeps its own store, and the cluster (pods' labels
// and annotations, the gateway key's Secret) is where they meet. A follower
// mirrors what the leader does there; a new leader adopts what the old one
// left, before it mutates anything, so a failover loses and doubles nothing.
#include <map>

#include "common/log.h"
#include "common/time_format.h"
#include "core/session_manager.h"

namespace sandman {
namespace {

// "nvidia.com/mig-1g.10gb" / "nvidia.com/gpu" back to the slot the store keeps.
std::optional<GpuSlot> slotFromResource(const std::string& resource, const std::string& product) {
  if (resource.empty()) return std::nullopt;
  GpuSlot slot;
  const std::string mig = "nvidia.com/mig-";
  if (resource.rfind(mig, 0) == 0) {
    slot.profile = resource.substr(mig.size());
  } else {
    slot.whole = true;
    slot.profile = "whole";
  }
  slot.product = product;
  slot.attach = "scheduler";
  return slot;
}

}  // namespace

Status SessionManager::adopt(const RecordedSession& r) {
  // The pod exists before its gateway Secret: a session still being created
  // (or whose create died half-way) is not adoptable yet.
  auto key = runtime_.gatewayKey(r.session_id);
  if (!key.ok()) return key.error();
  Session s;
  s.id = r.session_id;
  s.user_id = r.user_id;
  s.status = SessionStatus::kRunning;
  s.image = r.image;
  s.container_id = r.workload_id;
  s.user_public_key = r.user_public_key;
  s.host_public_key = r.host_public_key;
  s.gpu_uuid = r.gpu_uuid;
  s.gpu = slotFromResource(r.gpu_resource, r.gpu_product);
  // A slot asked for by resource alone is priced by the model it landed on,
  // as on the replica that created it.
  if (s.gpu && s.gpu->model.empty()) s.gpu->model = learnedGpu(s).model;
  s.created_at = r.created_at;
  s.expires_at = r.expires_at;
  if (auto st = keyring_.put(s.id, key.value()); !st.ok()) return st;
  Status st = store_.transaction([&](StoreTx& tx) -> Status {
    auto existing = tx.activeSessionForUser(s.user_id);
    if (!existing.ok()) return existing.error();
    if (existing.value()) {
      return conflict("user " + s.user_id + " already has session " + existing.value()->id + " in this store");
    }
    auto account = tx.adoptUser(s.user_id, r.uid, r.gid);
    if (!account.ok()) return account.error();
    return tx.insertSession(s);
  });
  if (!st.ok()) {
    keyring_.remove(s.id);
    return st;
  }
  logInfo("session adopted from the cluster", {{"session", s.id}, {"user", s.user_id}, {"pod", s.container_id},
                                               {"expires_at", formatRfc3339(s.expires_at)}});
  return {};
}

Result<SessionManager::ClusterSync> SessionManager::syncFromCluster(bool leading) {
  auto recorded = runtime_.recordedSessions();
  if (!recorded.ok()) return recorded.error();
  std::map<std::string, const RecordedSession*> by_id;
  for (const auto& r : recorded.value()) by_id[r.session_id] = &r;
  ClusterSync out;

  // A follower ends here what the leader ended there (its pod is gone),
  // before adopting: a user's new session must not meet their old one.
  // Store and keyring only; the leader removed everything else.
  if (!leading) {
    auto active = store_.activeSessions();
    if (!active.ok()) return active.error();
    for (const auto& s : active.value()) {
      if (s.status != SessionStatus::kRunning || by_id.count(s.id)) continue;
      Session next = s;
      next.status = SessionStatus::kEnded;
      next.ended_at = clock_.now();
      next.end_reason = "ended by the leader (its pod is gone)";
      {
        std::lock_guard lock(transition_mu_);
        auto won = store_.updateSessionIf(next, SessionStatus::kRunning, s.expires_at);
        if (!won.ok() || !won.value()) continue;
      }
      if (on_end_) on_end_(s.id, next.end_reason);
      (void)sshd_files_.remove(s.id);
      keyring_.remove(s.id);
      ++out.ended;
    }
  }

  for (const auto& r : recorded.value()) {
    if (!r.running) continue;  // an ended pod: the leader's reconciliation removes it
    auto cur = store_.getSession(r.session_id);
    if (cur.ok()) {
      const Session& s = cur.value();
      if (s.status != SessionStatus::kRunning || s.expires_at == r.expires_at) continue;
      if (leading) {
        // This store decided it (a TTL change whose annotation was not written).
        if (runtime_.recordExpiry(r.workload_id, s.expires_at).ok()) ++out.expiries;
      } else {
        Session next = s;
        next.expires_at = r.expires_at;
        std::lock_guard lock(transition_mu_);
        auto won = store_.updateSessionIf(next, SessionStatus::kRunning, s.expires_at);
        if (won.ok() && won.value()) ++out.expiries;
      }
      continue;
    }
    if (cur.error().kind != ErrorKind::kNotFound) continue;
    if (auto st = adopt(r); st.ok()) {
      ++out.adopted;
    } else if (st.error().kind != ErrorKind::kNotFound) {
      logWarn("session in the cluster not adopted", {{"session", r.session_id}, {"error", st.error().message}});
    }
  }
  if (out.adopted > 0 || out.expiries > 0) notifySchedule();
  return out;
}

}  // namespace sandman
