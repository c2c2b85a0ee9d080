// SqliteStore: retention of session history (ended sessions and session
// events), deleted in small batches so that no request waits long on the lock.
#include <string>
#include <vector>

#include "common/time_format.h"
#include "store/session_sql.h"
#include "store/sqlite_stmt.h"
#include "store/sqlite_store.h"

namespace sandman {

using sql::Conn;
using sql::Stmt;

namespace {

// Ids of up to `batch` sessions that ended before `before`, found through
// sessions_by_end. A session whose MIG instance still awaits release is kept:
// reconcile retries the release from its row.
Result<std::vector<std::string>> expiredSessions(const Conn& c, TimePoint before, int batch) {
  Stmt st(c, "SELECT id FROM sessions WHERE status IN ('ended', 'failed') AND ended_at < ? "
             "AND id NOT IN (SELECT id FROM sessions WHERE " SANDMAN_HOLDS_GPU ") LIMIT ?");
  st.int64(toUnixMillis(before)).int64(batch);
  std::vector<std::string> ids;
  for (;;) {
    auto row = st.next("choose sessions to prune");
    if (!row.ok()) return row.error();
    if (!*row) return ids;
    ids.push_back(st.textAt(0));
  }
}

// "DELETE FROM <table> WHERE <column> IN (?, ?, ...)" for `ids`, bound.
Status deleteIn(const Conn& c, const char* table, const char* column, const std::vector<std::string>& ids,
                int64_t* changes) {
  std::string sql = std::string("DELETE FROM ") + table + " WHERE " + column + " IN (";
  for (size_t i = 0; i < ids.size(); ++i) sql += i == 0 ? "?" : ", ?";
  sql += ")";
  Stmt st(c, sql.c_str());
  for (const auto& id : ids) st.text(id);
  Status done = st.run(std::string("prune ") + table);
  if (done.ok() && changes != nullptr) *changes = st.changes();
  return done;
}

}  // namespace

Result<int64_t> SqliteStore::pruneEndedSessions(TimePoint before, int batch) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  // One transaction: a session goes with its events, or neither does.
  if (Status st = c.exec("BEGIN IMMEDIATE", "begin session pruning"); !st.ok()) return st.error();
  int64_t deleted = 0;
  Status done;
  auto ids = expiredSessions(c, before, batch);
  if (!ids.ok()) done = ids.error();
  if (done.ok() && !ids->empty()) done = deleteIn(c, "session_events", "session_id", *ids, nullptr);
  if (done.ok() && !ids->empty()) done = deleteIn(c, "sessions", "id", *ids, &deleted);
  if (done.ok()) done = c.exec("COMMIT", "commit session pruning");
  if (!done.ok()) {
    (void)sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return done.error();
  }
  return deleted;
}

Result<int64_t> SqliteStore::pruneSessionEvents(TimePoint before, int batch) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  Stmt st(c, "DELETE FROM session_events WHERE id IN (SELECT id FROM session_events WHERE at < ? LIMIT ?)");
  st.int64(toUnixMillis(before)).int64(batch);
  if (Status s = st.run("prune session events"); !s.ok()) return s.error();
  return static_cast<int64_t>(st.changes());
}

Result<int64_t> SqliteStore::pruneDemand(TimePoint before, int batch) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  Stmt st(c, "DELETE FROM demand WHERE id IN (SELECT id FROM demand WHERE at < ? LIMIT ?)");
  st.int64(toUnixMillis(before)).int64(batch);
  if (Status s = st.run("prune demand"); !s.ok()) return s.error();
  return static_cast<int64_t>(st.changes());
}

}  // namespace sandman
