// The simulator instance behind the exported NVML symbols: the config (re-read
// when the file changes), opaque handles, and transactions over the shared MIG
// state file. One instance between nvmlInit and the last nvmlShutdown; every
// exported call runs under one process-wide mutex (withSim), so the class
// itself is not thread-safe.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>

#include "gpu/nvml_api.h"
#include "mig_state.h"
#include "sim_config.h"

namespace nvmlsim {

enum class HandleKind { kGpu, kMigDevice, kGpuInstance, kComputeInstance };

// What a handle names; the handle itself is the address of a HandleRec.
struct HandleRec {
  HandleKind kind = HandleKind::kGpu;
  unsigned gpu = 0;  // config index
  unsigned gi = 0;
  unsigned ci = 0;
  unsigned long long serial = 0;  // the GI's (GI handles) or CI's (CI/MIG handles)
  auto operator<=>(const HandleRec&) const = default;
};

class Simulator {
 public:
  // Reads SANDMAN_NVML_SIM_CONFIG (and SANDMAN_NVML_SIM_STATE).
  static nvmlReturn_t create(std::unique_ptr<Simulator>* out, std::string* error);

  void refreshConfig();  // re-reads telemetry etc. when the config file changed
  const SimConfig& config() const { return config_; }
  const GpuConfig* gpu(unsigned index) const;
  bool migEnabled(unsigned gpu) const;

  void* handle(const HandleRec& key);
  // nullptr unless `p` is a handle of this simulator of the given kind.
  const HandleRec* resolve(const void* p, HandleKind kind) const;
  const HandleRec* resolveAny(const void* p) const;

  // Runs f(MigState&) with the state file locked and current; writes the state
  // back when `mutate` and f returned NVML_SUCCESS.
  template <typename F>
  nvmlReturn_t withState(bool mutate, F&& f) {
    StateLock lock(state_path_);
    if (!lock.ok()) return lockFailed(lock.error());
    nvmlReturn_t rc = loadState();
    if (rc != NVML_SUCCESS) return rc;
    // Reads work on the cached state itself: a large host makes thousands
    // of calls per inventory, and copying (or parsing) the state for each
    // one would dominate any measurement taken through the simulator.
    if (!mutate) return f(state_);
    MigState state = state_;
    rc = f(state);
    if (rc == NVML_SUCCESS) rc = saveState(state);
    return rc;
  }

  GpuMigState& gpuState(MigState& state, unsigned gpu) const;
  GiState* findGi(MigState& state, const HandleRec& h) const;  // GI or CI/MIG handle
  CiState* findCi(MigState& state, const HandleRec& h) const;  // CI or MIG handle

 private:
  struct Stamp {
    ino_t ino = 0;
    off_t size = -1;
    long long mtime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  static Stamp stampOf(const std::string& path);
  // Brings state_ up to date with the file (re-read only when it changed).
  nvmlReturn_t loadState();
  nvmlReturn_t saveState(const MigState& state);
  nvmlReturn_t fail(nvmlReturn_t rc, const std::string& message);
  nvmlReturn_t lockFailed(int err);

  std::string config_path_;
  std::string state_path_;
  std::string last_error_;
  SimConfig config_;
  Stamp config_stamp_;
  MigState state_;     // the state file as last read or written
  Stamp state_stamp_;  // of the file state_ came from; size -1: not read yet
  Stamp state_config_stamp_;  // the config state_ was last seeded against
  std::map<HandleRec, std::unique_ptr<HandleRec>> handles_;
  std::map<const void*, const HandleRec*> by_address_;
};

// Process-wide instance management for nvmlInit/nvmlShutdown/nvmlErrorString.
nvmlReturn_t simInit();
nvmlReturn_t simShutdown();
const char* simErrorString(nvmlReturn_t rc);
std::mutex& simMutex();
Simulator* currentSim();  // call with simMutex held

// Runs f(Simulator&) for an exported call: serialised, initialised, and no
// exception crosses the C ABI.
template <typename F>
nvmlReturn_t withSim(F&& f) noexcept {
  try {
    std::lock_guard<std::mutex> lock(simMutex());
    Simulator* sim = currentSim();
    if (sim == nullptr) return NVML_ERROR_UNINITIALIZED;
    sim->refreshConfig();
    return f(*sim);
  } catch (const std::bad_alloc&) {
    return NVML_ERROR_MEMORY;
  } catch (...) {
    return NVML_ERROR_UNKNOWN;
  }
}

// Copies s into an NVML string buffer; INSUFFICIENT_SIZE when it does not fit.
nvmlReturn_t copyString(const std::string& s, char* buf, unsigned length);

#define NVML_SIM_EXPORT extern "C" __attribute__((visibility("default")))

}  // namespace nvmlsim
