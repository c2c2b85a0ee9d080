#include "store/metrics_history.h"

#include <sqlite3.h>

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "store/sqlite_connection.h"
#include "store/sqlite_stmt.h"

namespace sandman {
namespace {

using sql::Conn;
using sql::Stmt;

constexpr int64_t kMinuteMs = 60'000;
// gpu_devices.last_seen is refreshed this often while a device is seen, so
// pruning devices by last_seen never drops one still present.
constexpr int64_t kDeviceRefreshMs = 3'600'000;

int64_t floorMinute(int64_t ms) { return ms - (((ms % kMinuteMs) + kMinuteMs) % kMinuteMs); }

// What the device is, for the per-profile trends: a MIG profile, "whole" for
// a GPU handed out whole, "" for a MIG-mode GPU's own row (not a slice).
std::string profileOf(const DeviceReading& d) {
  if (d.is_mig) return d.profile;
  return d.mig_enabled ? std::string() : std::string("whole");
}


// History is derived data: NORMAL sync loses at most the last cycles on
// power loss. The reader can never write.
Result<sqlite3*> openConnection(const std::string& path, bool reader) {
  SqliteOpenOptions options;
  options.purpose = "metrics history";
  options.read_only = reader;
  options.synchronous_full = false;
  options.required_tables = {"gpu_samples", "gpu_samples_minute", "gpu_devices"};
  auto db = openSqlite(path, options);
  if (!db.ok()) return db.error();
  return db->release();
}

constexpr const char* kInsertSample =
    "INSERT INTO gpu_samples (ts, device, gpu_uuid, session_id, user_id, utilization, "
    "memory_utilization, temperature, power_w, memory_used_mib, memory_total_mib, processes) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
constexpr const char* kUpsertDevice =
    "INSERT INTO gpu_devices (device, gpu_uuid, model, profile, last_seen) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT(device) DO UPDATE SET gpu_uuid = excluded.gpu_uuid, model = excluded.model, "
    "profile = excluded.profile, last_seen = excluded.last_seen";
// One minute of raw samples -> one row per device. Aggregates skip NULLs, so
// a metric the driver never reported stays NULL. A device held by a session
// for part of the minute counts as held (max() prefers a non-empty id).
constexpr const char* kRollupMinute =
    "INSERT OR REPLACE INTO gpu_samples_minute (minute, device, gpu_uuid, model, profile, session_id, "
    "user_id, samples, util_min, util_avg, util_max, temp_min, temp_avg, temp_max, power_min, "
    "power_avg, power_max, mem_used_min, mem_used_avg, mem_used_max, procs_max) "
    "SELECT ?1, s.device, s.gpu_uuid, COALESCE(d.model, ''), COALESCE(d.profile, ''), "
    "max(s.session_id), max(s.user_id), count(*), min(s.utilization), avg(s.utilization), "
    "max(s.utilization), min(s.temperature), avg(s.temperature), max(s.temperature), min(s.power_w), "
    "avg(s.power_w), max(s.power_w), min(s.memory_used_mib), avg(s.memory_used_mib), "
    "max(s.memory_used_mib), max(s.processes) "
    "FROM gpu_samples s LEFT JOIN gpu_devices d ON d.device = s.device "
    "WHERE s.ts >= ?1 AND s.ts < ?1 + 60000 GROUP BY s.device";
constexpr const char* kNextRawTs = "SELECT min(ts) FROM gpu_samples WHERE ts >= ?1";
constexpr const char* kLastMinute = "SELECT max(minute) FROM gpu_samples_minute";
// rowid batches keep each DELETE (and so each write lock) short.
constexpr const char* kPruneRaw =
    "DELETE FROM gpu_samples WHERE rowid IN (SELECT rowid FROM gpu_samples WHERE ts < ?1 LIMIT ?2)";
constexpr const char* kPruneMinute =
    "DELETE FROM gpu_samples_minute WHERE rowid IN "
    "(SELECT rowid FROM gpu_samples_minute WHERE minute < ?1 LIMIT ?2)";
constexpr const char* kPruneDevices =
    "DELETE FROM gpu_devices WHERE rowid IN "
    "(SELECT rowid FROM gpu_devices WHERE last_seen < ?1 LIMIT ?2)";

}  // namespace

Result<std::unique_ptr<MetricsHistory>> MetricsHistory::open(const std::string& path,
                                                             MetricsHistoryOptions options,
                                                             const Clock& clock) {
  if (options.prune_batch < 1 || options.max_prune_batches < 1 || options.max_rollup_minutes < 1) {
    return invalid("metrics history: batch sizes must be >= 1");
  }
  if (options.raw_retention.count() < kMinuteMs || options.retention < options.raw_retention) {
    return invalid("metrics history: raw retention must be >= 1m and the minute retention at least as long"
                   " (--metrics-raw-retention, --metrics-retention)");
  }
  auto writer = openConnection(path, false);
  if (!writer.ok()) return writer.error();
  auto reader = openConnection(path, true);
  if (!reader.ok()) {
    sqlite3_close(writer.value());
    return reader.error();
  }
  return std::unique_ptr<MetricsHistory>(
      new MetricsHistory(writer.value(), reader.value(), path, options, clock));
}

MetricsHistory::MetricsHistory(sqlite3* writer, sqlite3* reader, std::string path,
                               MetricsHistoryOptions options, const Clock& clock)
    : path_(std::move(path)), options_(options), clock_(clock), writer_(writer), reader_(reader) {}

MetricsHistory::~MetricsHistory() {
  for (auto& [sql, st] : stmts_) sqlite3_finalize(st);
  sqlite3_close(writer_);
  sqlite3_close(reader_);
}

sqlite3_stmt* MetricsHistory::prepared(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(writer_, sql, -1, &st, nullptr) != SQLITE_OK) {
    sqlite3_finalize(st);
    return nullptr;
  }
  stmts_.emplace(sql, st);
  return st;
}

