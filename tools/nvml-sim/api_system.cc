// Exported NVML symbols: library lifetime, error strings, versions, device
// enumeration and lookup by index/UUID (versioned and legacy names).
#include <cstdio>
#include <string>
#include <type_traits>

#include "simulator.h"

using namespace nvmlsim;

namespace {

nvmlReturn_t handleByIndex(unsigned index, nvmlDevice_t* device) {
  return withSim([&](Simulator& sim) {
    if (device == nullptr || sim.gpu(index) == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    *device = static_cast<nvmlDevice_t>(sim.handle({HandleKind::kGpu, index}));
    return NVML_SUCCESS;
  });
}

nvmlReturn_t countDevices(unsigned* count) {
  return withSim([&](Simulator& sim) {
    if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    *count = static_cast<unsigned>(sim.config().gpus.size());
    return NVML_SUCCESS;
  }, /*enumerating=*/true);
}

// "MIG-GPU-<gpu uuid>/<gi>/<ci>" (pre-R470 form) -> its parts.
bool parseLegacyMigUuid(const std::string& s, std::string* gpu, unsigned* gi, unsigned* ci) {
  if (s.rfind("MIG-GPU-", 0) != 0) return false;
  size_t a = s.find('/');
  size_t b = a == std::string::npos ? a : s.find('/', a + 1);
  if (b == std::string::npos) return false;
  *gpu = s.substr(4, a - 4);
  return std::sscanf(s.c_str() + a, "/%u/%u", gi, ci) == 2;
}

}  // namespace

NVML_SIM_EXPORT nvmlReturn_t nvmlInit_v2(void) { return simInit(); }
NVML_SIM_EXPORT nvmlReturn_t nvmlInit(void) { return simInit(); }
NVML_SIM_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int) { return simInit(); }
NVML_SIM_EXPORT nvmlReturn_t nvmlShutdown(void) { return simShutdown(); }

NVML_SIM_EXPORT const char* nvmlErrorString(nvmlReturn_t result) {
  try {
    return simErrorString(result);
  } catch (...) {
    return "Unknown Error";
  }
}

NVML_SIM_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  return withSim([&](Simulator& sim) {
    return copyString(sim.config().driver_version, version, length);
  });
}

// NVML's version is "<CUDA major>.<driver version>", e.g. "12.550.54.15".
NVML_SIM_EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char* version, unsigned int length) {
  return withSim([&](Simulator& sim) {
    const SimConfig& c = sim.config();
    return copyString(std::to_string(c.cuda_driver_version / 1000) + "." + c.driver_version,
                      version, length);
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* cudaDriverVersion) {
  return withSim([&](Simulator& sim) {
    if (cudaDriverVersion == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    *cudaDriverVersion = sim.config().cuda_driver_version;
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* cudaDriverVersion) {
  return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* deviceCount) {
  return countDevices(deviceCount);
}
NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int* deviceCount) {
  return countDevices(deviceCount);
}

NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index,
                                                           nvmlDevice_t* device) {
  return handleByIndex(index, device);
}
NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
  return handleByIndex(index, device);
}

// Accepts "GPU-...", "MIG-<uuid>" and the legacy "MIG-GPU-<uuid>/<gi>/<ci>".
NVML_SIM_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* device) {
  return withSim([&](Simulator& sim) {
    if (uuid == nullptr || device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    const std::string wanted = uuid;
    const auto& gpus = sim.config().gpus;
    for (unsigned i = 0; i < gpus.size(); ++i) {
      if (gpus[i].uuid == wanted) {
        *device = static_cast<nvmlDevice_t>(sim.handle({HandleKind::kGpu, i}));
        return NVML_SUCCESS;
      }
    }
    if (wanted.rfind("MIG-", 0) != 0) return NVML_ERROR_NOT_FOUND;
    std::string legacy_gpu;
    unsigned legacy_gi = 0, legacy_ci = 0;
    bool legacy = parseLegacyMigUuid(wanted, &legacy_gpu, &legacy_gi, &legacy_ci);
    return sim.withState(false, [&](MigState& state) {
      for (unsigned i = 0; i < gpus.size(); ++i) {
        if (!sim.migEnabled(i)) continue;
        for (const auto& gi : sim.gpuState(state, i).gis) {
          for (const auto& ci : gi.cis) {
            bool match = legacy ? gpus[i].uuid == legacy_gpu && gi.id == legacy_gi &&
                                      ci.id == legacy_ci
                                : ci.uuid == wanted;
            if (!match) continue;
            *device = static_cast<nvmlDevice_t>(
                sim.handle({HandleKind::kMigDevice, i, gi.id, ci.id, ci.serial}));
            return NVML_SUCCESS;
          }
        }
      }
      return NVML_ERROR_NOT_FOUND;
    });
  });
}

// The exported signatures are the ones the loader's table expects.
static_assert(std::is_same_v<decltype(&nvmlInit_v2), nvmlInit_v2_fn>);
static_assert(std::is_same_v<decltype(&nvmlShutdown), nvmlShutdown_fn>);
static_assert(std::is_same_v<decltype(&nvmlErrorString), nvmlErrorString_fn>);
static_assert(std::is_same_v<decltype(&nvmlSystemGetDriverVersion), nvmlSystemGetDriverVersion_fn>);
static_assert(std::is_same_v<decltype(&nvmlSystemGetNVMLVersion), nvmlSystemGetNVMLVersion_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetCount_v2), nvmlDeviceGetCount_v2_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlDeviceGetHandleByIndex_v2), nvmlDeviceGetHandleByIndex_v2_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetHandleByUUID), nvmlDeviceGetHandleByUUID_fn>);
