// DemandStore: what people asked for, whether they got it, and (through the
// session an accepted request became) for how long: the demand table of the
// daemon's SQLite file (store migration 12), on a connection of its own.
// Layout advice replays it. Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

struct sqlite3;

namespace sandman {

// accepted | refused_capacity | refused_budget | queued (no queue today).
bool isDemandOutcome(const std::string& s);

struct DemandRecord {
  int64_t id = 0;
  int64_t at_ms = 0;
  std::string user_id;
  std::string team;
  std::string project;
  std::string mig_profile;  // as asked ("whole", "3g.40gb"); "" with gpu_memory_gb or for the default
  std::optional<double> gpu_memory_gb;
  std::string workload;  // "inference" | "training" | ""
  std::string outcome;
  std::string session_id;       // accepted only
  std::string granted_profile;  // accepted only
  std::string gpu_model;        // accepted only
  std::string reason;           // refused only
  // Read from the session (accepted ones whose session is still in the store):
  std::optional<int64_t> session_created_ms;
  std::optional<int64_t> session_ended_ms;  // none while it runs
};

struct DemandFilter {
  std::optional<int64_t> from_ms;  // at >= from
  std::optional<int64_t> to_ms;    // at < to
  std::optional<std::string> outcome;
  std::optional<int64_t> after_id;  // oldest first: rows with a larger id
  std::optional<size_t> limit;
};

class DemandStore {
 public:
  // Open after SqliteStore::open has migrated the file.
  static Result<std::unique_ptr<DemandStore>> open(const std::string& path);
  ~DemandStore();
  DemandStore(const DemandStore&) = delete;
  DemandStore& operator=(const DemandStore&) = delete;

  Status record(const DemandRecord& r);
  // Oldest first, with each accepted record's session times where known.
  Result<std::vector<DemandRecord>> list(const DemandFilter& f);

 private:
  DemandStore(sqlite3* db, std::string path);

  std::mutex mu_;
  const std::string path_;
  sqlite3* db_;  // GUARDED_BY(mu_)
};

using DemandStorePtr = std::unique_ptr<DemandStore>;

}  // namespace sandman