Status MetricsHistory::rememberDevices(const TelemetrySnapshot& snap) {
  const int64_t now = toUnixMillis(snap.taken_at);
  auto remember = [&](const DeviceReading& d) -> Status {
    std::string what = d.model_name + "\n" + profileOf(d);
    auto it = known_.find(d.uuid);
    if (it != known_.end() && it->second.what == what && now - it->second.written_ms < kDeviceRefreshMs) {
      return {};
    }
    Conn c{writer_, path_};
    Stmt st(c, prepared(kUpsertDevice));
    st.text(d.uuid).text(d.gpu_uuid).text(d.model_name).text(profileOf(d)).int64(now);
    if (Status s = st.run("record device " + d.uuid); !s.ok()) return s;
    known_[d.uuid] = Known{std::move(what), now};
    return {};
  };
  for (const auto& d : snap.gpus) {
    if (Status s = remember(d); !s.ok()) return s;
  }
  for (const auto& d : snap.instances) {
    if (Status s = remember(d); !s.ok()) return s;
  }
  return {};
}

Status MetricsHistory::record(const TelemetrySnapshot& snap) {
  if (!snap.backend_ok) return {};
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    Conn c{writer_, path_};
    const int64_t ts = toUnixMillis(snap.taken_at);
    // One transaction per cycle: one fsync-free WAL append for all devices.
    if (Status s = c.exec("BEGIN IMMEDIATE", "begin telemetry write"); !s.ok()) return s;
    Status st = rememberDevices(snap);
    auto insert = [&](const DeviceReading& d) -> Status {
      Stmt q(c, prepared(kInsertSample));
      q.int64(ts).text(d.uuid).text(d.gpu_uuid).text(d.session_id).text(d.user_id);
      q.optReal(d.utilization_pct).optReal(d.memory_utilization_pct).optReal(d.temperature_c).optReal(d.power_w);
      q.int64(static_cast<int64_t>(d.memory_used_mib)).int64(static_cast<int64_t>(d.memory_total_mib));
      q.int64(d.compute_processes);
      return q.run("record sample of " + d.uuid);
    };
    for (size_t i = 0; st.ok() && i < snap.gpus.size(); ++i) st = insert(snap.gpus[i]);
    for (size_t i = 0; st.ok() && i < snap.instances.size(); ++i) st = insert(snap.instances[i]);
    if (st.ok()) st = c.exec("COMMIT", "commit telemetry write");
    if (!st.ok()) {
      (void)c.exec("ROLLBACK", "roll back telemetry write");
      known_.clear();  // the device rows may not have been written after all
      return st;
    }
    last_ts_ = std::max(last_ts_, ts);
  }
  if (Status s = rollup(snap.taken_at); !s.ok()) return s;
  auto pruned = prune(snap.taken_at);
  return pruned.status();
}

Result<std::optional<int64_t>> MetricsHistory::nextRawTs(int64_t from_ms) {
  Conn c{writer_, path_};
  Stmt st(c, prepared(kNextRawTs));
  st.int64(from_ms);
  auto row = st.next("scan raw samples");
  if (!row.ok()) return row.error();
  std::optional<int64_t> out;
  if (*row && !st.isNull(0)) out = st.int64At(0);
  return out;
}

