// SqliteStore: registered user keys and gateway connection records.
#include "common/time_format.h"
#include "store/sqlite_stmt.h"
#include "store/sqlite_store.h"

namespace sandman {
namespace {

using sql::Conn;
using sql::Stmt;

constexpr const char* kConnectionColumns =
    "id, user_id, session_id, source, outcome, reason, started_at, ended_at, bytes_in, bytes_out";

UserKey readKey(const Stmt& st) {
  return {st.int64At(0), st.textAt(1), st.textAt(2), st.textAt(3), fromUnixMillis(st.int64At(4))};
}

ConnectionRecord readConnection(const Stmt& st) {
  ConnectionRecord c;
  c.id = st.int64At(0);
  c.user_id = st.textAt(1);
  c.session_id = st.textAt(2);
  c.source = st.textAt(3);
  c.outcome = st.textAt(4);
  c.reason = st.textAt(5);
  c.started_at = fromUnixMillis(st.int64At(6));
  if (!st.isNull(7)) c.ended_at = fromUnixMillis(st.int64At(7));
  c.bytes_in = static_cast<uint64_t>(st.int64At(8));
  c.bytes_out = static_cast<uint64_t>(st.int64At(9));
  return c;
}

// Appends a page's conditions and order to `sql` (fixed text only). `time_col`
// is the row's own time; `newest_first` orders by id descending.
std::string pageSql(std::string sql, const RowPage& p, const char* time_col, bool newest_first) {
  if (p.after_id) sql += newest_first ? " AND id < ?" : " AND id > ?";
  if (p.from) sql += std::string(" AND ") + time_col + " >= ?";
  if (p.to) sql += std::string(" AND ") + time_col + " < ?";
  sql += newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  if (p.limit) sql += " LIMIT ?";
  return sql;
}

// Binds what pageSql added, in its order, after the caller's own values.
void bindPage(Stmt& st, const RowPage& p) {
  if (p.after_id) st.int64(*p.after_id);
  if (p.from) st.int64(toUnixMillis(*p.from));
  if (p.to) st.int64(toUnixMillis(*p.to));
  if (p.limit) st.int64(static_cast<int64_t>(*p.limit));
}

Result<std::optional<UserKey>> findKey(const Conn& c, const std::string& user_id, const std::string& fingerprint) {
  Stmt st(c, "SELECT id, user_id, public_key, fingerprint, created_at FROM user_keys "
             "WHERE user_id = ? AND fingerprint = ?");
  st.text(user_id).text(fingerprint);
  auto row = st.next("read key of " + user_id);
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<UserKey>();
  return std::optional<UserKey>(readKey(st));
}

}  // namespace

Result<UserKey> SqliteStore::addUserKey(const UserKey& key) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  auto existing = findKey(c, key.user_id, key.fingerprint);
  if (!existing.ok()) return existing.error();
  if (*existing) return **existing;
  Stmt st(c, "INSERT INTO user_keys (user_id, public_key, fingerprint, created_at) VALUES (?, ?, ?, ?)");
  st.text(key.user_id).text(key.public_key).text(key.fingerprint).int64(toUnixMillis(key.created_at));
  if (Status s = st.run("add key for " + key.user_id); !s.ok()) return s.error();
  UserKey out = key;
  out.id = sqlite3_last_insert_rowid(db_);
  return out;
}

Result<std::vector<UserKey>> SqliteStore::listUserKeys(const std::string& user_id, const RowPage& page) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  std::string sql = pageSql("SELECT id, user_id, public_key, fingerprint, created_at FROM user_keys WHERE user_id = ?",
                            page, "created_at", false);
  Stmt st(c, sql.c_str());
  st.text(user_id);
  bindPage(st, page);
  std::vector<UserKey> out;
  for (;;) {
    auto row = st.next("list keys of " + user_id);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back(readKey(st));
  }
}

