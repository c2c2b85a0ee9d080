#include "cost/cost_store.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "store/gpu_slot_json.h"
#include "store/sqlite_connection.h"
#include "store/sqlite_stmt.h"

namespace sandman {
namespace {

using sql::Conn;
using sql::Stmt;

constexpr const char* kSessionColumns =
    "id, user_id, team, project, status, gpu_uuid, gpu_slot, created_at, ended_at";

Result<CostSession> readSession(const Stmt& st) {
  CostSession s;
  s.id = st.textAt(0);
  s.user_id = st.textAt(1);
  s.team = st.textAt(2);
  s.project = st.textAt(3);
  auto status = parseSessionStatus(st.textAt(4));
  if (!status) return internal("store: session " + s.id + " has unknown status");
  s.status = *status;
  if (!st.isNull(5)) s.device = st.textAt(5);
  if (!st.isNull(6)) s.slot = gpuSlotFromJson(st.textAt(6));
  s.created_ms = st.int64At(7);
  if (!st.isNull(8)) s.ended_ms = st.int64At(8);
  return s;
}

Result<std::vector<CostSession>> readSessions(Stmt& st, const std::string& what) {
  std::vector<CostSession> out;
  for (;;) {
    auto row = st.next(what);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    auto s = readSession(st);
    if (!s.ok()) return s.error();
    out.push_back(std::move(s).value());
  }
}

std::string projectsText(const std::vector<std::string>& projects) { return nlohmann::json(projects).dump(); }

std::vector<std::string> projectsFrom(const std::string& text) {
  std::vector<std::string> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& p : j) {
    if (p.is_string()) out.push_back(p.get<std::string>());
  }
  return out;
}

// Whole statements per group column: column names are never pasted from input.
const char* sumSql(const std::string& column) {
#define SANDMAN_COST_SUM(col)                                                                  \
  "SELECT " col ", start_ms / 86400000 * 86400000 AS day, "                                             \
  "sum(CASE WHEN start_ms >= ?1 AND end_ms <= ?2 THEN cost_micros ELSE cost_micros * "                  \
  "(min(end_ms, ?2) - max(start_ms, ?1)) * 1.0 / (end_ms - start_ms) END), "                            \
  "sum(CASE WHEN start_ms >= ?1 AND end_ms <= ?2 THEN idle_cost_micros ELSE idle_cost_micros * "        \
  "(min(end_ms, ?2) - max(start_ms, ?1)) * 1.0 / (end_ms - start_ms) END), "                            \
  "sum(min(end_ms, ?2) - max(start_ms, ?1)), "                                                          \
  "sum(CASE WHEN start_ms >= ?1 AND end_ms <= ?2 THEN idle_ms ELSE idle_ms * "                          \
  "(min(end_ms, ?2) - max(start_ms, ?1)) * 1.0 / (end_ms - start_ms) END) "                             \
  "FROM cost_ledger WHERE start_ms > ?1 - 86400000 AND start_ms < ?2 AND end_ms > ?1 "                  \
  "GROUP BY 1, 2"
  static const struct {
    const char* column;
    const char* plain;
  } kPlain[] = {
      {"user_id", SANDMAN_COST_SUM("user_id")},       {"team", SANDMAN_COST_SUM("team")},
      {"project", SANDMAN_COST_SUM("project")},       {"gpu_model", SANDMAN_COST_SUM("gpu_model")},
      {"profile", SANDMAN_COST_SUM("profile")},       {"session_id", SANDMAN_COST_SUM("session_id")},
  };
  for (const auto& e : kPlain) {
    if (column == e.column) return e.plain;
  }
  return nullptr;
#undef SANDMAN_COST_SUM
}

}  // namespace

bool isCostGroupColumn(const std::string& column) { return sumSql(column) != nullptr; }

std::optional<BudgetScope> parseBudgetScope(const std::string& s) {
  if (s == "user") return BudgetScope::kUser;
  if (s == "team") return BudgetScope::kTeam;
  if (s == "project") return BudgetScope::kProject;
  return std::nullopt;
}

