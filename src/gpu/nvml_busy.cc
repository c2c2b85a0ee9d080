#include "gpu/nvml_busy.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <optional>

namespace sandman::nvml_internal {
namespace {

constexpr unsigned kNoInstance = 0xFFFFFFFFu;

// Processes on one device handle; nullopt when the driver cannot say.
std::optional<std::vector<nvmlProcessInfo_t>> processes(nvmlDeviceGetComputeRunningProcesses_v3_fn fn,
                                                        nvmlDevice_t dev) {
  // One call in the common case: a buffer that holds a busy GPU's processes.
  std::vector<nvmlProcessInfo_t> infos(64);
  for (int attempt = 0; attempt < 3; ++attempt) {
    unsigned n = static_cast<unsigned>(infos.size());
    nvmlReturn_t rc = fn(dev, &n, infos.data());
    if (rc == NVML_SUCCESS) {
      infos.resize(std::min<size_t>(n, infos.size()));
      return infos;
    }
    if (rc != NVML_ERROR_INSUFFICIENT_SIZE) return std::nullopt;
    infos.resize(static_cast<size_t>(n) + 16);  // processes may start in between
  }
  return std::nullopt;
}

// SM utilisation of one MIG instance over the period since its previous
// sample (GPM); nullopt on the first sample or when GPM cannot tell.
std::optional<unsigned> gpmUtilization(const OptionalCalls& c, nvmlDevice_t dev,
                                       const MigInstance& inst,
                                       std::map<std::string, nvmlGpmSample_t>* prev,
                                       std::map<std::string, nvmlGpmSample_t>* next) {
  nvmlGpmSample_t sample = nullptr;
  if (c.gpm_alloc(&sample) != NVML_SUCCESS) return std::nullopt;
  if (c.gpm_mig_sample(dev, static_cast<unsigned>(inst.gpu_instance_id), sample) != NVML_SUCCESS) {
    c.gpm_free(sample);
    return std::nullopt;
  }
  std::optional<unsigned> out;
  auto it = prev->find(inst.uuid);
  if (it != prev->end()) {
    nvmlGpmMetricsGet_t mg{};
    mg.version = NVML_GPM_METRICS_GET_VERSION;
    mg.numMetrics = 1;
    mg.sample1 = it->second;
    mg.sample2 = sample;
    mg.metrics[0].metricId = NVML_GPM_METRIC_SM_UTIL;
    if (c.gpm_metrics(&mg) == NVML_SUCCESS && mg.metrics[0].nvmlReturn == NVML_SUCCESS &&
        std::isfinite(mg.metrics[0].value)) {
      out = static_cast<unsigned>(std::lround(std::clamp(mg.metrics[0].value, 0.0, 100.0)));
    }
  }
  (*next)[inst.uuid] = sample;
  return out;
}

}  // namespace

BusyState::~BusyState() {
  for (auto& [gpu, samples] : gpm_prev) {
    for (auto& [uuid, sample] : samples) calls.gpm_free(sample);
  }
}

std::unique_ptr<BusyState> loadBusyState(void* dl) {
  auto state = std::make_unique<BusyState>();
  OptionalCalls& c = state->calls;
  c.procs = reinterpret_cast<nvmlDeviceGetComputeRunningProcesses_v3_fn>(
      dlsym(dl, "nvmlDeviceGetComputeRunningProcesses_v3"));
  if (c.procs == nullptr) {
    c.procs = reinterpret_cast<nvmlDeviceGetComputeRunningProcesses_v3_fn>(
        dlsym(dl, "nvmlDeviceGetComputeRunningProcesses_v2"));
  }
  c.gpm_support = reinterpret_cast<nvmlGpmQueryDeviceSupport_fn>(dlsym(dl, "nvmlGpmQueryDeviceSupport"));
  c.gpm_alloc = reinterpret_cast<nvmlGpmSampleAlloc_fn>(dlsym(dl, "nvmlGpmSampleAlloc"));
  c.gpm_free = reinterpret_cast<nvmlGpmSampleFree_fn>(dlsym(dl, "nvmlGpmSampleFree"));
  c.gpm_mig_sample = reinterpret_cast<nvmlGpmMigSampleGet_fn>(dlsym(dl, "nvmlGpmMigSampleGet"));
  c.gpm_metrics = reinterpret_cast<nvmlGpmMetricsGet_fn>(dlsym(dl, "nvmlGpmMetricsGet"));
  return state;
}

void readBusy(BusyState& x, const MigWalk& b, nvmlDevice_t dev, GpuInfo* gpu, bool gpm_sample) {
  const OptionalCalls& c = x.calls;
  if (c.procs != nullptr) {
    if (auto all = processes(c.procs, dev)) {
      gpu->telemetry.compute_processes = static_cast<int>(all->size());
      for (const auto& p : *all) gpu->telemetry.pids.push_back(p.pid);
      // On the parent handle NVML tags each process with its instance; an
      // untagged one (unprivileged callers) sends us to the MIG handles.
      bool tagged = true;
      for (const auto& p : *all) {
        if (!gpu->mig_enabled) break;
        if (p.gpuInstanceId == kNoInstance) {
          tagged = false;
          continue;
        }
        for (auto& inst : gpu->instances) {
          if (static_cast<unsigned>(inst.gpu_instance_id) == p.gpuInstanceId &&
              static_cast<unsigned>(inst.compute_instance_id) == p.computeInstanceId) {
            ++inst.compute_processes;
            inst.pids.push_back(p.pid);
          }
        }
      }
      if (!tagged) {
        for (auto& inst : gpu->instances) {
          inst.compute_processes = 0;
          inst.pids.clear();
        }
        unsigned max = 0;
        if (b.max_mig(dev, &max) != NVML_SUCCESS) max = 0;
        for (unsigned i = 0; i < max; ++i) {
          nvmlDevice_t mig = nullptr;
          unsigned gi = 0, ci = 0;
          if (b.mig_handle(dev, i, &mig) != NVML_SUCCESS || b.gi_id(mig, &gi) != NVML_SUCCESS ||
              b.ci_id(mig, &ci) != NVML_SUCCESS) {
            continue;
          }
          auto mine = processes(c.procs, mig);
          if (!mine) continue;
          for (auto& inst : gpu->instances) {
            if (static_cast<unsigned>(inst.gpu_instance_id) == gi &&
                static_cast<unsigned>(inst.compute_instance_id) == ci) {
              inst.compute_processes = static_cast<int>(mine->size());
              for (const auto& p : *mine) inst.pids.push_back(p.pid);
            }
          }
        }
      }
    }
  }

  if (!gpu->mig_enabled || !c.gpm()) return;
  if (!gpm_sample) {
    for (auto& inst : gpu->instances) {
      auto it = x.gpm_last.find(inst.uuid);
      if (it != x.gpm_last.end()) inst.utilization_gpu = it->second;
    }
    return;
  }
  // Asked every time: one cheap call, and never stale (a driver update, or a
  // simulator config that turns GPM on, changes the answer).
  nvmlGpmSupport_t support{};
  support.version = NVML_GPM_SUPPORT_VERSION;
  if (c.gpm_support(dev, &support) != NVML_SUCCESS || support.isSupportedDevice == 0) {
    auto stale = x.gpm_prev.find(gpu->uuid);
    if (stale != x.gpm_prev.end()) {
      for (auto& [uuid, sample] : stale->second) {
        c.gpm_free(sample);
        x.gpm_last.erase(uuid);
      }
      x.gpm_prev.erase(stale);
    }
    return;
  }
  auto& prev = x.gpm_prev[gpu->uuid];
  std::map<std::string, nvmlGpmSample_t> next;
  for (auto& inst : gpu->instances) {
    if (inst.uuid.empty()) continue;
    inst.utilization_gpu = gpmUtilization(c, dev, inst, &prev, &next);
  }
  for (const auto& [uuid, sample] : prev) {
    if (!next.count(uuid)) x.gpm_last.erase(uuid);  // instance gone
  }
  for (const auto& inst : gpu->instances) {
    if (!inst.uuid.empty()) x.gpm_last[inst.uuid] = inst.utilization_gpu;
  }
  // Samples of this cycle replace the previous ones; those of instances that
  // are gone are freed with them.
  for (auto& [uuid, sample] : prev) c.gpm_free(sample);
  prev = std::move(next);
}


}  // namespace sandman::nvml_internal