Status SqliteStore::deleteUserKey(const std::string& user_id, int64_t key_id) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered;
  Conn c{db_, path_};
  Stmt st(c, "DELETE FROM user_keys WHERE user_id = ? AND id = ?");
  st.text(user_id).int64(key_id);
  if (Status s = st.run("delete key of " + user_id); !s.ok()) return s;
  if (st.changes() == 0) return notFound("user " + user_id + " has no key " + std::to_string(key_id));
  return {};
}

Result<int64_t> SqliteStore::insertConnection(const ConnectionRecord& r) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  Stmt st(c, "INSERT INTO connections (user_id, session_id, source, outcome, reason, started_at, ended_at, "
             "bytes_in, bytes_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  st.text(r.user_id).text(r.session_id).text(r.source).text(r.outcome).text(r.reason);
  st.int64(toUnixMillis(r.started_at)).optTime(r.ended_at);
  st.int64(static_cast<int64_t>(r.bytes_in)).int64(static_cast<int64_t>(r.bytes_out));
  if (Status s = st.run("record connection"); !s.ok()) return s.error();
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status SqliteStore::finishConnection(const ConnectionRecord& r) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered;
  Conn c{db_, path_};
  Stmt st(c, "UPDATE connections SET outcome = ?, reason = ?, ended_at = ?, bytes_in = ?, bytes_out = ? WHERE id = ?");
  st.text(r.outcome).text(r.reason).optTime(r.ended_at);
  st.int64(static_cast<int64_t>(r.bytes_in)).int64(static_cast<int64_t>(r.bytes_out)).int64(r.id);
  if (Status s = st.run("finish connection"); !s.ok()) return s;
  if (st.changes() == 0) return notFound("no connection " + std::to_string(r.id));
  return {};
}

Result<std::vector<ConnectionRecord>> SqliteStore::listConnections(const std::string& session_id,
                                                                 const RowPage& page) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  // Newest first by id: ids grow with started_at (a record is written when
  // the connection starts), and an id is a key no insert can shift.
  std::string sql = pageSql(std::string("SELECT ") + kConnectionColumns + " FROM connections WHERE session_id = ?",
                            page, "started_at", true);
  Stmt st(c, sql.c_str());
  st.text(session_id);
  bindPage(st, page);
  std::vector<ConnectionRecord> out;
  for (;;) {
    auto row = st.next("list connections of " + session_id);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back(readConnection(st));
  }
}

Result<int64_t> SqliteStore::pruneConnections(TimePoint before, int limit) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  // started_at (indexed) bounds the scan; a record still open is kept until
  // it too is older than the cut-off (a crash can leave ended_at unset).
  Stmt st(c, "DELETE FROM connections WHERE id IN (SELECT id FROM connections WHERE started_at < ?1 "
             "AND COALESCE(ended_at, started_at) < ?1 ORDER BY started_at LIMIT ?2)");
  st.int64(toUnixMillis(before)).int64(limit);
  if (Status s = st.run("prune connections"); !s.ok()) return s.error();
  return static_cast<int64_t>(st.changes());
}

Status SqliteStore::addSessionEvent(const SessionEvent& e) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered;
  Conn c{db_, path_};
  Stmt st(c, "INSERT INTO session_events (session_id, at, kind, detail) VALUES (?, ?, ?, ?)");
  st.text(e.session_id).int64(toUnixMillis(e.at)).text(e.kind).text(e.detail);
  return st.run("record event of " + e.session_id);
}

Result<std::vector<SessionEvent>> SqliteStore::listSessionEvents(const std::string& session_id,
                                                                const RowPage& page) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  // Oldest first by id (events are written as they happen).
  std::string sql =
      pageSql("SELECT id, session_id, at, kind, detail FROM session_events WHERE session_id = ?", page, "at", false);
  Stmt st(c, sql.c_str());
  st.text(session_id);
  bindPage(st, page);
  std::vector<SessionEvent> out;
  for (;;) {
    auto row = st.next("list events of " + session_id);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back({st.int64At(0), st.textAt(1), fromUnixMillis(st.int64At(2)), st.textAt(3), st.textAt(4)});
  }
}

}  // namespace sandman
