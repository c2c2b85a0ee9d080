// Conn and Stmt: the SQLite connection as error messages name it, and
// prepared statements with positional binds (values are never pasted into
// SQL). The store's SQL interface for every table owner (store/, alerts/),
// on connections from openSqlite (store/sqlite_connection.h). Not
// thread-safe: each owner serialises use of its own connection.
#pragma once

#include <sqlite3.h>

#include <cerrno>

#include <optional>
#include <string>

#include "common/result.h"
#include "common/time_format.h"

namespace sandman::sql {

// The connection plus what error messages need to name.
struct Conn {
  sqlite3* db;
  const std::string& path;

  Error error(int rc, const std::string& what) const {
    std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    std::string msg = what + ": " + detail;
    // A full disk is its own answer (507): nothing is wrong with the file, and
    // the same write succeeds once space is freed. SQLite reports ENOSPC as
    // SQLITE_FULL on most writes, as an I/O error on some (WAL, fsync).
    if ((rc & 0xff) == SQLITE_FULL ||
        ((rc & 0xff) == SQLITE_IOERR && db != nullptr && sqlite3_system_errno(db) == ENOSPC)) {
      return noSpace("store " + path + ": " + msg + "; its file system is full: free space there, then retry");
    }
    switch (rc & 0xff) {
      case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
          return conflict(msg);
        }
        return internal(msg);
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
      case SQLITE_IOERR:
      case SQLITE_FULL:
      case SQLITE_CANTOPEN:
      case SQLITE_READONLY:
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
      case SQLITE_PERM:
      case SQLITE_PROTOCOL:
      case SQLITE_NOLFS:
        return unavailable("store " + path + ": " + msg +
                           "; check the file, its directory and free disk space");
      default:
        return internal("store " + path + ": " + msg);
    }
  }

  // Static SQL only (schema, BEGIN/COMMIT): values always go through Stmt.
  Status exec(const char* sql, const std::string& what) const {
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return error(rc, what);
    return {};
  }
};

// A prepared statement with positional binds; finalized on every path.
class Stmt {
 public:
  Stmt(const Conn& c, const char* sql) : c_(c) {
    rc_ = sqlite3_prepare_v2(c.db, sql, -1, &st_, nullptr);
  }
  // A statement its owner prepared once and keeps (a hot path's cache; null
  // when preparing it failed): bound and stepped the same way, reset rather
  // than finalized when this goes.
  Stmt(const Conn& c, sqlite3_stmt* cached) : c_(c), st_(cached), owned_(false) {
    if (st_ == nullptr) {
      rc_ = sqlite3_errcode(c.db) != SQLITE_OK ? sqlite3_errcode(c.db) : SQLITE_ERROR;
      return;
    }
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  ~Stmt() {
    if (owned_) {
      sqlite3_finalize(st_);
    } else if (st_ != nullptr) {
      sqlite3_reset(st_);
    }
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& text(const std::string& v) {
    return check(sqlite3_bind_text(st_, ++arg_, v.data(), static_cast<int>(v.size()),
                                   SQLITE_TRANSIENT));
  }
  Stmt& int64(int64_t v) { return check(sqlite3_bind_int64(st_, ++arg_, v)); }
  Stmt& real(double v) { return check(sqlite3_bind_double(st_, ++arg_, v)); }
  Stmt& optText(const std::optional<std::string>& v) {
    return v ? text(*v) : check(sqlite3_bind_null(st_, ++arg_));
  }
  Stmt& optReal(const std::optional<double>& v) {
    return v ? real(*v) : check(sqlite3_bind_null(st_, ++arg_));
  }
  Stmt& optTime(const std::optional<TimePoint>& v) {
    return v ? int64(toUnixMillis(*v)) : check(sqlite3_bind_null(st_, ++arg_));
  }

  // true: a row is ready; false: done.
  Result<bool> next(const std::string& what) {
    if (rc_ != SQLITE_OK) return c_.error(rc_, what);
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return c_.error(rc, what);
  }
  Status run(const std::string& what) {
    auto r = next(what);
    return r.status();
  }

  bool isNull(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
  int64_t int64At(int col) const { return sqlite3_column_int64(st_, col); }
  double realAt(int col) const { return sqlite3_column_double(st_, col); }
  std::optional<double> optRealAt(int col) const {
    return isNull(col) ? std::nullopt : std::optional<double>(realAt(col));
  }
  std::string textAt(int col) const {
    const auto* p = sqlite3_column_text(st_, col);
    int n = sqlite3_column_bytes(st_, col);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n))
                        : std::string();
  }
  int changes() const { return sqlite3_changes(c_.db); }

 private:
  Stmt& check(int rc) {
    if (rc_ == SQLITE_OK && rc != SQLITE_OK) rc_ = rc;
    return *this;
  }

  const Conn& c_;
  sqlite3_stmt* st_ = nullptr;
  bool owned_ = true;
  int rc_ = SQLITE_OK;
  int arg_ = 0;
};

}  // namespace sandman::sql
