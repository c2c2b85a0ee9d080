#include "telemetry/sampler.h"

#include <time.h>

#include <algorithm>
#include <exception>
#include <map>
#include <utility>

#include "common/log.h"
#include "store/metrics_history.h"

namespace sandman {
namespace {

int64_t threadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::optional<double> pct(const std::optional<unsigned>& v) {
  if (!v) return std::nullopt;
  return static_cast<double>(*v);
}

std::optional<double> watts(const std::optional<unsigned>& mw) {
  if (!mw) return std::nullopt;
  return static_cast<double>(*mw) / 1000.0;
}

}  // namespace

void TelemetrySampler::OnceLogger::fail(const char* event, const std::string& message) {
  if (message == last_) return;
  last_ = message;
  logWarn(event, {{"error", message}});
}

void TelemetrySampler::OnceLogger::ok(const char* event) {
  if (last_.empty()) return;
  last_.clear();
  logInfo(event);
}

TelemetrySampler::TelemetrySampler(SamplerOptions options, GpuBackend* backend, Store& store,
                                   const Clock& clock, MetricsHistory* history)
    : options_(options), backend_(backend), store_(&store), clock_(clock), history_(history) {}

TelemetrySampler::TelemetrySampler(SamplerOptions options, GpuBackend* backend, const Clock& clock)
    : options_(options), backend_(backend), store_(nullptr), clock_(clock), history_(nullptr) {}

TelemetrySampler::~TelemetrySampler() { stop(); }

void TelemetrySampler::addListener(Listener fn) {
  std::lock_guard<std::mutex> lock(cycle_mu_);  // never while a cycle iterates the list
  listeners_.push_back(std::move(fn));
}

void TelemetrySampler::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void TelemetrySampler::stop() {
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = !stopping_;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  // Once: the destructor's stop() must not touch a history the owner may
  // already have closed after an explicit stop().
  if (first && history_ != nullptr) {
    // The partial minute too, so the minute table is complete up to shutdown.
    std::lock_guard<std::mutex> lock(cycle_mu_);
    if (Status st = history_->flush(); !st.ok()) {
      logWarn("telemetry history: final rollup failed", {{"error", st.error().message}});
    }
  }
}

void TelemetrySampler::run() {
  TimePoint next = clock_.now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    sampleOnce();
    // Fixed cadence: a slow cycle shortens the next wait instead of drifting;
    // one longer than the interval starts the next at once (no catch-up burst).
    // Waits go through the injected clock, so tests step the sampler by time.
    next += options_.interval;
    const TimePoint now = clock_.now();
    if (next < now) next = now;
    std::unique_lock<std::mutex> lock(mu_);
    if (clock_.waitUntil(lock, wake_, next, [this] { return stopping_; })) return;
  }
}

TelemetrySnapshot TelemetrySampler::collect() {
  const auto started = std::chrono::steady_clock::now();
  TelemetrySnapshot snap;
  if (source_) {
    snap = source_();
  } else if (backend_ != nullptr) {
    if (Status st = readBackend(&snap); !st.ok()) {
      // Nothing is known this cycle; lost_gpus stays empty rather than
      // declaring every GPU lost because the driver hiccupped.
      snap.backend_ok = false;
      snap.backend_error = st.error().message;
      backend_log_.fail("telemetry: GPU backend read failed", snap.backend_error);
    } else {
      backend_log_.ok("telemetry: GPU backend readable again");
    }
  }
  snap.taken_at = clock_.now();
  snap.mig_dynamic = options_.mig_dynamic;
  if (annotator_) annotator_(snap);
  if (snap.backend_ok) {
    if (!snap.gpus.empty() || !snap.instances.empty()) attribute(&snap);
    noteLost(&snap);
  }
  snap.sample_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return snap;
}

Status TelemetrySampler::readBackend(TelemetrySnapshot* out) {
  // The one caller that takes a new GPM sample: utilisation then spans exactly
  // the sampler's interval, whoever else reads the GPUs in between.
  auto listed = backend_->sampleGpus();
  if (!listed.ok()) return listed.error();
  TelemetrySnapshot& snap = *out;
  for (const GpuInfo& g : listed.value()) {
    DeviceReading gpu;
    gpu.uuid = g.uuid;
    gpu.gpu_uuid = g.uuid;
    gpu.gpu_index = g.index;
    gpu.model_name = g.name;
    gpu.mig_enabled = g.mig_enabled;
    // In MIG mode NVML has no whole-GPU utilisation; a stale value from a
    // driver that still answers would mislead, so it stays unknown.
    if (!g.mig_enabled) {
      gpu.utilization_pct = pct(g.telemetry.utilization_gpu);
      gpu.memory_utilization_pct = pct(g.telemetry.utilization_memory);
      gpu.pids = g.telemetry.pids;  // a MIG-mode GPU's processes belong to its instances
    }
    gpu.temperature_c = pct(g.telemetry.temperature_c);
    gpu.power_w = watts(g.telemetry.power_usage_mw);
    gpu.power_limit_w = watts(g.telemetry.power_limit_mw);
    gpu.memory_used_mib = g.memory_used_mib;
    gpu.memory_total_mib = g.memory_total_mib;
    gpu.compute_processes = g.telemetry.compute_processes;

    for (const MigInstance& m : g.instances) {
      if (m.uuid.empty()) continue;  // a GPU instance without a compute instance is no device
      DeviceReading inst;
      inst.uuid = m.uuid;
      inst.gpu_uuid = g.uuid;
      inst.gpu_index = g.index;
      inst.model_name = g.name;
      inst.is_mig = true;
      inst.mig_enabled = true;
      inst.profile = m.profile_name;
      inst.gpu_instance_id = m.gpu_instance_id;
      for (const MigProfile& p : g.profiles) {
        if (p.profile_id == m.profile_id) inst.compute_slices = p.compute_slices;
      }
      inst.utilization_pct = pct(m.utilization_gpu);
      inst.temperature_c = gpu.temperature_c;
      inst.memory_used_mib = m.memory_used_mib;
      inst.memory_total_mib = m.memory_total_mib;
      inst.compute_processes = m.compute_processes;
      inst.pids = m.pids;
      snap.instances.push_back(std::move(inst));
    }
    snap.gpus.push_back(std::move(gpu));
  }
  std::sort(snap.gpus.begin(), snap.gpus.end(),
            [](const DeviceReading& a, const DeviceReading& b) { return a.gpu_index < b.gpu_index; });
  std::stable_sort(snap.instances.begin(), snap.instances.end(),
                   [](const DeviceReading& a, const DeviceReading& b) {
                     return a.gpu_index != b.gpu_index ? a.gpu_index < b.gpu_index
                                                       : a.gpu_instance_id < b.gpu_instance_id;
                   });
  return Status();
}

