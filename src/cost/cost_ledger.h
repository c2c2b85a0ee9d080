// CostLedger: who pays for each session (teams, projects), the GPU prices in
// force over time, the booking of ended sessions into ledger entries, and
// cost reports that add the running sessions' accrual at query time.
// Thread-safe: state lives in the CostStore; price histories are cached under mu_.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "cost/cost_store.h"
#include "cost/ledger_entry.h"
#include "gpu/cost_rates.h"

namespace sandman {

struct Payer {
  std::string team;
  std::string project;
};

struct CostQuery {
  std::string group_by = "team";  // user|team|project|gpu_model|profile|session
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  CostStep step = CostStep::kDay;
  // Only entries whose `filter_by` column (user|team|project|...) is `filter`.
  std::string filter_by;
  std::string filter;
};

struct CostLine {
  std::string key;  // the group's value ("" when the session had none)
  int64_t bucket_ms = 0;
  int64_t cost_micros = 0;
  int64_t idle_cost_micros = 0;
  double held_hours = 0;  // device-hours held
  double idle_hours = 0;
};

struct CostReport {
  CostQuery query;
  std::vector<CostLine> lines;   // by bucket, then key
  std::vector<CostLine> totals;  // per key over the whole window (bucket_ms = from)
  int64_t total_micros = 0;
  int64_t idle_total_micros = 0;
  int running_sessions = 0;  // accrued up to now
};

// One group's use per hour over a window: held device-hours and micro-USD.
struct HourlyUsage {
  std::vector<double> held_hours;
  std::vector<double> cost_micros;
};

struct CostLedgerOptions {
  double idle_utilization = 5;  // % at or under which a slice without processes is idle
};

// "team a": lower-case letters, digits, '.', '_', '-'; 1-63, starting with a letter or digit.
Status validateOrgName(const std::string& what, const std::string& name);
// The ledger column a group_by / scope word names ("user" -> "user_id"); "" when unknown.
std::string costColumn(const std::string& group_by);

class CostLedger {
 public:
  CostLedger(CostLedgerOptions options, CostStore& store, CostRates rates, const Clock& clock);

  // Who pays for a new session of `user_id`: the named project (kInvalid when
  // the user is not in it) or the user's first, and the user's team.
  Result<Payer> payerFor(const std::string& user_id, const std::optional<std::string>& project);
  // Checks that the team and projects exist, then stores them.
  Result<UserOrg> setUserOrg(UserOrg org);

  // Records the current rates (catalog, then --gpu-hourly-rates) of every
  // catalog model whose last recorded price differs: from `now` on, or from
  // the beginning for a model never priced. Returns how many changed.
  Result<int> syncPrices();
  // A price from `from` (now or later; never the past) for a model key.
  Status setPrice(const std::string& model, double usd_per_hour, std::optional<TimePoint> from);
  Result<std::vector<PriceRow>> prices() { return store_.prices(); }

  // What a slot of `profile` ("whole": the GPU) on a GPU of `model_name`
  // costs per hour now: the price in force (the one a holding starting now
  // is booked at) times the slot's share. Allocation by need compares these.
  Result<double> slotPriceNow(const std::string& model_name, const std::string& profile, int compute_slices);

  // Books every ended session not booked yet; returns how many.
  Result<int> bookEnded();
  // The holding of a session up to `end_ms` (its end, or now); nullopt for
  // a session that never held a GPU.
  Result<std::optional<Holding>> holdingOf(const CostSession& s, int64_t end_ms);
  Result<std::vector<LedgerEntry>> price(const Holding& h);
  // The running sessions' holdings up to now, clipped to [from_ms, to_ms);
  // those left empty by the clip are left out.
  Result<std::vector<Holding>> runningHoldings(int64_t from_ms, int64_t to_ms);

  // Booked entries plus the running sessions' accrual to now.
  Result<CostReport> report(const CostQuery& q);
  // Booked entries plus the running sessions' accrual, spread over the hours
  // of [from, to) (hour boundaries) per `group_by` value: an entry's cost is
  // even over its span (one price each).
  Result<std::map<std::string, HourlyUsage>> hourly(const std::string& group_by, int64_t from_ms, int64_t to_ms);
  // Spend of a user/team/project in the month holding `at`, to now (micro-USD).
  Result<int64_t> monthToDate(BudgetScope scope, const std::string& name, TimePoint at);

  // Booked totals plus the running sessions' accrual, per (user, team,
  // project, model): monotonic, for sandman_cost_usd_total.
  Result<std::vector<CostCounter>> counters();

  CostStore& store() { return store_; }
  const CostRates& rates() const { return rates_; }
  const Clock& clock() const { return clock_; }

 private:
  Result<std::vector<PricePoint>> history(const std::string& model_key, const std::string& model_name);

  const CostLedgerOptions options_;
  CostStore& store_;
  const CostRates rates_;
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, std::vector<PricePoint>> histories_;  // GUARDED_BY(mu_)
  using PayerKey = std::tuple<std::string, std::string, std::string, std::string>;
  std::optional<std::map<PayerKey, std::pair<int64_t, int64_t>>> booked_;  // GUARDED_BY(mu_): loaded on first use
  std::mutex book_mu_;  // one booking pass at a time
};

}  // namespace sandman
