// MetricsExporter: everything GET /metrics shows, rendered in the Prometheus
// text format from the live sources on each scrape (pull model: it keeps no
// state and nothing reads it back). GPU series come from the sampler's latest
// snapshot, labelled in dcgm-exporter's style; daemon series from core, store,
// API, gateway and the Kubernetes backend's watch cache. Thread-safe when its sources are (render() is const).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <tuple>
#include <optional>
#include <string>
#include <vector>

#include "common/histogram.h"
#include "common/result.h"
#include "model/gateway_stats.h"
#include "model/gpu_snapshot.h"
#include "model/kube_watch_stats.h"
#include "gpu/cost_rates.h"

namespace sandman {

struct MetricsOptions {
  std::string hostname;  // the Hostname label on GPU series
  CostRates rates;       // --gpu-hourly-rates
  bool gpu_only = false;  // the node agent: GPU and telemetry families only (no daemon, disk or cost series)
};

// The REST API's connection counters (the listener's own, copied here so
// telemetry does not depend on the API layer).
struct ApiConnectionStats {
  uint64_t open = 0;
  uint64_t refused_total = 0;    // closed at once: over the per-source or global cap
  uint64_t rejected_total = 0;   // answered 4xx before routing (malformed, too large, ...)
  uint64_t timed_out_total = 0;  // closed past a head, body, write or idle deadline
};

// Cost booked plus accrued, per payer (the ledger's counters, copied here so
// telemetry does not depend on the cost module).
struct CostSeries {
  std::string user_id;
  std::string team;
  std::string project;
  std::string gpu_model;
  double usd = 0;
  double idle_usd = 0;
};

// A budget's month-to-date spend over its limit.
struct BudgetRatio {
  std::string budget;  // "team/lab"
  double ratio = 0;
};

// One scrape's worth of input, gathered from the sources (or built by hand in
// tests and benchmarks).
struct MetricsInputs {
  SnapshotPtr snapshot;  // null: the sampler has not finished a cycle yet
  std::optional<std::map<std::string, int64_t>> sessions_by_status;  // nullopt: the store failed
  HistogramSnapshot create_seconds;
  HistogramSnapshot request_seconds;
  ApiConnectionStats api_connections;
  GatewayStats gateway;  // zeros when the gateway is off
  std::map<std::string, uint64_t> reconcile_repairs;
  std::map<std::string, uint64_t> idle_decisions;  // empty: the idle policy is off (no family)
  std::optional<KubeWatchStats> kube_watch;  // nullopt: not the Kubernetes backend (no families)
  // Open alerts of the built-in engine: (rule, severity, state) -> count.
  std::map<std::tuple<std::string, std::string, std::string>, int> open_alerts;
  // Leader election (two replicas on Kubernetes); nullopt: off (no families).
  struct Leadership {
    bool leader = false;       // this replica leads and may mutate
    int64_t transitions = 0;   // the Lease's leaseTransitions, as last read
  };
  std::optional<Leadership> leadership;
  std::optional<std::vector<CostSeries>> cost;  // nullopt: no ledger (no family)
  std::vector<BudgetRatio> budgets;
  // user_id labels on GPU series: user names are for those holding the token
  // when the API is reachable from other machines.
  bool user_labels = true;
};

// Renders one exposition. Pure: the same inputs give the same text.
std::string renderMetrics(const MetricsInputs& in, const MetricsOptions& options);

// Where a scrape reads from. Any member may be empty (that part reads as
// absent/zero), which is how tests and a daemon without a gateway use it.
struct MetricsSources {
  std::function<SnapshotPtr()> snapshot;
  std::function<Result<std::map<std::string, int64_t>>()> sessions_by_status;
  std::function<HistogramSnapshot()> create_seconds;
  std::function<HistogramSnapshot()> request_seconds;
  std::function<ApiConnectionStats()> api_connections;
  std::function<GatewayStats()> gateway;
  std::function<std::map<std::string, uint64_t>()> reconcile_repairs;
  std::function<std::map<std::string, uint64_t>()> idle_decisions;
  std::function<KubeWatchStats()> kube_watch;  // --backend kubernetes only
  std::function<std::map<std::tuple<std::string, std::string, std::string>, int>()> open_alerts;
  std::function<MetricsInputs::Leadership()> leadership;
  std::function<Result<std::vector<CostSeries>>()> cost;
  std::function<std::vector<BudgetRatio>()> budgets;
};

class MetricsExporter {
 public:
  MetricsExporter(MetricsOptions options, MetricsSources sources)
      : options_(std::move(options)), sources_(std::move(sources)) {}

  MetricsInputs gather() const;
  std::string render(bool user_labels = true) const {
    MetricsInputs in = gather();
    in.user_labels = user_labels;
    return renderMetrics(in, options_);
  }

 private:
  const MetricsOptions options_;
  const MetricsSources sources_;
};

}  // namespace sandman
