// MetricsHistory against a real SQLite file (migrated by SqliteStore) in a
// temp dir, under a manual clock: raw writes, per-minute rollup, series
// queries by step, trends, and retention pruning in bounded batches.
#include "store/metrics_history.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "common/time_format.h"
#include "store/sqlite_store.h"
#include "support/manual_clock.h"

namespace sandman {
namespace {

using testing::ManualClock;

constexpr const char* kGpu = "GPU-11111111-2222-3333-4444-555555555555";
constexpr const char* kMig = "MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
constexpr const char* kWhole = "GPU-99999999-2222-3333-4444-555555555555";

class TelemetryHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-history-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/sandman.db";
    auto store = SqliteStore::open(path_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(store).value();
    // Start on an hour boundary so bucket edges (multiples of the step) are easy to reason about.
    int64_t ms = toUnixMillis(clock_.now());
    clock_.advance(Millis(3'600'000 - ms % 3'600'000));
  }
  void TearDown() override {
    history_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void open(MetricsHistoryOptions o = {}) {
    auto h = MetricsHistory::open(path_, o, clock_);
    ASSERT_TRUE(h.ok()) << h.error().message;
    history_ = std::move(h).value();
  }

  // A MIG-mode A100 with one held 1g instance, and a whole RTX GPU.
  TelemetrySnapshot snapshot(double mig_util, double temp, bool held) const {
    TelemetrySnapshot s;
    s.taken_at = clock_.now();
    DeviceReading gpu;
    gpu.uuid = gpu.gpu_uuid = kGpu;
    gpu.model_name = "NVIDIA A100-SXM4-80GB";
    gpu.mig_enabled = true;
    gpu.temperature_c = temp;
    gpu.power_w = 100;
    s.gpus.push_back(gpu);
    DeviceReading whole;
    whole.uuid = whole.gpu_uuid = kWhole;
    whole.gpu_index = 1;
    whole.model_name = "NVIDIA GeForce RTX 4090";
    whole.utilization_pct = 10;
    whole.temperature_c = 30;
    s.gpus.push_back(whole);
    DeviceReading mig;
    mig.uuid = kMig;
    mig.gpu_uuid = kGpu;
    mig.model_name = gpu.model_name;
    mig.is_mig = mig.mig_enabled = true;
    mig.profile = "1g.10gb";
    mig.utilization_pct = mig_util;
    mig.temperature_c = temp;
    mig.memory_used_mib = 100;
    if (held) {
      mig.session_id = "s-0000000000000001";
      mig.user_id = "alice";
    }
    s.instances.push_back(mig);
    return s;
  }

  int64_t count(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }

  std::string dir_, path_;
  ManualClock clock_;
  SqliteStorePtr store_;
  MetricsHistoryPtr history_;
};

TEST_F(TelemetryHistoryTest, RecordsRollsUpCompleteMinutesAndQueriesBySteps) {
  open();
  // 3 minutes at 10 s: utilisation 0, 10, ... 170; temperature 50 then 60 then 70.
  for (int i = 0; i < 18; ++i) {
    ASSERT_TRUE(history_->record(snapshot(i * 10.0, 50 + 10 * (i / 6), true)).ok());
    clock_.advance(Millis(10'000));
  }
  EXPECT_EQ(count("SELECT count(*) FROM gpu_samples"), 18 * 3);
  // The third minute is still open: only two minutes are rolled up.
  EXPECT_EQ(count("SELECT count(*) FROM gpu_samples_minute WHERE device = '" + std::string(kMig) + "'"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM gpu_samples_minute WHERE profile = 'whole'"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM gpu_samples_minute WHERE device = '" + std::string(kGpu) + "' AND profile = ''"), 2);

  const TimePoint start = clock_.now() - Millis(180'000);
  auto raw = history_->query(kMig, start, clock_.now(), Millis(30'000));
  ASSERT_TRUE(raw.ok()) << raw.error().message;
  EXPECT_EQ(raw->resolution, "raw");
  ASSERT_EQ(raw->points.size(), 6u);
  EXPECT_EQ(raw->points[0].samples, 3);
  EXPECT_DOUBLE_EQ(*raw->points[0].util_min, 0);
  EXPECT_DOUBLE_EQ(*raw->points[0].util_avg, 10);
  EXPECT_DOUBLE_EQ(*raw->points[0].util_max, 20);
  EXPECT_EQ(raw->points[0].session_id, "s-0000000000000001");
  EXPECT_EQ(raw->points[0].user_id, "alice");
  EXPECT_EQ(raw->points[0].at, start);

  // After a flush (shutdown) the open minute is rolled up too.
  ASSERT_TRUE(history_->flush().ok());
  auto minutes = history_->query(kMig, start, clock_.now(), Millis(60'000));
  ASSERT_TRUE(minutes.ok()) << minutes.error().message;
  EXPECT_EQ(minutes->resolution, "minute");
  ASSERT_EQ(minutes->points.size(), 3u);
  EXPECT_EQ(minutes->points[0].samples, 6);
  EXPECT_DOUBLE_EQ(*minutes->points[0].util_avg, 25);
  EXPECT_DOUBLE_EQ(*minutes->points[1].temp_max, 60);
  EXPECT_DOUBLE_EQ(*minutes->points[2].util_max, 170);

  // Two-minute buckets over minute rows: weighted by samples.
  auto two = history_->query(kMig, start, clock_.now(), Millis(120'000));
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->points.size(), 2u);
  EXPECT_EQ(two->points[0].samples, 12);
  EXPECT_DOUBLE_EQ(*two->points[0].util_avg, 55);

  // A MIG-mode GPU's own utilisation is unknown, not 0.
  auto gpu = history_->query(kGpu, start, clock_.now(), Millis(60'000));
  ASSERT_TRUE(gpu.ok());
  ASSERT_FALSE(gpu->points.empty());
  EXPECT_FALSE(gpu->points[0].util_avg.has_value());
  EXPECT_DOUBLE_EQ(*gpu->points[0].power_avg, 100);

  EXPECT_TRUE(history_->knows(kMig).value());
  EXPECT_FALSE(history_->knows("MIG-00000000-0000-0000-0000-000000000000").value());
}

TEST_F(TelemetryHistoryTest, TrendsPerModelAndProfileWithSliceHours) {
  open();
  for (int i = 0; i < 12; ++i) {  // 2 minutes, the instance held in both
    ASSERT_TRUE(history_->record(snapshot(40, 50, true)).ok());
    clock_.advance(Millis(10'000));
  }
  for (int i = 0; i < 6; ++i) {  // a third minute, not held
    ASSERT_TRUE(history_->record(snapshot(70, 50, false)).ok());
    clock_.advance(Millis(10'000));
  }
  ASSERT_TRUE(history_->flush().ok());
  auto t = history_->trends(clock_.now() - std::chrono::hours(1), clock_.now());
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->by_profile.size(), 2u);
  const TrendRow& mig = t->by_profile[0];
  EXPECT_EQ(mig.key, "1g.10gb");
  EXPECT_DOUBLE_EQ(*mig.avg_utilization, 50);  // (40 + 40 + 70) / 3 minutes
  EXPECT_DOUBLE_EQ(mig.slice_hours, 2.0 / 60.0);
  EXPECT_EQ(mig.devices, 1);
  EXPECT_EQ(mig.device_minutes, 3);
  EXPECT_EQ(t->by_profile[1].key, "whole");
  EXPECT_DOUBLE_EQ(t->by_profile[1].slice_hours, 0);
  EXPECT_DOUBLE_EQ(*t->by_profile[1].avg_utilization, 10);
  // Per model: the MIG-mode GPU's own row is not a slice and is left out.
  ASSERT_EQ(t->by_model.size(), 2u);
  EXPECT_EQ(t->by_model[0].key, "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(t->by_model[0].devices, 1);
  EXPECT_EQ(t->by_model[1].key, "NVIDIA GeForce RTX 4090");
}

TEST_F(TelemetryHistoryTest, PrunesPastRetentionInBoundedBatches) {
  MetricsHistoryOptions o;
  o.raw_retention = std::chrono::minutes(10);
  o.retention = std::chrono::minutes(30);
  o.prune_batch = 7;
  o.max_prune_batches = 2;
  open(o);
  // 40 minutes at 20 s: 120 cycles x 3 devices.
  for (int i = 0; i < 120; ++i) {
    ASSERT_TRUE(history_->record(snapshot(5, 40, false)).ok());
    clock_.advance(Millis(20'000));
  }
  // Each prune() deletes at most 2 x 7 rows; repeated calls catch up.
  for (int i = 0; i < 200; ++i) {
    auto n = history_->prune(clock_.now());
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_LE(n.value(), 14);
    if (n.value() == 0) break;
  }
  const int64_t now_ms = toUnixMillis(clock_.now());
  EXPECT_EQ(count("SELECT count(*) FROM gpu_samples WHERE ts < " + std::to_string(now_ms - 600'000)), 0);
  EXPECT_GT(count("SELECT count(*) FROM gpu_samples"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM gpu_samples_minute WHERE minute < " + std::to_string(now_ms - 1'800'000)), 0);
  EXPECT_GE(count("SELECT count(*) FROM gpu_samples_minute"), 29 * 3);
  // Older than the raw retention: answered from minute rows even for a small step.
  auto old = history_->query(kMig, clock_.now() - std::chrono::minutes(25), clock_.now(), Millis(10'000));
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->resolution, "minute");
  EXPECT_EQ(old->step, Millis(60'000));
  EXPECT_GE(old->points.size(), 24u);
}

TEST_F(TelemetryHistoryTest, ResumesRollupAfterReopen) {
  open();
  for (int i = 0; i < 9; ++i) {  // 1.5 minutes
    ASSERT_TRUE(history_->record(snapshot(20, 40, false)).ok());
    clock_.advance(Millis(10'000));
  }
  ASSERT_TRUE(history_->flush().ok());  // as at shutdown: the partial minute too
  history_.reset();
  open();
  for (int i = 0; i < 9; ++i) {
    ASSERT_TRUE(history_->record(snapshot(20, 40, false)).ok());
    clock_.advance(Millis(10'000));
  }
  // The partial minute was rolled up again with the samples that came later.
  EXPECT_EQ(count("SELECT samples FROM gpu_samples_minute WHERE device = '" + std::string(kMig) +
                  "' ORDER BY minute LIMIT 1 OFFSET 1"),
            6);
}

TEST_F(TelemetryHistoryTest, RefusesBadOptionsAndSkipsFailedSnapshots) {
  MetricsHistoryOptions o;
  o.retention = std::chrono::minutes(1);
  o.raw_retention = std::chrono::minutes(5);
  auto bad = MetricsHistory::open(path_, o, clock_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalid);

  open();
  TelemetrySnapshot failed;
  failed.taken_at = clock_.now();
  failed.backend_ok = false;
  failed.backend_error = "driver gone";
  ASSERT_TRUE(history_->record(failed).ok());
  EXPECT_EQ(count("SELECT count(*) FROM gpu_samples"), 0);
}

}  // namespace
}  // namespace sandman
