// CostRoutes: who pays and what it cost — PUT/GET /users/{id} (team,
// projects), /teams, /projects, GET /cost (JSON, or CSV with Accept:
// text/csv), /cost/prices, /cost/catalog, /budgets. Thread-safe (the ledger
// and the budget monitor are).
#pragma once

#include "api/http_util.h"
#include "cost/budgets.h"
#include "cost/cost_ledger.h"

namespace sandman {

class CostRoutes final : public RouteModule {
 public:
  CostRoutes(CostLedger& ledger, BudgetMonitor& budgets) : ledger_(ledger), budgets_(budgets) {}
  void registerRoutes(Router& router) override;

 private:
  void putUser(const ApiRequest& req, ApiResponse& res);
  void getUser(const ApiRequest& req, ApiResponse& res);
  void listUsers(ApiResponse& res);
  void listTeams(ApiResponse& res);
  void addTeam(const ApiRequest& req, ApiResponse& res);
  void removeTeam(const ApiRequest& req, ApiResponse& res);
  void listProjects(ApiResponse& res);
  void addProject(const ApiRequest& req, ApiResponse& res);
  void removeProject(const ApiRequest& req, ApiResponse& res);
  void cost(const ApiRequest& req, ApiResponse& res);
  void prices(ApiResponse& res);
  void putPrice(const ApiRequest& req, ApiResponse& res);
  void catalog(ApiResponse& res);
  void listBudgets(ApiResponse& res);
  void putBudget(const ApiRequest& req, ApiResponse& res);
  void removeBudget(const ApiRequest& req, ApiResponse& res);

  CostLedger& ledger_;
  BudgetMonitor& budgets_;
};

// The report as CSV (RFC 4180: CRLF line ends, fields with a comma, quote
// or line break quoted, quotes doubled), header first.
std::string costReportCsv(const CostReport& r);
nlohmann::json costReportJson(const CostReport& r);
// One CSV field, quoted when RFC 4180 needs it.
std::string csvField(const std::string& s);

}  // namespace sandman
