// DashboardRoutes: the documents' dashboard resources, each built from what
// Sandman already keeps — GET /dashboard (all of it at once),
// /dashboard/stats/overall|clusters|models, /dashboard/trends/usage,
// /dashboard/alerts/active, /dashboard/activities/recent and
// /dashboard/metrics/realtime — from the sessions store, the latest
// telemetry snapshot, the telemetry history, the alert engine, the node
// records and the cost ledger. Reads only. Thread-safe.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "alerts/alert_engine.h"
#include "api/http_util.h"
#include "common/clock.h"
#include "cost/budgets.h"
#include "cost/cost_ledger.h"
#include "store/metrics_history.h"
#include "store/node_meta_store.h"
#include "store/store.h"
#include "telemetry/sampler.h"

namespace sandman {

// The nodes as GET /gpu-nodes lists them (name, cluster, status, gpu_count,
// running_sessions), from whichever backend serves them.
using NodeJsonSource = std::function<std::vector<nlohmann::json>()>;

struct DashboardSources {
  Store* store = nullptr;
  const TelemetrySampler* sampler = nullptr;
  MetricsHistory* history = nullptr;  // may be null: trends answer 503
  AlertEngine* alerts = nullptr;
  CostLedger* ledger = nullptr;       // may be null: no spend figures
  BudgetMonitor* budgets = nullptr;   // may be null
  NodeMetaStore* node_meta = nullptr; // may be null: no node changes among the activities
  NodeJsonSource nodes;
  std::string backend;                // "docker" | "kubernetes"
};

// Per cluster: nodes by status, GPUs, running sessions (pure; for tests).
nlohmann::json clusterStatsJson(const std::vector<nlohmann::json>& nodes);
// Per GPU model from a snapshot (pure; for tests).
nlohmann::json modelStatsJson(const TelemetrySnapshot* snap);

class DashboardRoutes final : public RouteModule {
 public:
  DashboardRoutes(DashboardSources sources, const Clock& clock) : src_(std::move(sources)), clock_(clock) {}
  void registerRoutes(Router& router) override;

  Result<nlohmann::json> overall();
  Result<nlohmann::json> usageTrend(int hours, int step_minutes);
  Result<nlohmann::json> activeAlerts(size_t limit);
  Result<nlohmann::json> activities(size_t limit, int hours);
  nlohmann::json realtime();

 private:
  void all(ApiResponse& res);

  DashboardSources src_;
  const Clock& clock_;
};

}  // namespace sandman