Status MetricsHistory::rollupMinute(int64_t minute_ms) {
  Conn c{writer_, path_};
  Stmt st(c, prepared(kRollupMinute));
  st.int64(minute_ms);
  return st.run("roll up minute " + formatRfc3339(fromUnixMillis(minute_ms)));
}

Status MetricsHistory::rollup(TimePoint upto) {
  std::lock_guard<std::mutex> lock(write_mu_);
  Conn c{writer_, path_};
  if (!rolled_until_) {
    // Resume where the last run stopped; its last minute may have been
    // flushed partial, so it is rolled up again.
    Stmt last(c, kLastMinute);
    auto row = last.next("find the last rolled-up minute");
    if (!row.ok()) return row.status();
    if (*row && !last.isNull(0)) {
      rolled_until_ = last.int64At(0);
    } else {
      auto first = nextRawTs(0);
      if (!first.ok()) return first.status();
      if (!first.value()) return {};  // nothing recorded yet
      rolled_until_ = floorMinute(*first.value());
    }
  }
  const int64_t end = floorMinute(toUnixMillis(upto));
  for (int done = 0; *rolled_until_ < end && done < options_.max_rollup_minutes; ++done) {
    auto next = nextRawTs(*rolled_until_);
    if (!next.ok()) return next.status();
    if (!next.value() || *next.value() >= end) {
      rolled_until_ = end;  // no samples in between: nothing to roll
      break;
    }
    const int64_t minute = floorMinute(*next.value());
    if (Status s = rollupMinute(minute); !s.ok()) return s;
    rolled_until_ = minute + kMinuteMs;
  }
  return {};
}

