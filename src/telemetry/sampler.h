// TelemetrySampler: reads every GPU and MIG instance through the GpuBackend
// every interval on its own thread, attributes each device to the session and
// user holding it, publishes the result as the latest snapshot, appends it to
// the history, and hands it to listeners (alerts, idle policy). API requests
// only ever read the published snapshot, so a slow driver never blocks them.
// Thread-safe: latest() from any thread; listeners run on the sampler thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "gpu/gpu_backend.h"
#include "model/gpu_snapshot.h"
#include "store/store.h"

namespace sandman {

class MetricsHistory;

struct SamplerOptions {
  Millis interval{5000};
  bool mig_dynamic = true;  // --mig-mode dynamic: an instance no session holds is a leak
};

class TelemetrySampler {
 public:
  using Listener = std::function<void(const TelemetrySnapshot&)>;

  // backend may be null (CPU-only host): snapshots then hold no devices.
  // history may be null (no persistence, e.g. in benchmarks).
  TelemetrySampler(SamplerOptions options, GpuBackend* backend, Store& store, const Clock& clock,
                   MetricsHistory* history);
  // Without a store (the node agent): devices are never attributed to sessions.
  TelemetrySampler(SamplerOptions options, GpuBackend* backend, const Clock& clock);
  ~TelemetrySampler();  // stops
  TelemetrySampler(const TelemetrySampler&) = delete;
  TelemetrySampler& operator=(const TelemetrySampler&) = delete;

  // Register before start(). Listeners must return quickly (queue slow work).
  void addListener(Listener fn);
  // Fills each snapshot's disk part (free space, workspace usage); called
  // every cycle, so it must be cheap. Set before start().
  void setDiskSource(std::function<DiskReadings()> fn) { disk_source_ = std::move(fn); }
  // Devices from elsewhere instead of the backend (a cluster's node agents):
  // the source fills the device lists, backend_ok, cluster, nodes and
  // unobserved_sessions, and may name each device's session (session_id); the
  // sampler keeps that name only for a session the store has active, and
  // fills its user. Set before start().
  void setSource(std::function<TelemetrySnapshot()> fn) { source_ = std::move(fn); }
  // Runs on each collected snapshot before it is published (the agent maps
  // each device's pids to a pod here). Must be cheap. Set before start().
  void setAnnotator(std::function<void(TelemetrySnapshot&)> fn) { annotator_ = std::move(fn); }
  // Budgets as last evaluated, carried in each snapshot for the alert engine.
  void setBudgetSource(std::function<std::vector<BudgetReading>()> fn) { budget_source_ = std::move(fn); }
  void start();  // first cycle runs at once
  void stop();   // idempotent

  // Runs one cycle on the caller's thread: sample, publish, record, notify.
  SnapshotPtr sampleOnce();
  // The last published snapshot; null before the first cycle.
  SnapshotPtr latest() const;
  // CPU time (thread) spent in cycles so far, and how many cycles ran.
  double cpuSeconds() const;
  uint64_t cycles() const { return cycles_.load(); }

 private:
  TelemetrySnapshot collect();
  Status readBackend(TelemetrySnapshot* snap);
  void attribute(TelemetrySnapshot* snap);
  void noteLost(TelemetrySnapshot* snap);
  void run();

  // A failure that repeats every cycle is logged once, then again only when
  // the message changes or it recovers: a stuck store must not flood the log.
  class OnceLogger {
   public:
    void fail(const char* event, const std::string& message);
    void ok(const char* event);

   private:
    std::string last_;
  };

  const SamplerOptions options_;
  GpuBackend* const backend_;
  Store* const store_;  // null: no attribution
  const Clock& clock_;
  MetricsHistory* const history_;
  std::vector<Listener> listeners_;
  std::function<DiskReadings()> disk_source_;
  std::function<TelemetrySnapshot()> source_;
  std::function<void(TelemetrySnapshot&)> annotator_;
  std::function<std::vector<BudgetReading>()> budget_source_;

  mutable std::mutex mu_;
  SnapshotPtr latest_;  // GUARDED_BY(mu_)
  // GPU uuid -> its node ("" on a single host); sampler thread / sampleOnce callers only.
  std::map<std::string, std::string> seen_gpus_;
  std::mutex cycle_mu_;  // one cycle at a time
  OnceLogger backend_log_, store_log_, history_log_;  // GUARDED_BY(cycle_mu_)
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
  std::atomic<uint64_t> cycles_{0};
  std::atomic<int64_t> cpu_ns_{0};
};

}  // namespace sandman
