// AlertStore: alert episodes in the daemon's SQLite file (table `alerts`,
// created by SqliteStore's migrations), on a connection of its own so alert
// writes never queue behind session transactions. Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "alerts/alert.h"
#include "common/result.h"

struct sqlite3;

namespace sandman {

class AlertStore {
 public:
  // Open after SqliteStore::open has migrated the file. kUnavailable when the
  // file cannot be opened or has no alerts table.
  static Result<std::unique_ptr<AlertStore>> open(const std::string& path);
  ~AlertStore();
  AlertStore(const AlertStore&) = delete;
  AlertStore& operator=(const AlertStore&) = delete;

  // The new row's id. kConflict when the fingerprint already has an open alert.
  Result<int64_t> insert(const Alert& a);
  // Rewrites every mutable column of row a.id; kNotFound when it is gone.
  Status update(const Alert& a);
  Status remove(int64_t id);
  Result<Alert> get(int64_t id);
  // pending and firing rows, oldest first: the engine's state after a restart.
  Result<std::vector<Alert>> openAlerts();
  // Newest first; state absent: every state.
  Result<std::vector<Alert>> list(std::optional<AlertState> state, size_t limit);
  // Deletes resolved alerts that resolved before `before`; how many went.
  Result<int64_t> pruneResolved(TimePoint before);

 private:
  AlertStore(sqlite3* db, std::string path);

  std::mutex mu_;
  const std::string path_;
  sqlite3* db_;  // GUARDED_BY(mu_)
};

using AlertStorePtr = std::unique_ptr<AlertStore>;

}  // namespace sandman
