// SqliteStore: the Store on one SQLite file (WAL, versioned schema). The
// database itself enforces "one active session per user and per port".
// Thread-safe: one connection, every use under mu_.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/store.h"

struct sqlite3;

namespace sandman {

class SqliteStore final : public Store {
 public:
  // Creates the parent directory (0700) and the file (0600) when missing,
  // then brings the schema up to date. kUnavailable (naming the path) when
  // the file cannot be opened, is not a database, or has a schema newer than
  // this build understands.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // fn must use only the StoreTx it is given: calling this store's own
  // methods from inside fn returns kInternal instead of deadlocking.
  Status transaction(const std::function<Status(StoreTx&)>& fn) override;

  Result<Session> getSession(const std::string& id) override;
  Result<std::vector<Session>> listSessions(const SessionFilter& f) override;
  Result<std::vector<Session>> activeSessions() override;  // oldest first
  Result<std::vector<Session>> endedSessionsHoldingGpu() override;
  Status updateSession(const Session& s) override;
  Result<bool> updateSessionIf(const Session& s, SessionStatus expected,
                               std::optional<TimePoint> expected_expires) override;
  Result<UserAccount> getUser(const std::string& user_id) override;
  Result<std::map<std::string, int64_t>> countSessionsByStatus() override;
  Result<SessionCounts> sessionCounts() override;
  Status ping() override;

  // sqlite_store_records.cc
  Result<UserKey> addUserKey(const UserKey& key) override;
  Result<std::vector<UserKey>> listUserKeys(const std::string& user_id, const RowPage& page = {}) override;
  Status deleteUserKey(const std::string& user_id, int64_t key_id) override;
  Result<int64_t> insertConnection(const ConnectionRecord& c) override;
  Status finishConnection(const ConnectionRecord& c) override;
  Result<std::vector<ConnectionRecord>> listConnections(const std::string& session_id,
                                                        const RowPage& page = {}) override;
  Result<int64_t> pruneConnections(TimePoint before, int limit) override;
  Status addSessionEvent(const SessionEvent& e) override;
  Result<std::vector<SessionEvent>> listSessionEvents(const std::string& session_id,
                                                      const RowPage& page = {}) override;

  // sqlite_store_retention.cc
  Result<int64_t> pruneEndedSessions(TimePoint before, int batch) override;
  Result<int64_t> pruneSessionEvents(TimePoint before, int batch) override;
  Result<int64_t> pruneDemand(TimePoint before, int batch) override;

  const std::string& path() const { return path_; }
  int schemaVersion() const { return schema_version_; }

  static constexpr int kFirstUid = 200000;

 private:
  SqliteStore(sqlite3* db, std::string path, int schema_version);
  // Locks mu_ unless this thread already holds it for a transaction.
  std::unique_lock<std::mutex> lock(Status* reentered);

  const std::string path_;
  const int schema_version_;
  std::mutex mu_;
  sqlite3* const db_;  // GUARDED_BY(mu_): owned; every statement runs under mu_
  std::atomic<std::thread::id> tx_owner_{};  // thread inside transaction(), if any
};

using SqliteStorePtr = std::unique_ptr<SqliteStore>;

}  // namespace sandman
