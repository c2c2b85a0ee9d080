// Exported NVML symbols: GPU Performance Monitoring for MIG instances, the
// one NVML path to an instance's own utilisation. A sample records the SM
// utilisation the config gives the instance (telemetry.mig_utilization) when
// it is taken; the metric over two samples is the later one's value, so a
// test that rewrites the config sees the new value one sample later, as with
// real GPM. GPUs without GPM (before Hopper, or "gpm": false) say NOT_SUPPORTED.
#include <memory>
#include <set>
#include <type_traits>

#include "api_util.h"

using namespace nvmlsim;

namespace {

struct SimGpmSample {
  bool taken = false;
  unsigned gpu = 0;
  unsigned gi = 0;
  unsigned long long gi_serial = 0;
  unsigned sm_util = 0;
};

// Live samples, so a stale or foreign pointer is INVALID_ARGUMENT, not a
// crash. Touched under simMutex() only (inside withSim).
std::set<const void*>& liveSamples() {
  static std::set<const void*> s;
  return s;
}

SimGpmSample* asSample(nvmlGpmSample_t p) {
  if (p == nullptr || liveSamples().count(p) == 0) return nullptr;
  return reinterpret_cast<SimGpmSample*>(p);
}

}  // namespace

NVML_SIM_EXPORT nvmlReturn_t nvmlGpmQueryDeviceSupport(nvmlDevice_t device,
                                                       nvmlGpmSupport_t* gpmSupport) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(device, HandleKind::kGpu);
    if (h == nullptr || gpmSupport == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    if (gpmSupport->version != NVML_GPM_SUPPORT_VERSION) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    gpmSupport->isSupportedDevice = sim.gpu(h->gpu)->gpm ? 1 : 0;
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlGpmSampleAlloc(nvmlGpmSample_t* gpmSample) {
  return withSim([&](Simulator&) {
    if (gpmSample == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    auto* s = new SimGpmSample();
    liveSamples().insert(s);
    *gpmSample = reinterpret_cast<nvmlGpmSample_t>(s);
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlGpmSampleFree(nvmlGpmSample_t gpmSample) {
  return withSim([&](Simulator&) {
    SimGpmSample* s = asSample(gpmSample);
    if (s == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    liveSamples().erase(s);
    delete s;
    return NVML_SUCCESS;
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlGpmMigSampleGet(nvmlDevice_t device, unsigned int gpuInstanceId,
                                                 nvmlGpmSample_t gpmSample) {
  return withSim([&](Simulator& sim) {
    const HandleRec* h = sim.resolve(device, HandleKind::kGpu);
    SimGpmSample* s = asSample(gpmSample);
    if (h == nullptr || s == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    const GpuConfig& gpu = *sim.gpu(h->gpu);
    if (!gpu.gpm) return NVML_ERROR_NOT_SUPPORTED;
    if (!sim.migEnabled(h->gpu)) return NVML_ERROR_INVALID_ARGUMENT;
    return sim.withState(false, [&](MigState& state) {
      for (const auto& gi : sim.gpuState(state, h->gpu).gis) {
        if (gi.id != gpuInstanceId) continue;
        // The instance's MIG device is its (first) compute instance.
        unsigned util = 0;
        if (!gi.cis.empty()) {
          auto it = gpu.telemetry.mig_utilization.find(gi.cis.front().uuid);
          if (it != gpu.telemetry.mig_utilization.end()) util = it->second;
        }
        *s = SimGpmSample{true, h->gpu, gi.id, gi.serial, util};
        return NVML_SUCCESS;
      }
      return NVML_ERROR_NOT_FOUND;
    });
  });
}

NVML_SIM_EXPORT nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t* metricsGet) {
  return withSim([&](Simulator&) {
    if (metricsGet == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
    if (metricsGet->version != NVML_GPM_METRICS_GET_VERSION) {
      return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    }
    const SimGpmSample* a = asSample(metricsGet->sample1);
    const SimGpmSample* b = asSample(metricsGet->sample2);
    if (a == nullptr || b == nullptr || a == b || !a->taken || !b->taken ||
        metricsGet->numMetrics > NVML_GPM_METRIC_MAX) {
      return NVML_ERROR_INVALID_ARGUMENT;
    }
    // Samples of different instances (or of an instance destroyed and
    // re-created under the same id) do not make a period.
    if (a->gpu != b->gpu || a->gi != b->gi || a->gi_serial != b->gi_serial) {
      return NVML_ERROR_INVALID_ARGUMENT;
    }
    for (unsigned i = 0; i < metricsGet->numMetrics; ++i) {
      nvmlGpmMetric_t& m = metricsGet->metrics[i];
      m.metricInfo = {nullptr, nullptr, nullptr};
      if (m.metricId == NVML_GPM_METRIC_SM_UTIL) {
        m.nvmlReturn = NVML_SUCCESS;
        m.value = static_cast<double>(b->sm_util);
      } else {
        m.nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        m.value = 0;
      }
    }
    return NVML_SUCCESS;
  });
}

static_assert(std::is_same_v<decltype(&nvmlGpmQueryDeviceSupport), nvmlGpmQueryDeviceSupport_fn>);
static_assert(std::is_same_v<decltype(&nvmlGpmSampleAlloc), nvmlGpmSampleAlloc_fn>);
static_assert(std::is_same_v<decltype(&nvmlGpmSampleFree), nvmlGpmSampleFree_fn>);
static_assert(std::is_same_v<decltype(&nvmlGpmMigSampleGet), nvmlGpmMigSampleGet_fn>);
static_assert(std::is_same_v<decltype(&nvmlGpmMetricsGet), nvmlGpmMetricsGet_fn>);
