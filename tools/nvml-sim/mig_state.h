// The simulated MIG layout of every GPU (GPU and compute instances) and the
// state file that holds it, shared by every process that loads the simulator:
// read under an flock() before each MIG call, replaced atomically after a
// change. Value types and free functions; callers serialise in-process use.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace nvmlsim {

struct CiState {
  unsigned id = 0;
  unsigned profile_id = 0;
  unsigned start = 0;  // compute slices within the GPU instance
  unsigned size = 0;
  unsigned long long serial = 0;  // 0 for instances seeded from the config
  std::string uuid;               // "MIG-<uuid>" of its MIG device
};

struct GiState {
  unsigned id = 0;
  unsigned profile_id = 0;
  unsigned start = 0;  // memory slices
  unsigned size = 0;
  unsigned slices = 0;  // compute slices (from the profile)
  unsigned long long serial = 0;
  std::vector<CiState> cis;
};

struct GpuMigState {
  std::vector<GiState> gis;
};

struct MigState {
  unsigned long long next_serial = 1;
  std::map<std::string, GpuMigState> gpus;  // by GPU uuid
};

// RAII exclusive flock() on "<state>.lock"; ok() false when it could not be taken.
class StateLock {
 public:
  explicit StateLock(const std::string& state_path);
  ~StateLock();
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;
  bool ok() const { return fd_ >= 0; }
  int error() const { return errno_; }  // errno when !ok()

 private:
  int fd_ = -1;
  int errno_ = 0;
};

// Reads the state file. A missing file is an empty state with *exists false.
bool readState(const std::string& path, MigState* out, bool* exists, std::string* error);
// Writes to a temp file beside `path`, then renames it over `path`.
bool writeState(const std::string& path, const MigState& state, std::string* error);

}  // namespace nvmlsim
