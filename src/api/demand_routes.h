// DemandRoutes: what was asked for and what became of it (GET /demand), and
// the MIG layout that recorded demand says a static host should have
// (GET /advice/layout). Thread-safe (the demand store is; advice is computed
// per request from a snapshot).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "api/http_util.h"
#include "api/list_query.h"
#include "common/clock.h"
#include "core/session_manager.h"
#include "cost/demand_store.h"
#include "cost/layout_advice.h"

namespace sandman {

struct DemandRoutesOptions {
  // The host's GPUs now; unset where the daemon has no local GPUs (Kubernetes).
  std::function<Result<std::vector<GpuInfo>>()> gpus;
  MigMode mig_mode = MigMode::kDynamic;
  std::string default_profile = "3g";
  SlotPricer pricer;
  // Non-empty: why layout advice does not apply to this daemon (a 400).
  std::string advice_unsupported;
};

class DemandRoutes final : public RouteModule {
 public:
  DemandRoutes(DemandStore& store, DemandRoutesOptions options, const Clock& clock)
      : store_(store), options_(std::move(options)), clock_(clock) {}
  void registerRoutes(Router& router) override;

 private:
  void list(const ApiRequest& req, ApiResponse& res);
  void layout(const ApiRequest& req, ApiResponse& res);

  DemandStore& store_;
  const DemandRoutesOptions options_;
  const Clock& clock_;
  const CursorCodec cursors_;
};

nlohmann::json demandJson(const DemandRecord& r);
// The row a create request's outcome is recorded as. A request that named a
// MIG instance is recorded as the profile it got (replays ask for that).
DemandRecord demandRecordOf(const DemandEvent& e);
nlohmann::json layoutAdviceJson(const LayoutAdvice& a);

}  // namespace sandman
