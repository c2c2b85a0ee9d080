// The one way Sandman opens its SQLite file: every connection (the session
// store's, the telemetry history's writer and reader, the alert store's) gets
// the same flags, extended error codes, busy timeout and WAL check here, and
// says which tables it needs. Table owners then talk SQL through Conn/Stmt
// (store/sqlite_stmt.h). Thread-safe (a connection is not: one per user).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace sandman {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteCloser>;

struct SqliteOpenOptions {
  std::string purpose;  // for errors: "store", "metrics history", "alerts"
  // Only the session store creates the file (and migrates it); every other
  // connection opens the file it made.
  bool create = false;
  bool read_only = false;  // PRAGMA query_only: a reader that can never write
  // FULL keeps an acknowledged write across a power cut; NORMAL (WAL) may lose
  // the last transactions, which suits derived data such as telemetry.
  bool synchronous_full = true;
  // Tables that must exist: a file older than this build's store is refused
  // at open, not at the first query.
  std::vector<std::string> required_tables;
};

Result<SqliteHandle> openSqlite(const std::string& path, const SqliteOpenOptions& options);

}  // namespace sandman
