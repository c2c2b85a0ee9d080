#include "store/sqlite_connection.h"

#include "store/sqlite_stmt.h"

namespace sandman {

namespace {
constexpr int kBusyTimeoutMs = 5000;
}  // namespace

Result<SqliteHandle> openSqlite(const std::string& path, const SqliteOpenOptions& o) {
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (o.create ? SQLITE_OPEN_CREATE : 0);
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  SqliteHandle db(raw);  // a handle needs closing even when the open failed
  sql::Conn c{db.get(), path};
  if (rc != SQLITE_OK) return c.error(rc, "open for " + o.purpose);
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  {
    // WAL is a property of the file: readers never wait for the writer.
    sql::Stmt wal(c, "PRAGMA journal_mode=WAL");
    auto row = wal.next("enable WAL for " + o.purpose);
    if (!row.ok()) return row.error();
    if (!*row || wal.textAt(0) != "wal") {
      return unavailable(o.purpose + ": " + path + " cannot switch to WAL mode (got '" +
                         (*row ? wal.textAt(0) : std::string()) + "'); put the database on a local file system");
    }
  }
  std::string pragmas = o.synchronous_full ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;";
  pragmas += "PRAGMA foreign_keys=ON;";
  if (o.read_only) pragmas += "PRAGMA query_only=ON;";
  if (Status st = c.exec(pragmas.c_str(), "set pragmas for " + o.purpose); !st.ok()) return st.error();
  for (const auto& table : o.required_tables) {
    sql::Stmt probe(c, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1");
    probe.text(table);
    auto row = probe.next("look for table " + table);
    if (!row.ok()) return row.error();
    if (!*row || probe.int64At(0) != 1) {
      return unavailable(o.purpose + ": " + path + " has no " + table +
                         " table; open it with this build's store first (it migrates the file)");
    }
  }
  return db;
}

}  // namespace sandman