const char* toString(BudgetScope s) {
  switch (s) {
    case BudgetScope::kUser: return "user";
    case BudgetScope::kTeam: return "team";
    case BudgetScope::kProject: return "project";
  }
  return "team";
}

Result<std::unique_ptr<CostStore>> CostStore::open(const std::string& path) {
  SqliteOpenOptions options;
  options.purpose = "cost";
  options.required_tables = {"teams", "projects", "user_org", "gpu_prices", "cost_ledger", "budgets"};
  auto db = openSqlite(path, options);
  if (!db.ok()) return db.error();
  return std::unique_ptr<CostStore>(new CostStore(db->release(), path));
}

CostStore::CostStore(sqlite3* db, std::string path) : path_(std::move(path)), db_(db) {}

CostStore::~CostStore() { sqlite3_close_v2(db_); }

Result<std::vector<Team>> CostStore::teams() {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "SELECT name, created_at FROM teams ORDER BY name");
  std::vector<Team> out;
  for (;;) {
    auto row = st.next("list teams");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back({st.textAt(0), fromUnixMillis(st.int64At(1))});
  }
}

Status CostStore::addTeam(const std::string& name, TimePoint now) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "INSERT INTO teams (name, created_at) VALUES (?, ?)");
  st.text(name).int64(toUnixMillis(now));
  Status s = st.run("add team " + name);
  if (!s.ok() && s.error().kind == ErrorKind::kConflict) return conflict("team " + name + " exists already");
  return s;
}

Status CostStore::removeTeam(const std::string& name) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "DELETE FROM teams WHERE name = ?");
  st.text(name);
  if (Status s = st.run("remove team " + name); !s.ok()) return s;
  if (st.changes() == 0) return notFound("no team " + name + "; GET /api/v1/teams lists them");
  return {};
}

Result<std::vector<Project>> CostStore::projects() {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "SELECT name, team, created_at FROM projects ORDER BY name");
  std::vector<Project> out;
  for (;;) {
    auto row = st.next("list projects");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back({st.textAt(0), st.textAt(1), fromUnixMillis(st.int64At(2))});
  }
}

Status CostStore::addProject(const Project& p) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "INSERT INTO projects (name, team, created_at) VALUES (?, ?, ?)");
  st.text(p.name).text(p.team).int64(toUnixMillis(p.created_at));
  Status s = st.run("add project " + p.name);
  if (!s.ok() && s.error().kind == ErrorKind::kConflict) return conflict("project " + p.name + " exists already");
  return s;
}

Status CostStore::removeProject(const std::string& name) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "DELETE FROM projects WHERE name = ?");
  st.text(name);
  if (Status s = st.run("remove project " + name); !s.ok()) return s;
  if (st.changes() == 0) return notFound("no project " + name + "; GET /api/v1/projects lists them");
  return {};
}

Result<std::optional<UserOrg>> CostStore::userOrg(const std::string& user_id) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "SELECT team, projects FROM user_org WHERE user_id = ?");
  st.text(user_id);
  auto row = st.next("read team and projects of " + user_id);
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<UserOrg>();
  return std::optional<UserOrg>(UserOrg{user_id, st.textAt(0), projectsFrom(st.textAt(1))});
}

Result<std::vector<UserOrg>> CostStore::userOrgs() {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "SELECT user_id, team, projects FROM user_org ORDER BY user_id");
  std::vector<UserOrg> out;
  for (;;) {
    auto row = st.next("list users' teams and projects");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back({st.textAt(0), st.textAt(1), projectsFrom(st.textAt(2))});
  }
}

Status CostStore::putUserOrg(const UserOrg& org, TimePoint now) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c,
          "INSERT INTO user_org (user_id, team, projects, updated_at) VALUES (?, ?, ?, ?) "
          "ON CONFLICT(user_id) DO UPDATE SET team = excluded.team, projects = excluded.projects, "
          "updated_at = excluded.updated_at");
  st.text(org.user_id).text(org.team).text(projectsText(org.projects)).int64(toUnixMillis(now));
  return st.run("set team and projects of " + org.user_id);
}

