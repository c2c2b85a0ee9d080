#include "simulator.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace nvmlsim {
namespace {

struct Global {
  std::mutex mu;
  std::unique_ptr<Simulator> sim;  // guarded by mu
  int refs = 0;                    // guarded by mu
  // Why the last failure with error_code happened; read by nvmlErrorString.
  nvmlReturn_t error_code = NVML_SUCCESS;
  std::string error_text;
};

Global& global() {
  static Global g;
  return g;
}

const char* standardString(nvmlReturn_t rc) {
  switch (rc) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt request issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    case NVML_ERROR_IN_USE: return "In use by another client";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_VGPU_ECC_NOT_SUPPORTED: return "ECC is enabled";
    case NVML_ERROR_INSUFFICIENT_RESOURCES: return "Insufficient Resources";
    case NVML_ERROR_FREQ_NOT_SUPPORTED: return "Frequency not supported";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    case NVML_ERROR_DEPRECATED: return "Deprecated";
    case NVML_ERROR_NOT_READY: return "Not Ready";
    case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
    case NVML_ERROR_INVALID_STATE: return "Invalid state";
    case NVML_ERROR_RESET_TYPE_NOT_SUPPORTED: return "Reset type not supported";
    default: return "Unknown Error";
  }
}

void recordError(nvmlReturn_t rc, const std::string& message) {
  Global& g = global();
  g.error_code = rc;
  g.error_text = std::string(standardString(rc)) + " (nvml-sim: " + message + ")";
}

}  // namespace

std::mutex& simMutex() { return global().mu; }
Simulator* currentSim() { return global().sim.get(); }

nvmlReturn_t simInit() {
  try {
    Global& g = global();
    std::lock_guard<std::mutex> lock(g.mu);
    if (g.refs > 0) {
      ++g.refs;
      return NVML_SUCCESS;
    }
    std::string error;
    nvmlReturn_t rc = Simulator::create(&g.sim, &error);
    if (rc != NVML_SUCCESS) {
      recordError(rc, error);
      return rc;
    }
    g.refs = 1;
    g.error_code = NVML_SUCCESS;
    return NVML_SUCCESS;
  } catch (const std::bad_alloc&) {
    return NVML_ERROR_MEMORY;
  } catch (...) {
    return NVML_ERROR_UNKNOWN;
  }
}

nvmlReturn_t simShutdown() {
  Global& g = global();
  std::lock_guard<std::mutex> lock(g.mu);
  if (g.refs == 0) return NVML_ERROR_UNINITIALIZED;
  if (--g.refs == 0) g.sim.reset();
  return NVML_SUCCESS;
}

const char* simErrorString(nvmlReturn_t rc) {
  Global& g = global();
  std::lock_guard<std::mutex> lock(g.mu);
  if (rc != NVML_SUCCESS && rc == g.error_code) return g.error_text.c_str();
  return standardString(rc);
}

