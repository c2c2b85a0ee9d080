// EventRoutes: GET /api/v1/events/stream (Server-Sent Events) and the
// adapters that turn session changes, telemetry samples, alert transitions
// node edits and cost figures into the hub's events. The cost figures are computed on
// a thread of their own, so the sampler never waits on the ledger.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "alerts/alert.h"
#include "api/event_hub.h"
#include "api/http_util.h"
#include "api/json_mapping.h"
#include "common/clock.h"
#include "common/result.h"
#include "cost/cost_ledger.h"
#include "model/gpu_snapshot.h"
#include "model/session.h"

namespace sandman {

// The cost event's body ({"month_to_date_usd", "budgets"}), or an error.
using CostEventSource = std::function<Result<nlohmann::json>()>;

// The cost event's body: this month's spend (UTC month, running sessions
// accrued) and the budgets exactly as `get("/api/v1/budgets")` lists them.
Result<nlohmann::json> costEventJson(const std::function<Result<nlohmann::json>(const std::string&)>& get,
                                     CostLedger& ledger, TimePoint now);

// "?last_event_id=" (EventSource reconnects cannot set headers) or the
// Last-Event-ID header; nullopt when neither, an error when malformed.
Result<std::optional<uint64_t>> parseLastEventId(const ApiRequest& req);

class EventRoutes : public RouteModule {
 public:
  EventRoutes(EventHub& hub, SessionView view, CostEventSource cost = {},
              std::chrono::milliseconds cost_min_interval = std::chrono::seconds(5));
  ~EventRoutes() override;
  void registerRoutes(Router& router) override;

  void onSession(const Session& s, bool created);
  void onSample(const TelemetrySnapshot& snap);
  void onAlert(const std::string& action, const Alert& a);
  // A node's status or metadata set through the API: {"action", "node"} (the node as GET shows it).
  void onNode(const std::string& action, const nlohmann::json& node);
  // Starts the cost thread (when a source is set).
  void start();
  void stop();

 private:
  void stream(const ApiRequest& req, ApiResponse& res);
  void costLoop();

  EventHub& hub_;
  const SessionView view_;
  const CostEventSource cost_;
  const std::chrono::milliseconds cost_min_interval_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool sampled_ = false;   // GUARDED_BY(mu_): a sample arrived since the last cost check
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::string last_cost_;  // the cost thread's own
  std::thread cost_thread_;
};

}  // namespace sandman