Result<std::vector<PriceRow>> CostStore::prices() {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "SELECT model, effective_from, usd_per_hour, source FROM gpu_prices ORDER BY model, effective_from");
  std::vector<PriceRow> out;
  for (;;) {
    auto row = st.next("list GPU prices");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back({st.textAt(0), st.int64At(1), st.realAt(2), st.textAt(3)});
  }
}

Result<std::vector<PricePoint>> CostStore::priceHistory(const std::string& model) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "SELECT effective_from, usd_per_hour FROM gpu_prices WHERE model = ? ORDER BY effective_from");
  st.text(model);
  std::vector<PricePoint> out;
  for (;;) {
    auto row = st.next("read prices of " + model);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back({st.int64At(0), st.realAt(1)});
  }
}

Status CostStore::addPrice(const PriceRow& r, TimePoint now) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c,
          "INSERT INTO gpu_prices (model, effective_from, usd_per_hour, source, recorded_at) VALUES (?, ?, ?, ?, ?)");
  st.text(r.model).int64(r.from_ms).real(r.usd_per_hour).text(r.source).int64(toUnixMillis(now));
  Status s = st.run("record price of " + r.model);
  if (!s.ok() && s.error().kind == ErrorKind::kConflict) {
    return conflict(r.model + " already has a price from " + formatRfc3339(fromUnixMillis(r.from_ms)));
  }
  return s;
}

Result<std::vector<CostSession>> CostStore::unbookedSessions(int limit) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, (std::string("SELECT ") + kSessionColumns +
              " FROM sessions INDEXED BY sessions_cost_unbooked WHERE cost_booked = 0 AND status IN ('ended','failed') "
              "ORDER BY ended_at LIMIT ?")
                 .c_str());
  st.int64(limit);
  return readSessions(st, "read sessions to book");
}

Result<std::vector<CostSession>> CostStore::activeSessions() {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, (std::string("SELECT ") + kSessionColumns +
              " FROM sessions WHERE status IN ('pending','starting','running','stopping') ORDER BY created_at")
                 .c_str());
  return readSessions(st, "read active sessions for cost");
}

Status CostStore::book(const std::string& session_id, const std::vector<LedgerEntry>& entries) {
  return bookAll({{session_id, entries}});
}

Status CostStore::bookAll(const std::vector<std::pair<std::string, std::vector<LedgerEntry>>>& sessions) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  if (Status s = c.exec("BEGIN IMMEDIATE", "begin booking"); !s.ok()) return s;
  auto one = [&](const std::string& session_id, const std::vector<LedgerEntry>& entries) -> Status {
    Stmt mark(c, "UPDATE sessions SET cost_booked = 1 WHERE id = ? AND cost_booked = 0");
    mark.text(session_id);
    if (Status s = mark.run("mark session " + session_id + " booked"); !s.ok()) return s;
    if (mark.changes() == 0) return {};  // booked by an earlier call (or gone)
    for (const auto& e : entries) {
      Stmt st(c,
              "INSERT INTO cost_ledger (session_id, user_id, team, project, device, gpu_model, profile, start_ms, "
              "end_ms, usd_per_hour, share, cost_micros, idle_ms, idle_cost_micros) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      st.text(e.h.session_id).text(e.h.user_id).text(e.h.team).text(e.h.project).text(e.h.device);
      st.text(e.h.gpu_model).text(e.h.profile).int64(e.h.start_ms).int64(e.h.end_ms).real(e.usd_per_hour);
      st.real(e.h.share).int64(e.cost_micros).int64(e.idle_ms).int64(e.idle_cost_micros);
      if (Status s = st.run("write ledger of " + session_id); !s.ok()) return s;
    }
    return {};
  };
  Status done;
  for (const auto& [id, entries] : sessions) {
    done = one(id, entries);
    if (!done.ok()) break;
  }
  if (done.ok()) done = c.exec("COMMIT", "commit booking");
  if (!done.ok()) (void)sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return done;
}

