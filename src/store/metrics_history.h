// MetricsHistory: telemetry history in the store's SQLite file: raw samples
// (kept raw_retention), rolled up into per-minute min/avg/max (kept retention).
// Owns two connections of its own to the file SqliteStore has migrated: one
// for the sampler's writes, one for API reads, so a query never waits for a
// write (WAL) and neither ever takes SqliteStore's lock. Pruning deletes in
// small batches, each its own short transaction, so writers are never stalled.
// Thread-safe: record()/rollup()/prune()/flush() serialise on the write
// connection; queries serialise on the read connection.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "model/gpu_snapshot.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sandman {

struct MetricsHistoryOptions {
  Millis raw_retention{24LL * 3600 * 1000};
  Millis retention{30LL * 24 * 3600 * 1000};
  int prune_batch = 500;        // rows per DELETE statement
  int max_prune_batches = 20;   // per prune() call; the rest waits for the next cycle
  int max_rollup_minutes = 30;  // per rollup() call, so a backlog never makes one cycle long
};

// One point of a series: the samples (or minute rows) of one step bucket.
struct MetricPoint {
  TimePoint at{};  // start of the bucket
  int64_t samples = 0;
  std::optional<double> util_min, util_avg, util_max;
  std::optional<double> temp_min, temp_avg, temp_max;
  std::optional<double> power_min, power_avg, power_max;
  std::optional<double> mem_used_min, mem_used_avg, mem_used_max;
  std::string session_id;  // a session that held the device in this bucket, if any
  std::string user_id;
};

struct MetricSeries {
  std::string device;
  std::string resolution;  // "raw" or "minute"
  Millis step{};
  std::vector<MetricPoint> points;  // oldest first, empty buckets left out
};

// Usage of one GPU model or one slice profile over a window.
struct TrendRow {
  std::string key;  // model name, or profile ("whole" for a GPU without MIG)
  std::optional<double> avg_utilization;  // mean of per-minute averages; absent when never known
  double slice_hours = 0;  // minutes a session held a device of this kind, in hours
  int64_t devices = 0;     // distinct devices seen
  int64_t device_minutes = 0;
};

struct Trends {
  std::vector<TrendRow> by_model;
  std::vector<TrendRow> by_profile;
};

class MetricsHistory {
 public:
  // `path` must already carry schema v4+ (open SqliteStore on it first).
  static Result<std::unique_ptr<MetricsHistory>> open(const std::string& path,
                                                      MetricsHistoryOptions options,
                                                      const Clock& clock);
  ~MetricsHistory();
  MetricsHistory(const MetricsHistory&) = delete;
  MetricsHistory& operator=(const MetricsHistory&) = delete;

  // Appends every device of the snapshot in one transaction, then rolls up
  // the minutes that ended before snap.taken_at and prunes a few batches.
  // A snapshot with backend_ok=false records nothing.
  Status record(const TelemetrySnapshot& snap);
  // Rolls up complete minutes (those ending at or before `upto`).
  Status rollup(TimePoint upto);
  // Deletes rows older than the retentions (raw rows only once rolled up),
  // at most max_prune_batches batches. Returns the rows deleted.
  Result<int64_t> prune(TimePoint now);
  // Rolls up everything recorded, the current partial minute included
  // (shutdown, tests); re-rolled when more samples of that minute arrive.
  Status flush();

  // One device's series over [from, to): raw samples when step < 60 s and
  // `from` is within raw retention, else minute rows (step rounded up to whole
  // minutes).
  Result<MetricSeries> query(const std::string& device, TimePoint from, TimePoint to, Millis step);
  // Per GPU model and per profile over [from, to), from the minute rows.
  Result<Trends> trends(TimePoint from, TimePoint to);
  // Whether any history (or a device record) exists for this device.
  Result<bool> knows(const std::string& device);

  const MetricsHistoryOptions& options() const { return options_; }

 private:
  MetricsHistory(sqlite3* writer, sqlite3* reader, std::string path, MetricsHistoryOptions options,
                 const Clock& clock);
  Status rememberDevices(const TelemetrySnapshot& snap);  // under write_mu_, inside the tx
  Status rollupMinute(int64_t minute_ms);                 // under write_mu_
  Result<std::optional<int64_t>> nextRawTs(int64_t from_ms);  // under write_mu_
  Result<int64_t> deleteBatch(const char* sql, int64_t cutoff_ms);  // under write_mu_
  sqlite3_stmt* prepared(const char* sql);  // cached on the writer; under write_mu_

  const std::string path_;
  const MetricsHistoryOptions options_;
  const Clock& clock_;

  std::mutex write_mu_;
  sqlite3* const writer_;  // GUARDED_BY(write_mu_)
  std::map<const char*, sqlite3_stmt*> stmts_;  // GUARDED_BY(write_mu_): keyed by the SQL literal
  // Device -> "model\nprofile" as last written to gpu_devices, and when.
  struct Known {
    std::string what;
    int64_t written_ms = 0;
  };
  std::map<std::string, Known> known_;  // GUARDED_BY(write_mu_)
  std::optional<int64_t> rolled_until_;  // GUARDED_BY(write_mu_): first minute not yet rolled up
  int64_t last_ts_ = 0;                  // GUARDED_BY(write_mu_): newest raw sample written

  std::mutex read_mu_;
  sqlite3* const reader_;  // GUARDED_BY(read_mu_)
};

using MetricsHistoryPtr = std::unique_ptr<MetricsHistory>;

}  // namespace sandman