// device uuid -> holder, from the store's active sessions; on a cluster the
// source names the session (from the pod) and the store confirms it. A store
// error costs the attribution of one cycle, not the readings.
void TelemetrySampler::attribute(TelemetrySnapshot* snap) {
  std::map<std::string, const Session*> by_device, by_id;
  Result<std::vector<Session>> sessions = std::vector<Session>();
  if (store_ != nullptr) {
    sessions = store_->activeSessions();
    if (sessions.ok()) {
      store_log_.ok("telemetry: session attribution restored");
      for (const auto& s : sessions.value()) {
        by_id[s.id] = &s;
        if (s.gpu_uuid && !s.gpu_uuid->empty()) by_device[*s.gpu_uuid] = &s;
      }
    } else {
      store_log_.fail("telemetry: cannot read active sessions; devices are unattributed this cycle",
                      sessions.error().message);
    }
  }
  auto holder = [&](DeviceReading* d) {
    const Session* s = nullptr;
    if (!d->session_id.empty()) {
      auto it = by_id.find(d->session_id);
      if (it != by_id.end()) s = it->second;
    } else if (auto it = by_device.find(d->uuid); it != by_device.end()) {
      s = it->second;
    }
    d->session_id = s != nullptr ? s->id : "";
    d->user_id = s != nullptr ? s->user_id : "";
  };
  for (auto& d : snap->gpus) {
    if (!d.mig_enabled) {
      holder(&d);
    } else {
      d.session_id.clear();
      d.user_id.clear();
    }
  }
  for (auto& d : snap->instances) holder(&d);
}

// A GPU an earlier cycle saw is lost when its backend (its node's agent, on
// a cluster) answered without it; a node whose agent is missing says nothing.
void TelemetrySampler::noteLost(TelemetrySnapshot* snap) {
  std::set<std::string> silent;
  for (const auto& n : snap->nodes) {
    if (!n.up) silent.insert(n.node);
  }
  std::set<std::string> present;
  for (const auto& g : snap->gpus) present.insert(g.uuid);
  for (const auto& [uuid, node] : seen_gpus_) {
    if (present.count(uuid) == 0 && silent.count(node) == 0) snap->lost_gpus.push_back(uuid);
  }
  for (const auto& g : snap->gpus) {
    auto [it, added] = seen_gpus_.insert({g.uuid, g.node});
    it->second = g.node;
    if (!added) continue;
    if (g.node.empty()) {
      logInfo("telemetry: GPU seen", {{"gpu", g.uuid}});
    } else {
      logInfo("telemetry: GPU seen", {{"gpu", g.uuid}, {"node", g.node}});
    }
  }
}

SnapshotPtr TelemetrySampler::sampleOnce() {
  std::lock_guard<std::mutex> cycle(cycle_mu_);
  const int64_t cpu_start = threadCpuNs();
  TelemetrySnapshot taken = collect();
  if (disk_source_) taken.disk = disk_source_();
  if (budget_source_) taken.budgets = budget_source_();
  auto snap = std::make_shared<const TelemetrySnapshot>(std::move(taken));
  {
    std::lock_guard<std::mutex> lock(mu_);
    latest_ = snap;
  }
  if (history_ != nullptr) {
    if (Status st = history_->record(*snap); st.ok()) {
      history_log_.ok("telemetry history: writes succeed again");
    } else {
      history_log_.fail("telemetry history: write failed; readings are still served", st.error().message);
    }
  }
  for (const auto& fn : listeners_) {
    // A listener bug must not stop telemetry for everyone else.
    try {
      fn(*snap);
    } catch (const std::exception& e) {
      logError("telemetry listener threw", {{"error", e.what()}});
    } catch (...) {
      logError("telemetry listener threw", {{"error", "unknown exception"}});
    }
  }
  cpu_ns_.fetch_add(threadCpuNs() - cpu_start);
  cycles_.fetch_add(1);
  return snap;
}

SnapshotPtr TelemetrySampler::latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return latest_;
}

double TelemetrySampler::cpuSeconds() const { return static_cast<double>(cpu_ns_.load()) / 1e9; }

}  // namespace sandman
