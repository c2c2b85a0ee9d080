// The simulator's machine description (fixtures/nvml-sim format): driver
// versions, GPUs by catalog model, MIG mode, pre-existing instances and
// telemetry. Parsed and validated here; value types, not shared.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "catalog.h"
#include "mig_rules.h"

namespace nvmlsim {

struct SimProcess {
  unsigned pid = 0;
  unsigned long long used_memory_mib = 0;
  std::string mig;  // "MIG-..." when it runs in a MIG device
};

// nullopt: NVML says NOT_SUPPORTED (the config gave null). Omitted fields
// take model defaults.
struct Telemetry {
  std::optional<unsigned> utilization_gpu;
  std::optional<unsigned> utilization_memory;
  std::optional<unsigned> temperature;
  std::optional<unsigned> power_usage_mw;
  std::optional<unsigned> power_limit_mw;
  unsigned long long memory_used_mib = 0;
  // The driver's own reservation: the v1 memory call counts it as used, v2
  // reports it apart (a real H200 reserves 616 MiB).
  unsigned long long memory_reserved_mib = 0;
  std::vector<SimProcess> processes;
  // SM utilisation of each MIG device, by its "MIG-..." uuid, as GPM reports
  // it (devices not listed: 0). Only read where the GPU has GPM.
  std::map<std::string, unsigned> mig_utilization;
};

struct GpuConfig {
  const Model* model = nullptr;
  std::string name;
  std::string uuid;
  bool mig_mode = false;
  bool mig_mode_pending = false;
  std::vector<SeedInstance> seeds;
  GpuMigState seed_state;  // the seeds, laid out and checked
  Telemetry telemetry;
  // GPU Performance Monitoring (per-MIG-instance utilisation): Hopper and
  // later have it; "gpm" in the config overrides the model's default.
  bool gpm = false;
};

struct SimConfig {
  std::string driver_version = "550.54.15";
  int cuda_driver_version = 12040;
  std::vector<GpuConfig> gpus;
};

// False with a message that names the file and the offending field.
bool loadConfigFile(const std::string& path, SimConfig* out, std::string* error);
bool parseConfig(const std::string& text, SimConfig* out, std::string* error);

}  // namespace nvmlsim