nvmlReturn_t copyString(const std::string& s, char* buf, unsigned length) {
  if (buf == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (s.size() + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(buf, s.c_str(), s.size() + 1);
  return NVML_SUCCESS;
}

nvmlReturn_t Simulator::create(std::unique_ptr<Simulator>* out, std::string* error) {
  const char* config = std::getenv("SANDMAN_NVML_SIM_CONFIG");
  if (config == nullptr || *config == '\0') {
    *error = "SANDMAN_NVML_SIM_CONFIG is not set; point it at a machine description JSON";
    return NVML_ERROR_DRIVER_NOT_LOADED;
  }
  auto sim = std::make_unique<Simulator>();
  sim->config_path_ = config;
  const char* state = std::getenv("SANDMAN_NVML_SIM_STATE");
  sim->state_path_ = state != nullptr && *state != '\0' ? state : sim->config_path_ + ".state";
  sim->config_stamp_ = stampOf(sim->config_path_);
  if (sim->config_stamp_.size < 0) {
    *error = "cannot read config " + sim->config_path_ + ": " + std::strerror(errno);
    return NVML_ERROR_DRIVER_NOT_LOADED;
  }
  if (!loadConfigFile(sim->config_path_, &sim->config_, error)) return NVML_ERROR_UNKNOWN;
  // Seeds the state file now, so every process sees the same pre-made instances.
  nvmlReturn_t rc = sim->withState(false, [](MigState&) { return NVML_SUCCESS; });
  if (rc != NVML_SUCCESS) {
    *error = sim->last_error_;
    return rc;
  }
  *out = std::move(sim);
  return NVML_SUCCESS;
}

Simulator::Stamp Simulator::stampOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Stamp{};
  return Stamp{st.st_ino, st.st_size,
               static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
}

void Simulator::refreshConfig() {
  if (files_checked_) return;
  files_checked_ = true;
  state_checked_ = false;
  Stamp now = stampOf(config_path_);
  if (now == config_stamp_ || now.size < 0) return;
  SimConfig fresh;
  std::string error;
  if (!loadConfigFile(config_path_, &fresh, &error)) {
    // A half-written file: keep the last good config and look again next call.
    std::fprintf(stderr, "nvml-sim: keeping the previous config: %s\n", error.c_str());
    return;
  }
  config_ = std::move(fresh);
  config_stamp_ = now;
}

const GpuConfig* Simulator::gpu(unsigned index) const {
  return index < config_.gpus.size() ? &config_.gpus[index] : nullptr;
}

bool Simulator::migEnabled(unsigned index) const {
  const GpuConfig* g = gpu(index);
  return g != nullptr && g->model->migCapable() && g->mig_mode;
}

void* Simulator::handle(const HandleRec& key) {
  auto& slot = handles_[key];
  if (!slot) {
    slot = std::make_unique<HandleRec>(key);
    by_address_[slot.get()] = slot.get();
  }
  return slot.get();
}

const HandleRec* Simulator::resolveAny(const void* p) const {
  auto it = by_address_.find(p);
  return it == by_address_.end() ? nullptr : it->second;
}

const HandleRec* Simulator::resolve(const void* p, HandleKind kind) const {
  const HandleRec* h = resolveAny(p);
  return h != nullptr && h->kind == kind && gpu(h->gpu) != nullptr ? h : nullptr;
}

GpuMigState& Simulator::gpuState(MigState& state, unsigned index) const {
  return state.gpus[config_.gpus.at(index).uuid];
}

GiState* Simulator::findGi(MigState& state, const HandleRec& h) const {
  if (!migEnabled(h.gpu)) return nullptr;
  for (auto& gi : gpuState(state, h.gpu).gis) {
    if (gi.id != h.gi) continue;
    if (h.kind == HandleKind::kGpuInstance) return gi.serial == h.serial ? &gi : nullptr;
    for (auto& ci : gi.cis) {
      if (ci.id == h.ci && ci.serial == h.serial) return &gi;
    }
    return nullptr;
  }
  return nullptr;
}

CiState* Simulator::findCi(MigState& state, const HandleRec& h) const {
  GiState* gi = h.kind == HandleKind::kGpuInstance ? nullptr : findGi(state, h);
  if (gi == nullptr) return nullptr;
  for (auto& ci : gi->cis) {
    if (ci.id == h.ci && ci.serial == h.serial) return &ci;
  }
  return nullptr;
}

nvmlReturn_t Simulator::fail(nvmlReturn_t rc, const std::string& message) {
  std::fprintf(stderr, "nvml-sim: %s\n", message.c_str());
  last_error_ = message;
  recordError(rc, message);
  return rc;
}

nvmlReturn_t Simulator::lockFailed(int err) {
  return fail(NVML_ERROR_UNKNOWN, "cannot lock " + state_path_ + ".lock: " + std::strerror(err) +
                                      "; set SANDMAN_NVML_SIM_STATE to a writable path");
}

nvmlReturn_t Simulator::loadState() {
  // Another process replaces the file by rename, so a changed file shows as
  // a new inode, size or mtime.
  // A config change may add GPUs that the state has yet to be seeded with.
  Stamp now = stampOf(state_path_);
  if (now.size >= 0 && now == state_stamp_ && config_stamp_ == state_config_stamp_) return NVML_SUCCESS;
  bool seeded = false;
  bool exists = false;
  std::string error;
  MigState fresh;
  if (!readState(state_path_, &fresh, &exists, &error)) return fail(NVML_ERROR_UNKNOWN, error);
  seeded = false;
  for (const auto& g : config_.gpus) {
    if (!g.model->migCapable() || fresh.gpus.count(g.uuid) != 0) continue;
    fresh.gpus[g.uuid] = g.seed_state;
    seeded = true;
  }
  if (seeded || !exists) return saveState(fresh);
  state_ = std::move(fresh);
  state_stamp_ = now;
  state_config_stamp_ = config_stamp_;
  return NVML_SUCCESS;
}

nvmlReturn_t Simulator::saveState(const MigState& state) {
  std::string error;
  if (!writeState(state_path_, state, &error)) {
    state_stamp_ = Stamp{};  // unknown now: read again next time
    return fail(NVML_ERROR_UNKNOWN, error);
  }
  state_ = state;
  state_stamp_ = stampOf(state_path_);
  // Seeding always goes through here, so the state matches this config now.
  state_config_stamp_ = config_stamp_;
  return NVML_SUCCESS;
}

}  // namespace nvmlsim