Result<std::vector<LedgerEntry>> CostStore::entriesOf(const std::string& session_id) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c,
          "SELECT session_id, user_id, team, project, device, gpu_model, profile, start_ms, end_ms, usd_per_hour, "
          "share, cost_micros, idle_ms, idle_cost_micros FROM cost_ledger WHERE session_id = ? ORDER BY start_ms");
  st.text(session_id);
  std::vector<LedgerEntry> out;
  for (;;) {
    auto row = st.next("read ledger of " + session_id);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    LedgerEntry e;
    e.h = {st.textAt(0), st.textAt(1), st.textAt(2), st.textAt(3), st.textAt(4), st.textAt(5), st.textAt(6),
           st.realAt(10), st.int64At(7), st.int64At(8)};
    e.usd_per_hour = st.realAt(9);
    e.cost_micros = st.int64At(11);
    e.idle_ms = st.int64At(12);
    e.idle_cost_micros = st.int64At(13);
    out.push_back(std::move(e));
  }
}

Result<std::vector<Span>> CostStore::idleSpans(const std::string& device, int64_t from_ms, int64_t to_ms,
                                               double threshold) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  // A minute with no samples is not idle: nothing known is not nothing done.
  Stmt st(c,
          "SELECT minute FROM gpu_samples_minute WHERE device = ? AND minute > ? - 60000 AND minute < ? "
          "AND procs_max = 0 AND (util_max IS NULL OR util_max <= ?) ORDER BY minute");
  st.text(device).int64(from_ms).int64(to_ms).real(threshold);
  std::vector<Span> out;
  for (;;) {
    auto row = st.next("read idle minutes of " + device);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    const int64_t m = st.int64At(0);
    Span s{std::max(m, from_ms), std::min(m + 60000, to_ms)};
    if (!out.empty() && out.back().end_ms >= s.start_ms) {
      out.back().end_ms = std::max(out.back().end_ms, s.end_ms);
    } else if (s.end_ms > s.start_ms) {
      out.push_back(s);
    }
  }
}

Result<std::vector<CostSession>> CostStore::endedSessionsBetween(int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, (std::string("SELECT ") + kSessionColumns +
              " FROM sessions INDEXED BY sessions_by_end WHERE status IN ('ended','failed') AND ended_at >= ? "
              "AND ended_at < ? ORDER BY ended_at")
                 .c_str());
  st.int64(from_ms).int64(to_ms);
  return readSessions(st, "read sessions ended in a window");
}

Result<DevicePeak> CostStore::devicePeak(const std::string& device, const std::string& session_id, int64_t from_ms,
                                         int64_t to_ms) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c,
          "SELECT count(*), max(mem_used_max), max(util_avg), max(util_max) FROM gpu_samples_minute "
          "WHERE device = ? AND minute > ? - 60000 AND minute < ? AND session_id IN (?, '')");
  st.text(device).int64(from_ms).int64(to_ms).text(session_id);
  auto row = st.next("read the peak of " + device);
  if (!row.ok()) return row.error();
  DevicePeak p;
  if (!*row) return p;
  p.minutes = st.int64At(0);
  if (!st.isNull(1)) p.memory_used_mib = st.realAt(1);
  if (!st.isNull(2)) p.utilization = st.realAt(2);
  if (!st.isNull(3)) p.utilization_max = st.realAt(3);
  return p;
}

