// GpuLeases: the GPU side of a session's lifecycle: choosing its slice inside
// the reservation transaction (gpu/allocator), creating and destroying
// dynamic MIG instances, handing the device to the container, and finding
// slices that vanished. Disabled (every call a no-op) without a GpuBackend.
// Thread-safe: stateless apart from the backend, which is thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "gpu/allocator.h"
#include "gpu/gpu_backend.h"
#include "gpu/need_allocator.h"
#include "model/session.h"
#include "runtime/runtime.h"
#include "store/store.h"

namespace sandman {

struct GpuSettings {
  MigMode mig_mode = MigMode::kDynamic;
  std::string default_profile = "3g";  // a class ("3g") or a full name ("3g.40gb")
  bool device_requests = false;        // Docker has the nvidia runtime: attach through DeviceRequests
};

class GpuLeases {
 public:
  GpuLeases(GpuBackend* backend, GpuSettings settings) : backend_(backend), settings_(std::move(settings)) {}

  bool enabled() const { return backend_ != nullptr; }
  const GpuSettings& settings() const { return settings_; }
  GpuBackend* backend() const { return backend_; }

  // The GPUs as NVML sees them now (read before the transaction: NVML is slow).
  Result<std::vector<GpuInfo>> snapshot() const;
  // Inside the reservation transaction: picks the slice, given what active
  // sessions hold, and records it on `s`. Hosts without GPUs give CPU-only
  // sessions; a GPU request there is a 400.
  // A request by need (gpu_memory_gb) gets the cheapest fitting device
  // (gpu/need_allocator.h), and `chosen`, when given, says what and why.
  Status reserve(StoreTx& tx, const std::vector<GpuInfo>& gpus, const SlotRequest& req, Session& s,
                 NeedChoice* chosen = nullptr) const;
  // The price a slot would be booked at now (the cost ledger's); unset: every
  // device costs 0 and allocation by need goes by its tie rules alone. Set
  // before serving.
  void setPricer(SlotPricer pricer) { pricer_ = std::move(pricer); }
  // Creates the dynamic instance reserved on `s` (no-op otherwise) and fills
  // in its MIG uuid and GPU-instance id.
  Status materialize(Session& s) const;
  // Destroys the dynamic instance `s` created (no-op otherwise) if it is
  // still that session's: same MIG uuid, placement and profile (after a crash
  // before the uuid was recorded: found by placement, while `s` still holds
  // it). Whatever NVML has since given the GI id to is left alone. Sets
  // s.gpu->released once the instance is gone.
  Status release(Session& s) const;
  // The device the workload is handed (the runtime says how).
  void attach(const Session& s, SessionWorkload& w) const;
  // Ids of running sessions whose MIG instance or GPU no longer exists.
  std::vector<std::string> vanished(const std::vector<Session>& running, const std::vector<GpuInfo>& gpus) const;

  static std::vector<HeldSlot> heldSlots(const std::vector<Session>& active);

 private:
  Result<std::optional<MigInstance>> findOwned(const Session& s) const;

  GpuBackend* backend_;
  GpuSettings settings_;
  SlotPricer pricer_;
};

}  // namespace sandman
