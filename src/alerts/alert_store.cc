#include "alerts/alert_store.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "common/time_format.h"
#include "store/sqlite_connection.h"
#include "store/sqlite_stmt.h"

namespace sandman {
namespace {

using sql::Conn;

using sql::Stmt;

constexpr const char* kColumns =
    "id, rule, severity, fingerprint, labels, state, value, summary, pending_at, fired_at, resolved_at, "
    "acked_at, acked_by";

std::optional<TimePoint> optTimeAt(const Stmt& st, int col) {
  if (st.isNull(col)) return std::nullopt;
  return fromUnixMillis(st.int64At(col));
}

Result<Alert> readAlert(const Stmt& st) {
  Alert a;
  a.id = st.int64At(0);
  a.rule = st.textAt(1);
  a.severity = st.textAt(2);
  a.fingerprint = st.textAt(3);
  auto labels = nlohmann::json::parse(st.textAt(4), nullptr, false);
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) {
      if (v.is_string()) a.labels[k] = v.get<std::string>();
    }
  }
  auto state = parseAlertState(st.textAt(5));
  if (!state) return internal("store: alert " + std::to_string(a.id) + " has unknown state '" + st.textAt(5) + "'");
  a.state = *state;
  a.value = st.isNull(6) ? 0.0 : st.realAt(6);
  a.summary = st.textAt(7);
  a.pending_at = fromUnixMillis(st.int64At(8));
  a.fired_at = optTimeAt(st, 9);
  a.resolved_at = optTimeAt(st, 10);
  a.acked_at = optTimeAt(st, 11);
  a.acked_by = st.textAt(12);
  return a;
}

Result<std::vector<Alert>> readAll(Stmt& st, const std::string& what) {
  std::vector<Alert> out;
  for (;;) {
    auto row = st.next(what);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    auto a = readAlert(st);
    if (!a.ok()) return a.error();
    out.push_back(std::move(a).value());
  }
}

std::string labelsText(const Alert& a) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : a.labels) j[k] = v;
  return j.dump();
}

}  // namespace

Result<std::unique_ptr<AlertStore>> AlertStore::open(const std::string& path) {
  // FULL sync (the default) keeps an acknowledged transition across a power
  // cut, as the session store does.
  SqliteOpenOptions options;
  options.purpose = "alerts";
  options.required_tables = {"alerts"};
  auto db = openSqlite(path, options);
  if (!db.ok()) return db.error();
  return std::unique_ptr<AlertStore>(new AlertStore(db->release(), path));
}

AlertStore::AlertStore(sqlite3* db, std::string path) : path_(std::move(path)), db_(db) {}

AlertStore::~AlertStore() { sqlite3_close_v2(db_); }

Result<int64_t> AlertStore::insert(const Alert& a) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c,
          "INSERT INTO alerts (rule, severity, fingerprint, labels, state, value, summary, pending_at, fired_at, "
          "resolved_at, acked_at, acked_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
  st.text(a.rule).text(a.severity).text(a.fingerprint).text(labelsText(a)).text(alertStateName(a.state));
  st.real(a.value).text(a.summary).int64(toUnixMillis(a.pending_at)).optTime(a.fired_at).optTime(a.resolved_at);
  st.optTime(a.acked_at).text(a.acked_by);
  if (Status s = st.run("insert alert " + a.fingerprint); !s.ok()) return s.error();
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status AlertStore::update(const Alert& a) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c,
          "UPDATE alerts SET state=?, value=?, summary=?, fired_at=?, resolved_at=?, acked_at=?, acked_by=? "
          "WHERE id=?");
  st.text(alertStateName(a.state)).real(a.value).text(a.summary).optTime(a.fired_at).optTime(a.resolved_at);
  st.optTime(a.acked_at).text(a.acked_by).int64(a.id);
  if (Status s = st.run("update alert " + std::to_string(a.id)); !s.ok()) return s;
  if (st.changes() == 0) return notFound("no alert " + std::to_string(a.id));
  return {};
}

Status AlertStore::remove(int64_t id) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "DELETE FROM alerts WHERE id=?");
  st.int64(id);
  return st.run("delete alert " + std::to_string(id));
}

Result<Alert> AlertStore::get(int64_t id) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, (std::string("SELECT ") + kColumns + " FROM alerts WHERE id=?").c_str());
  st.int64(id);
  auto all = readAll(st, "read alert " + std::to_string(id));
  if (!all.ok()) return all.error();
  if (all->empty()) return notFound("no alert " + std::to_string(id) + "; GET /api/v1/alerts?state=all lists them");
  return std::move(all->front());
}

Result<std::vector<Alert>> AlertStore::openAlerts() {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, (std::string("SELECT ") + kColumns +
              " FROM alerts WHERE state IN ('pending','firing') ORDER BY id").c_str());
  return readAll(st, "read open alerts");
}

Result<std::vector<Alert>> AlertStore::list(std::optional<AlertState> state, size_t limit) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  std::string sql = std::string("SELECT ") + kColumns + " FROM alerts";
  if (state) sql += " WHERE state=?";
  sql += " ORDER BY id DESC LIMIT ?";
  Stmt st(c, sql.c_str());
  if (state) st.text(alertStateName(*state));
  st.int64(static_cast<int64_t>(limit));
  return readAll(st, "list alerts");
}

Result<int64_t> AlertStore::pruneResolved(TimePoint before) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "DELETE FROM alerts WHERE state='resolved' AND resolved_at < ?");
  st.int64(toUnixMillis(before));
  if (Status s = st.run("prune resolved alerts"); !s.ok()) return s.error();
  return static_cast<int64_t>(st.changes());
}

}  // namespace sandman