Status MetricsHistory::flush() {
  std::optional<int64_t> last;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (last_ts_ == 0) return {};
    last = last_ts_;
  }
  // Complete minutes first (may take several calls' worth), then the partial one.
  for (int i = 0; i < 1000; ++i) {
    if (Status s = rollup(fromUnixMillis(*last)); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(write_mu_);
    if (!rolled_until_ || *rolled_until_ >= floorMinute(*last)) break;
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  return rollupMinute(floorMinute(*last));
}

Result<int64_t> MetricsHistory::deleteBatch(const char* sql, int64_t cutoff_ms) {
  Conn c{writer_, path_};
  Stmt st(c, prepared(sql));
  st.int64(cutoff_ms).int64(options_.prune_batch);
  if (Status s = st.run("prune telemetry history"); !s.ok()) return s.error();
  return static_cast<int64_t>(st.changes());
}

Result<int64_t> MetricsHistory::prune(TimePoint now) {
  std::lock_guard<std::mutex> lock(write_mu_);
  const int64_t now_ms = toUnixMillis(now);
  // Raw rows go only once their minute is rolled up.
  int64_t raw_cutoff = now_ms - options_.raw_retention.count();
  if (rolled_until_) {
    raw_cutoff = std::min(raw_cutoff, *rolled_until_);
  } else {
    raw_cutoff = std::min<int64_t>(raw_cutoff, 0);  // unknown: keep everything for now
  }
  const int64_t minute_cutoff = now_ms - options_.retention.count();
  int64_t deleted = 0;
  int batches = 0;
  struct Target {
    const char* sql;
    int64_t cutoff;
  };
  for (const Target& t : {Target{kPruneRaw, raw_cutoff}, Target{kPruneMinute, minute_cutoff},
                          Target{kPruneDevices, minute_cutoff}}) {
    while (batches < options_.max_prune_batches) {
      ++batches;
      auto n = deleteBatch(t.sql, t.cutoff);
      if (!n.ok()) return n.error();
      deleted += n.value();
      if (n.value() < options_.prune_batch) break;
    }
  }
  if (deleted > 0) known_.clear();  // a pruned device row is rewritten on its next sample
  return deleted;
}

Result<MetricSeries> MetricsHistory::query(const std::string& device, TimePoint from, TimePoint to,
                                           Millis step) {
  if (step.count() <= 0) return invalid("step must be positive");
  MetricSeries out;
  out.device = device;
  const int64_t from_ms = toUnixMillis(from);
  const int64_t to_ms = toUnixMillis(to);
  const int64_t raw_start = toUnixMillis(clock_.now()) - options_.raw_retention.count();
  const bool raw = step.count() < kMinuteMs && from_ms >= raw_start;
  int64_t step_ms = step.count();
  if (!raw) step_ms = ((step_ms + kMinuteMs - 1) / kMinuteMs) * kMinuteMs;
  out.resolution = raw ? "raw" : "minute";
  out.step = Millis(step_ms);

  // Buckets are aligned to multiples of step since the epoch, so the same
  // step always yields the same bucket edges.
  const char* sql =
      raw ? "SELECT ts / ?4, count(*), min(utilization), avg(utilization), max(utilization), "
            "min(temperature), avg(temperature), max(temperature), min(power_w), avg(power_w), "
            "max(power_w), min(memory_used_mib), avg(memory_used_mib), max(memory_used_mib), "
            "max(session_id), max(user_id) FROM gpu_samples "
            "WHERE device = ?1 AND ts >= ?2 AND ts < ?3 GROUP BY 1 ORDER BY 1"
          : "SELECT minute / ?4, sum(samples), min(util_min), "
            "sum(util_avg * samples) / sum(CASE WHEN util_avg IS NULL THEN 0 ELSE samples END), "
            "max(util_max), min(temp_min), "
            "sum(temp_avg * samples) / sum(CASE WHEN temp_avg IS NULL THEN 0 ELSE samples END), "
            "max(temp_max), min(power_min), "
            "sum(power_avg * samples) / sum(CASE WHEN power_avg IS NULL THEN 0 ELSE samples END), "
            "max(power_max), min(mem_used_min), sum(mem_used_avg * samples) / sum(samples), "
            "max(mem_used_max), max(session_id), max(user_id) FROM gpu_samples_minute "
            "WHERE device = ?1 AND minute >= ?2 AND minute < ?3 GROUP BY 1 ORDER BY 1";
  std::lock_guard<std::mutex> lock(read_mu_);
  Conn c{reader_, path_};
  Stmt st(c, sql);
  st.text(device).int64(raw ? from_ms : floorMinute(from_ms)).int64(to_ms).int64(step_ms);
  for (;;) {
    auto row = st.next("query metrics of " + device);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    MetricPoint p;
    p.at = fromUnixMillis(st.int64At(0) * step_ms);
    p.samples = st.int64At(1);
    p.util_min = st.optRealAt(2);
    p.util_avg = st.optRealAt(3);
    p.util_max = st.optRealAt(4);
    p.temp_min = st.optRealAt(5);
    p.temp_avg = st.optRealAt(6);
    p.temp_max = st.optRealAt(7);
    p.power_min = st.optRealAt(8);
    p.power_avg = st.optRealAt(9);
    p.power_max = st.optRealAt(10);
    p.mem_used_min = st.optRealAt(11);
    p.mem_used_avg = st.optRealAt(12);
    p.mem_used_max = st.optRealAt(13);
    p.session_id = st.textAt(14);
    p.user_id = st.textAt(15);
    out.points.push_back(std::move(p));
  }
}

Result<Trends> MetricsHistory::trends(TimePoint from, TimePoint to) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Conn c{reader_, path_};
  // Only slice rows (profile != ''): a MIG-mode GPU's own row is not
  // something a session holds, and its utilisation is unknown anyway.
  auto group = [&](const char* sql, std::vector<TrendRow>* rows) -> Status {
    Stmt st(c, sql);
    st.int64(floorMinute(toUnixMillis(from))).int64(toUnixMillis(to));
    for (;;) {
      auto row = st.next("query trends");
      if (!row.ok()) return row.status();
      if (!*row) return {};
      TrendRow r;
      r.key = st.textAt(0);
      r.avg_utilization = st.optRealAt(1);
      r.slice_hours = static_cast<double>(st.int64At(2)) / 60.0;
      r.devices = st.int64At(3);
      r.device_minutes = st.int64At(4);
      rows->push_back(std::move(r));
    }
  };
  Trends out;
  Status st = group(
      "SELECT model, avg(util_avg), sum(session_id <> ''), count(DISTINCT device), count(*) "
      "FROM gpu_samples_minute WHERE minute >= ?1 AND minute < ?2 AND profile <> '' "
      "GROUP BY model ORDER BY model",
      &out.by_model);
  if (!st.ok()) return st.error();
  st = group(
      "SELECT profile, avg(util_avg), sum(session_id <> ''), count(DISTINCT device), count(*) "
      "FROM gpu_samples_minute WHERE minute >= ?1 AND minute < ?2 AND profile <> '' "
      "GROUP BY profile ORDER BY profile",
      &out.by_profile);
  if (!st.ok()) return st.error();
  return out;
}

Result<bool> MetricsHistory::knows(const std::string& device) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Conn c{reader_, path_};
  Stmt st(c,
          "SELECT EXISTS (SELECT 1 FROM gpu_devices WHERE device = ?1) OR "
          "EXISTS (SELECT 1 FROM gpu_samples_minute WHERE device = ?1)");
  st.text(device);
  auto row = st.next("look up device " + device);
  if (!row.ok()) return row.error();
  return *row && st.int64At(0) != 0;
}

}  // namespace sandman
