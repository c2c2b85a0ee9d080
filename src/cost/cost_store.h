// CostStore: the cost module's tables in the daemon's SQLite file (teams,
// projects, user_org, gpu_prices, cost_ledger, budgets; made by SqliteStore's
// migrations), on a connection of its own. Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "cost/ledger_entry.h"
#include "model/session.h"

struct sqlite3;

namespace sandman {

struct Team {
  std::string name;
  TimePoint created_at{};
};

struct Project {
  std::string name;
  std::string team;  // may be empty
  TimePoint created_at{};
};

// A user's team and projects; the first project is the default payer.
struct UserOrg {
  std::string user_id;
  std::string team;
  std::vector<std::string> projects;
};

struct PriceRow {
  std::string model;
  int64_t from_ms = 0;
  double usd_per_hour = 0;
  std::string source;  // "catalog", "--gpu-hourly-rates", "api"
};

// A session as the ledger needs it (read straight from the sessions table).
struct CostSession {
  std::string id;
  std::string user_id;
  std::string team;
  std::string project;
  SessionStatus status = SessionStatus::kEnded;
  std::string device;  // gpu_uuid: the MIG or GPU uuid handed out
  std::optional<GpuSlot> slot;
  int64_t created_ms = 0;
  std::optional<int64_t> ended_ms;
};

// Sums of ledger entries of one group in one UTC day, clipped to the query's window.
struct DayTotal {
  std::string key;
  int64_t day_ms = 0;
  double cost_micros = 0;
  double idle_cost_micros = 0;
  double held_ms = 0;
  double idle_ms = 0;
};

// What telemetry saw of one device over a window (the minute rollups).
struct DevicePeak {
  int64_t minutes = 0;                     // minutes with samples
  std::optional<double> memory_used_mib;   // max of the minutes' maxima
  std::optional<double> utilization;       // max of the minutes' averages (a sustained minute)
  std::optional<double> utilization_max;   // max of any sample
};

// One booked ledger entry's group value, span and cost (the forecast's input).
struct EntrySpan {
  std::string key;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  int64_t cost_micros = 0;
};

// Everything booked for one (user, team, project, GPU model), ever: the
// Prometheus cost counters.
struct CostCounter {
  std::string user_id;
  std::string team;
  std::string project;
  std::string gpu_model;
  int64_t cost_micros = 0;
  int64_t idle_cost_micros = 0;
};

enum class BudgetScope { kUser, kTeam, kProject };
std::optional<BudgetScope> parseBudgetScope(const std::string& s);
const char* toString(BudgetScope s);

struct Budget {
  int64_t id = 0;
  BudgetScope scope = BudgetScope::kTeam;
  std::string name;
  double usd_per_month = 0;
  TimePoint created_at{};
};

class CostStore {
 public:
  // Open after SqliteStore::open has migrated the file.
  static Result<std::unique_ptr<CostStore>> open(const std::string& path);
  ~CostStore();
  CostStore(const CostStore&) = delete;
  CostStore& operator=(const CostStore&) = delete;

  // Who pays. add*: kConflict when the name exists.
  Result<std::vector<Team>> teams();
  Status addTeam(const std::string& name, TimePoint now);
  Status removeTeam(const std::string& name);  // kNotFound
  Result<std::vector<Project>> projects();
  Status addProject(const Project& p);
  Status removeProject(const std::string& name);  // kNotFound
  Result<std::optional<UserOrg>> userOrg(const std::string& user_id);
  Result<std::vector<UserOrg>> userOrgs();
  Status putUserOrg(const UserOrg& org, TimePoint now);

  // Prices in force over time, oldest first.
  Result<std::vector<PriceRow>> prices();
  Result<std::vector<PricePoint>> priceHistory(const std::string& model);
  // kConflict when the model already has a price from that instant.
  Status addPrice(const PriceRow& row, TimePoint now);

  // Ended or failed sessions not yet booked, oldest end first.
  Result<std::vector<CostSession>> unbookedSessions(int limit);
  // Sessions holding a device now (pending to stopping).
  Result<std::vector<CostSession>> activeSessions();
  // Ended or failed sessions whose end lies in [from, to), oldest end first.
  Result<std::vector<CostSession>> endedSessionsBetween(int64_t from_ms, int64_t to_ms);
  // Peak memory and utilisation of `device` in the minutes overlapping [from, to)
  // that the sampler saw held by `session_id` or by no session (a whole GPU's
  // minute shared with the session before it on the device is not this one's).
  Result<DevicePeak> devicePeak(const std::string& device, const std::string& session_id, int64_t from_ms,
                                int64_t to_ms);
  // Booked entries overlapping [from, to) (not clipped), with their `column`
  // value (one of isCostGroupColumn's).
  Result<std::vector<EntrySpan>> entriesBetween(const std::string& column, int64_t from_ms, int64_t to_ms);
  // Writes the entries and marks the session booked, in one transaction;
  // a session booked already is left as it is (no double charge).
  Status book(const std::string& session_id, const std::vector<LedgerEntry>& entries);
  // Several sessions in one transaction (one sync for a batch).
  Status bookAll(const std::vector<std::pair<std::string, std::vector<LedgerEntry>>>& sessions);
  // One session's booked entries (oldest first).
  Result<std::vector<LedgerEntry>> entriesOf(const std::string& session_id);
  // Minutes of telemetry in [from, to) during which `device` ran no compute
  // process and its utilisation (when known) stayed at or under `threshold`.
  Result<std::vector<Span>> idleSpans(const std::string& device, int64_t from_ms, int64_t to_ms, double threshold);
  // Booked entries overlapping [from, to), clipped to it and summed per
  // group value and UTC day. `column`: one of user_id, team, project,
  // gpu_model, profile, session_id; `filter_*`: only rows with that value.
  Result<std::vector<DayTotal>> sumByDay(const std::string& column, int64_t from_ms, int64_t to_ms,
                                         const std::string& filter_column = "", const std::string& filter = "");

  // Booked totals per (user, team, project, GPU model).
  Result<std::vector<CostCounter>> bookedTotals();

  // Budgets.
  Result<std::vector<Budget>> budgets();
  Result<Budget> putBudget(const Budget& b);  // insert or replace the limit of (scope, name)
  Status removeBudget(int64_t id);            // kNotFound

 private:
  CostStore(sqlite3* db, std::string path);

  std::mutex mu_;
  const std::string path_;
  sqlite3* db_;  // GUARDED_BY(mu_)
};

using CostStorePtr = std::unique_ptr<CostStore>;

// The ledger columns a report may group or filter by.
bool isCostGroupColumn(const std::string& column);

}  // namespace sandman
