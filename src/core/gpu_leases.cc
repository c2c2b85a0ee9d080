#include "core/gpu_leases.h"

#include <set>

#include "common/fault_point.h"
#include "common/log.h"

namespace sandman {

Result<std::vector<GpuInfo>> GpuLeases::snapshot() const {
  if (!backend_) return std::vector<GpuInfo>{};
  return backend_->listGpus();
}

std::vector<HeldSlot> GpuLeases::heldSlots(const std::vector<Session>& active) {
  std::vector<HeldSlot> held;
  for (const auto& s : active) {
    if (!s.gpu) continue;
    held.push_back({s.gpu->gpu_uuid, s.gpu_uuid.value_or(""), s.gpu->placement_start, s.gpu->placement_size,
                    s.gpu->whole, s.gpu->profile});
  }
  return held;
}

Status GpuLeases::reserve(StoreTx& tx, const std::vector<GpuInfo>& gpus, const SlotRequest& req, Session& s,
                          NeedChoice* chosen) const {
  const bool asked = req.mig_profile || req.mig_instance_uuid || req.gpu_memory_gb;
  if (!backend_ || gpus.empty()) {
    if (!asked) return {};
    return invalid(backend_ ? "this host has no GPUs: drop mig_profile / mig_instance_uuid / gpu_memory_gb"
                            : "no GPU backend configured: this daemon hands out CPU-only sessions; "
                              "drop mig_profile / mig_instance_uuid / gpu_memory_gb");
  }
  auto active = tx.activeSessions();
  if (!active.ok()) return active.error();
  Result<Allocation> a = internal("no allocation");
  if (req.gpu_memory_gb) {
    if (req.mig_profile || req.mig_instance_uuid) {
      return invalid("give gpu_memory_gb or mig_profile / mig_instance_uuid, not both");
    }
    GpuNeed need{*req.gpu_memory_gb, Workload::kInference};
    if (req.workload) {
      auto w = parseWorkload(*req.workload);
      if (!w) return invalid("workload must be inference or training");
      need.workload = *w;
    }
    auto c = allocateByNeed(gpus, heldSlots(active.value()), need, settings_.mig_mode, pricer_);
    if (!c.ok()) return c.error();
    a = c->allocation;
    if (chosen != nullptr) *chosen = std::move(c).value();
  } else {
    a = allocate(gpus, heldSlots(active.value()), req, settings_.mig_mode, settings_.default_profile);
  }
  if (!a.ok()) return a.error();
  GpuSlot slot;
  slot.gpu_index = a->gpu_index;
  slot.gpu_uuid = a->gpu_uuid;
  slot.profile = a->profile;
  slot.profile_id = a->profile_id;
  slot.placement_start = a->placement_start;
  slot.placement_size = a->placement_size;
  slot.whole = a->whole;
  slot.created = a->create;
  slot.attach = settings_.device_requests ? "device-request" : "env-only";
  for (const auto& g : gpus) {
    if (g.uuid == a->gpu_uuid) slot.model = g.name;
  }
  if (!a->create) {
    // An existing instance or a whole GPU: remember its GI id for reconciliation.
    for (const auto& g : gpus) {
      for (const auto& inst : g.instances) {
        if (inst.uuid == a->device_uuid) slot.gpu_instance_id = inst.gpu_instance_id;
      }
    }
    s.gpu_uuid = a->device_uuid;
  }
  s.gpu = slot;
  return {};
}

Status GpuLeases::materialize(Session& s) const {
  if (!backend_ || !s.gpu || !s.gpu->created) return {};
  SANDMAN_FAULT_POINT("mig.before_create");
  auto inst = backend_->createInstance(s.gpu->gpu_index, s.gpu->profile_id, s.gpu->placement_start);
  if (!inst.ok()) return inst.error();
  SANDMAN_FAULT_POINT("mig.created");
  s.gpu_uuid = inst->uuid;
  s.gpu->gpu_instance_id = inst->gpu_instance_id;
  logInfo("MIG instance created", {{"session", s.id}, {"gpu", std::to_string(s.gpu->gpu_index)},
                                   {"profile", s.gpu->profile}, {"placement", std::to_string(s.gpu->placement_start)},
                                   {"uuid", inst->uuid}});
  return {};
}

// The instance `s` created, as NVML shows it now: by its recorded uuid, or,
// when the daemon died between creating it and recording it, by placement.
// The placement is only proof while `s` is active: the allocator hands a
// placement held by an active session to nobody else.
Result<std::optional<MigInstance>> GpuLeases::findOwned(const Session& s) const {
  MigInstance owned;
  owned.gpu_instance_id = s.gpu->gpu_instance_id;
  owned.profile_id = s.gpu->profile_id;
  owned.placement_start = s.gpu->placement_start;
  owned.uuid = s.gpu_uuid.value_or("");
  if (!owned.uuid.empty()) return std::optional<MigInstance>(owned);
  if (!isActive(s.status)) {
    logWarn("MIG instance of an ended session was never recorded; not destroying by placement",
            {{"session", s.id}, {"placement", std::to_string(s.gpu->placement_start)}});
    return std::optional<MigInstance>();
  }
  auto gpus = backend_->listGpus();
  if (!gpus.ok()) return gpus.error();
  for (const auto& g : gpus.value()) {
    if (g.uuid != s.gpu->gpu_uuid) continue;
    for (const auto& inst : g.instances) {
      if (inst.placement_start == s.gpu->placement_start && inst.profile_id == s.gpu->profile_id &&
          !inst.uuid.empty()) {
        return std::optional<MigInstance>(inst);
      }
    }
  }
  return std::optional<MigInstance>();
}

Status GpuLeases::release(Session& s) const {
  if (!backend_ || !s.gpu || !s.gpu->created || s.gpu->released) return {};
  auto owned = findOwned(s);
  if (!owned.ok()) return owned.error();
  if (owned.value()) {
    const MigInstance& inst = *owned.value();
    SANDMAN_FAULT_POINT("mig.before_destroy");
    Status st = backend_->destroyOwnedInstance(s.gpu->gpu_index, inst);
    if (!st.ok() && st.error().kind != ErrorKind::kNotFound) return st;
    if (st.ok()) {
      SANDMAN_FAULT_POINT("mig.destroyed");
      logInfo("MIG instance destroyed", {{"session", s.id}, {"gpu", std::to_string(s.gpu->gpu_index)},
                                         {"gpu_instance", std::to_string(inst.gpu_instance_id)},
                                         {"uuid", inst.uuid}});
    } else {
      logInfo("MIG instance already gone", {{"session", s.id}, {"detail", st.error().message}});
    }
  }
  s.gpu->released = true;
  return {};
}

void GpuLeases::attach(const Session& s, SessionWorkload& w) const {
  w.gpu_uuid = s.gpu_uuid;
}

std::vector<std::string> GpuLeases::vanished(const std::vector<Session>& running,
                                             const std::vector<GpuInfo>& gpus) const {
  std::set<std::string> present;
  for (const auto& g : gpus) {
    present.insert(g.uuid);
    for (const auto& inst : g.instances) present.insert(inst.uuid);
  }
  std::vector<std::string> gone;
  for (const auto& s : running) {
    if (s.status == SessionStatus::kRunning && s.gpu_uuid && !present.count(*s.gpu_uuid)) gone.push_back(s.id);
  }
  return gone;
}

}  // namespace sandman
