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

  // Re-reads telemetry etc. when the config file changed. Checked once per
  // enumeration (see beginEnumeration), not on every call.
  void refreshConfig();
  // A caller starts walking the devices (nvmlInit, nvmlDeviceGetCount): the
  // next calls look at the config and state files again. Between
  // enumerations reads use what was loaded, as a driver's view would: a
  // 64-GPU host makes thousands of calls per inventory, and a stat and a
  // file lock on each would make the simulator, not Sandman, the cost being
  // measured. Changes by other processes show at the next enumeration;
  // mutations always lock and re-read.
  void beginEnumeration() { files_checked_ = false; }
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
    if (!mutate && state_checked_ && files_checked_) return f(state_);
    StateLock lock(state_path_);
    if (!lock.ok()) return lockFailed(lock.error());
    nvmlReturn_t rc = loadState();
    if (rc != NVML_SUCCESS) return rc;
    state_checked_ = true;
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
  bool files_checked_ = false;  // config looked at since the last beginEnumeration
  bool state_checked_ = false;  // state file looked at since then
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
// exception crosses the C ABI. `enumerating`: the call starts a walk over the
// devices (see Simulator::beginEnumeration).
template <typename F>
nvmlReturn_t withSim(F&& f, bool enumerating = false) noexcept {
  try {
    std::lock_guard<std::mutex> lock(simMutex());
    Simulator* sim = currentSim();
    if (sim == nullptr) return NVML_ERROR_UNINITIALIZED;
    if (enumerating) sim->beginEnumeration();
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