Result<std::vector<EntrySpan>> CostStore::entriesBetween(const std::string& column, int64_t from_ms, int64_t to_ms) {
  if (!isCostGroupColumn(column)) return invalid("cannot group cost by '" + column + "'");
  // Entries never cross a UTC midnight, so one starting a day before `from`
  // is the earliest that can overlap it; the start index bounds the scan.
  const std::string sql = "SELECT " + column +
                          ", start_ms, end_ms, cost_micros FROM cost_ledger WHERE start_ms >= ? AND start_ms < ? "
                          "AND end_ms > ? ORDER BY start_ms";
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, sql.c_str());
  st.int64(from_ms - kDayMs).int64(to_ms).int64(from_ms);
  std::vector<EntrySpan> out;
  for (;;) {
    auto row = st.next("read ledger entries");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back({st.textAt(0), st.int64At(1), st.int64At(2), st.int64At(3)});
  }
}

Result<std::vector<DayTotal>> CostStore::sumByDay(const std::string& column, int64_t from_ms, int64_t to_ms,
                                                  const std::string& filter_column, const std::string& filter) {
  const char* base = sumSql(column);
  if (base == nullptr) return invalid("cannot group cost by '" + column + "'");
  std::string sql = base;
  if (!filter_column.empty()) {
    if (!isCostGroupColumn(filter_column)) return invalid("cannot filter cost by '" + filter_column + "'");
    // The filter column is one of the fixed names above; its value is bound.
    sql.insert(sql.find("GROUP BY"), "AND " + filter_column + " = ?3 ");
  }
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, sql.c_str());
  st.int64(from_ms).int64(to_ms);
  if (!filter_column.empty()) st.text(filter);
  std::vector<DayTotal> out;
  for (;;) {
    auto row = st.next("sum the cost ledger");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back({st.textAt(0), st.int64At(1), st.realAt(2), st.realAt(3), st.realAt(4), st.realAt(5)});
  }
}

Result<std::vector<CostCounter>> CostStore::bookedTotals() {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c,
          "SELECT user_id, team, project, gpu_model, sum(cost_micros), sum(idle_cost_micros) FROM cost_ledger "
          "GROUP BY 1, 2, 3, 4");
  std::vector<CostCounter> out;
  for (;;) {
    auto row = st.next("sum the ledger per payer");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back({st.textAt(0), st.textAt(1), st.textAt(2), st.textAt(3), st.int64At(4), st.int64At(5)});
  }
}

Result<std::vector<Budget>> CostStore::budgets() {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "SELECT id, scope, name, usd_per_month, created_at FROM budgets ORDER BY scope, name");
  std::vector<Budget> out;
  for (;;) {
    auto row = st.next("list budgets");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    Budget b;
    b.id = st.int64At(0);
    b.scope = parseBudgetScope(st.textAt(1)).value_or(BudgetScope::kTeam);
    b.name = st.textAt(2);
    b.usd_per_month = st.realAt(3);
    b.created_at = fromUnixMillis(st.int64At(4));
    out.push_back(std::move(b));
  }
}

Result<Budget> CostStore::putBudget(const Budget& b) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c,
          "INSERT INTO budgets (scope, name, usd_per_month, created_at) VALUES (?, ?, ?, ?) "
          "ON CONFLICT(scope, name) DO UPDATE SET usd_per_month = excluded.usd_per_month");
  st.text(toString(b.scope)).text(b.name).real(b.usd_per_month).int64(toUnixMillis(b.created_at));
  if (Status s = st.run("set budget of " + b.name); !s.ok()) return s.error();
  Stmt id(c, "SELECT id, created_at FROM budgets WHERE scope = ? AND name = ?");
  id.text(toString(b.scope)).text(b.name);
  auto row = id.next("read budget of " + b.name);
  if (!row.ok()) return row.error();
  Budget out = b;
  if (*row) {
    out.id = id.int64At(0);
    out.created_at = fromUnixMillis(id.int64At(1));
  }
  return out;
}

Status CostStore::removeBudget(int64_t id) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "DELETE FROM budgets WHERE id = ?");
  st.int64(id);
  if (Status s = st.run("remove budget " + std::to_string(id)); !s.ok()) return s;
  if (st.changes() == 0) return notFound("no budget " + std::to_string(id) + "; GET /api/v1/budgets lists them");
  return {};
}

}  // namespace sandman
