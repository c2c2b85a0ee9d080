#include "cost/demand_store.h"

#include <sqlite3.h>

#include "store/sqlite_connection.h"
#include "store/sqlite_stmt.h"

namespace sandman {

using sql::Conn;
using sql::Stmt;

bool isDemandOutcome(const std::string& s) {
  return s == "accepted" || s == "refused_capacity" || s == "refused_budget" || s == "queued";
}

Result<std::unique_ptr<DemandStore>> DemandStore::open(const std::string& path) {
  SqliteOpenOptions options;
  options.purpose = "demand";
  options.required_tables = {"demand"};
  auto db = openSqlite(path, options);
  if (!db.ok()) return db.error();
  return std::unique_ptr<DemandStore>(new DemandStore(db->release(), path));
}

DemandStore::DemandStore(sqlite3* db, std::string path) : path_(std::move(path)), db_(db) {}

DemandStore::~DemandStore() { sqlite3_close_v2(db_); }

Status DemandStore::record(const DemandRecord& r) {
  if (!isDemandOutcome(r.outcome)) return invalid("unknown demand outcome '" + r.outcome + "'");
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c,
          "INSERT INTO demand (at, user_id, team, project, mig_profile, gpu_memory_gb, workload, outcome, "
          "session_id, granted_profile, gpu_model, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  st.int64(r.at_ms).text(r.user_id).text(r.team).text(r.project).text(r.mig_profile).optReal(r.gpu_memory_gb);
  st.text(r.workload).text(r.outcome).text(r.session_id).text(r.granted_profile).text(r.gpu_model).text(r.reason);
  return st.run("record demand of " + r.user_id);
}

Result<std::vector<DemandRecord>> DemandStore::list(const DemandFilter& f) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  // Every filter is always bound (a neutral value when absent): one statement text.
  Stmt st(c,
          "SELECT d.id, d.at, d.user_id, d.team, d.project, d.mig_profile, d.gpu_memory_gb, d.workload, d.outcome, "
          "d.session_id, d.granted_profile, d.gpu_model, d.reason, s.created_at, s.ended_at "
          "FROM demand d LEFT JOIN sessions s ON d.session_id != '' AND s.id = d.session_id "
          "WHERE d.at >= ? AND d.at < ? AND (? = '' OR d.outcome = ?) AND d.id > ? ORDER BY d.id LIMIT ?");
  const std::string outcome = f.outcome.value_or("");
  st.int64(f.from_ms.value_or(INT64_MIN)).int64(f.to_ms.value_or(INT64_MAX)).text(outcome).text(outcome);
  st.int64(f.after_id.value_or(0)).int64(f.limit ? static_cast<int64_t>(*f.limit) : -1);
  std::vector<DemandRecord> out;
  for (;;) {
    auto row = st.next("list demand");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    DemandRecord r;
    r.id = st.int64At(0);
    r.at_ms = st.int64At(1);
    r.user_id = st.textAt(2);
    r.team = st.textAt(3);
    r.project = st.textAt(4);
    r.mig_profile = st.textAt(5);
    r.gpu_memory_gb = st.optRealAt(6);
    r.workload = st.textAt(7);
    r.outcome = st.textAt(8);
    r.session_id = st.textAt(9);
    r.granted_profile = st.textAt(10);
    r.gpu_model = st.textAt(11);
    r.reason = st.textAt(12);
    if (!st.isNull(13)) r.session_created_ms = st.int64At(13);
    if (!st.isNull(14)) r.session_ended_ms = st.int64At(14);
    out.push_back(std::move(r));
  }
}

}  // namespace sandman
