// The alert engine under a manual clock: exact for-durations, dedup per
// fingerprint, pending that clears, resolution, restart without duplicates,
// acks and the NVML-error / lost-GPU / leaked-MIG rules. The store is real
// SQLite in a temp dir; delivery is a recording sink.
#include <gtest/gtest.h>

#include <filesystem>

#include "alerts/alert_engine.h"
#include "store/sqlite_store.h"
#include "support/manual_clock.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;
using testing::ManualClock;

constexpr const char* kGpu0 = "GPU-00000000-0000-4000-8000-000000000000";
constexpr const char* kGpu1 = "GPU-11111111-1111-4111-8111-111111111111";
constexpr const char* kMig0 = "MIG-00000000-0000-5000-8000-000000000000";

class RecordingSink final : public AlertSink {
 public:
  void alertChanged(const Alert& a) override { changed.push_back(a); }
  void alertStillFiring(const Alert& a) override { still_firing.push_back(a); }
  std::vector<Alert> changed;
  std::vector<Alert> still_firing;
};

AlertRule hotRule(Millis for_duration = 5min) {
  return {"GpuOverheating", AlertMetric::kTemperature, CompareOp::kGt, 85, for_duration, "critical",
          AlertScope::kGpu, "GPU {{gpu}} at {{value}} C"};
}

DeviceReading gpu(int index, const std::string& uuid, double temp) {
  DeviceReading d;
  d.uuid = uuid;
  d.gpu_uuid = uuid;
  d.gpu_index = index;
  d.model_name = "NVIDIA A100-SXM4-80GB";
  d.temperature_c = temp;
  return d;
}

class AlertEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-alerts-XXXXXX";
    dir_ = mkdtemp(tmpl);
    sessions_store_ = SqliteStore::open(dir_ + "/sandman.db").value();
    store_ = AlertStore::open(dir_ + "/sandman.db").value();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<AlertEngine> engine(std::vector<AlertRule> rules, RecordingSink* sink) {
    auto e = std::make_unique<AlertEngine>(std::move(rules), *store_, clock_, sink, AlertEngineOptions{"node1"});
    EXPECT_TRUE(e->restore().ok());
    return e;
  }

  TelemetrySnapshot snap(std::vector<DeviceReading> gpus) {
    TelemetrySnapshot s;
    s.taken_at = clock_.now();
    s.gpus = std::move(gpus);
    return s;
  }
  TelemetrySnapshot hot(double temp = 91) { return snap({gpu(0, kGpu0, temp)}); }

  std::vector<Alert> listed(AlertEngine& e, AlertFilter f, size_t limit = 100) {
    auto r = e.list(f, limit);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : std::vector<Alert>{};
  }

  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<SqliteStore> sessions_store_;
  std::unique_ptr<AlertStore> store_;
};

TEST_F(AlertEngineTest, FiresAtTheFirstSampleFiveMinutesAfterPendingNotBefore) {
  RecordingSink sink;
  auto e = engine({hotRule()}, &sink);
  e->evaluate(hot());
  TimePoint started = clock_.now();
  // 5 s samples: 59 more samples reach 4m55s, still pending.
  for (int i = 1; i < 60; ++i) {
    clock_.advance(5s);
    e->evaluate(hot());
    ASSERT_TRUE(sink.changed.empty()) << "fired early at " << i * 5 << " s";
  }
  auto pending = listed(*e, AlertFilter::kPending);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].pending_at, started);
  clock_.advance(5s);  // exactly 5m
  e->evaluate(hot());
  ASSERT_EQ(sink.changed.size(), 1u);
  EXPECT_EQ(sink.changed[0].state, AlertState::kFiring);
  EXPECT_EQ(*sink.changed[0].fired_at, started + 5min);
  EXPECT_EQ(listed(*e, AlertFilter::kFiring).size(), 1u);
}

TEST_F(AlertEngineTest, FourMinutesFiftyNineIsPendingFiveMinutesIsFiring) {
  RecordingSink sink;
  auto e = engine({hotRule()}, &sink);
  e->evaluate(hot());
  clock_.advance(4min + 59s);
  e->evaluate(hot());
  EXPECT_TRUE(sink.changed.empty());
  EXPECT_EQ(listed(*e, AlertFilter::kPending).size(), 1u);
  clock_.advance(1s);
  e->evaluate(hot());
  ASSERT_EQ(sink.changed.size(), 1u);
  EXPECT_EQ(sink.changed[0].state, AlertState::kFiring);
}

TEST_F(AlertEngineTest, ZeroForFiresOnTheFirstSample) {
  RecordingSink sink;
  auto e = engine({hotRule(0ms)}, &sink);
  e->evaluate(hot());
  ASSERT_EQ(sink.changed.size(), 1u);
  EXPECT_EQ(sink.changed[0].state, AlertState::kFiring);
  EXPECT_EQ(sink.changed[0].pending_at, *sink.changed[0].fired_at);
}

TEST_F(AlertEngineTest, PendingThatClearsIsDeletedWithoutDelivery) {
  RecordingSink sink;
  auto e = engine({hotRule()}, &sink);
  e->evaluate(hot());
  clock_.advance(4min);
  e->evaluate(hot(60));
  EXPECT_TRUE(sink.changed.empty());
  EXPECT_TRUE(listed(*e, AlertFilter::kActive).empty());
  EXPECT_TRUE(listed(*e, AlertFilter::kAll).empty()) << "history holds only alerts that fired";
  // A new episode starts its own clock.
  clock_.advance(5s);
  e->evaluate(hot());
  clock_.advance(4min + 59s);
  e->evaluate(hot());
  EXPECT_TRUE(sink.changed.empty());
}

TEST_F(AlertEngineTest, OneOpenAlertPerFingerprintAndResolutionIsDeliveredAndKept) {
  RecordingSink sink;
  auto e = engine({hotRule(1min)}, &sink);
  for (int i = 0; i <= 24; ++i) {  // 2 minutes of hot samples on both GPUs
    e->evaluate(snap({gpu(0, kGpu0, 91), gpu(1, kGpu1, 88)}));
    clock_.advance(5s);
  }
  ASSERT_EQ(sink.changed.size(), 2u) << "one firing per GPU, not one per sample";
  auto active = listed(*e, AlertFilter::kActive);
  ASSERT_EQ(active.size(), 2u);
  e->evaluate(snap({gpu(0, kGpu0, 70), gpu(1, kGpu1, 89.5)}));
  ASSERT_EQ(sink.changed.size(), 3u);
  const Alert& resolved = sink.changed[2];
  EXPECT_EQ(resolved.state, AlertState::kResolved);
  EXPECT_EQ(resolved.labels.at("gpu_uuid"), kGpu0);
  EXPECT_EQ(*resolved.resolved_at, clock_.now());
  auto firing = listed(*e, AlertFilter::kFiring);
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_DOUBLE_EQ(firing[0].value, 89.5) << "active alerts carry the latest reading";
  auto history = listed(*e, AlertFilter::kResolved);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].id, resolved.id);
  EXPECT_EQ(listed(*e, AlertFilter::kAll).size(), 2u);
  EXPECT_EQ(listed(*e, AlertFilter::kAll, 1).size(), 1u);
}

TEST_F(AlertEngineTest, LabelsAndSummaryNameTheDeviceAndItsHolder) {
  RecordingSink sink;
  auto e = engine({hotRule(0ms)}, &sink);
  DeviceReading d = gpu(3, kGpu1, 91.25);
  d.session_id = "s-0123456789abcdef";
  d.user_id = "alice";
  e->evaluate(snap({d}));
  ASSERT_EQ(sink.changed.size(), 1u);
  const Alert& a = sink.changed[0];
  EXPECT_EQ(a.summary, "GPU 3 at 91.25 C");
  EXPECT_EQ(a.labels.at("gpu"), "3");
  EXPECT_EQ(a.labels.at("gpu_uuid"), kGpu1);
  EXPECT_EQ(a.labels.at("session_id"), "s-0123456789abcdef");
  EXPECT_EQ(a.labels.at("user_id"), "alice");
  EXPECT_EQ(a.labels.at("host"), "node1");
  EXPECT_EQ(a.fingerprint, std::string("GpuOverheating/") + kGpu1);
}

TEST_F(AlertEngineTest, RestartContinuesOpenAlertsInsteadOfDuplicating) {
  RecordingSink sink1;
  AlertRule slow = hotRule(10min);
  slow.name = "GpuHotLong";
  auto e1 = engine({hotRule(1min), slow}, &sink1);
  e1->evaluate(hot());
  TimePoint started = clock_.now();
  clock_.advance(1min);
  e1->evaluate(hot());
  ASSERT_EQ(sink1.changed.size(), 1u);
  e1.reset();  // the daemon stops

  clock_.advance(30s);
  RecordingSink sink2;
  auto e2 = engine({hotRule(1min), slow}, &sink2);
  ASSERT_EQ(sink2.still_firing.size(), 1u) << "Alertmanager hears of the firing alert again";
  EXPECT_EQ(sink2.still_firing[0].rule, "GpuOverheating");
  e2->evaluate(hot());
  EXPECT_TRUE(sink2.changed.empty()) << "no second firing notification after a restart";
  auto active = listed(*e2, AlertFilter::kActive);
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(listed(*e2, AlertFilter::kAll).size(), 2u) << "no duplicate rows";
  // The pending one keeps its original start: fires 10m after it.
  clock_.advance(10min - 1min - 30s - 1ms);
  e2->evaluate(hot());
  EXPECT_TRUE(sink2.changed.empty());
  clock_.advance(1ms);
  e2->evaluate(hot());
  ASSERT_EQ(sink2.changed.size(), 1u);
  EXPECT_EQ(sink2.changed[0].rule, "GpuHotLong");
  EXPECT_EQ(sink2.changed[0].pending_at, started);
}

TEST_F(AlertEngineTest, AlertsOfARuleThatIsGoneResolveAtTheFirstSample) {
  RecordingSink sink1;
  auto e1 = engine({hotRule(0ms)}, &sink1);
  e1->evaluate(hot());
  e1.reset();
  RecordingSink sink2;
  AlertRule other = hotRule(0ms);
  other.name = "Other";
  other.threshold = 95;
  auto e2 = engine({other}, &sink2);
  e2->evaluate(hot());
  ASSERT_EQ(sink2.changed.size(), 1u);
  EXPECT_EQ(sink2.changed[0].state, AlertState::kResolved);
  EXPECT_TRUE(listed(*e2, AlertFilter::kActive).empty());
}

TEST_F(AlertEngineTest, AckRecordsWhoAndWhenIsIdempotentAndDoesNotSilenceResolution) {
  RecordingSink sink;
  auto e = engine({hotRule(0ms)}, &sink);
  e->evaluate(hot());
  int64_t id = sink.changed.at(0).id;
  clock_.advance(10s);
  auto acked = e->ack(id, "alice");
  ASSERT_TRUE(acked.ok());
  EXPECT_EQ(*acked->acked_at, clock_.now());
  EXPECT_EQ(acked->acked_by, "alice");
  clock_.advance(10s);
  auto again = e->ack(id, "bob");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->acked_by, "alice") << "the first ack stands";
  EXPECT_EQ(*again->acked_at, *acked->acked_at);
  auto missing = e->ack(id + 100, "alice");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);

  e->evaluate(hot(50));
  ASSERT_EQ(sink.changed.size(), 2u);
  EXPECT_EQ(sink.changed[1].state, AlertState::kResolved);
  EXPECT_EQ(sink.changed[1].acked_by, "alice");
  auto stored = e->get(id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, AlertState::kResolved);
  EXPECT_EQ(stored->acked_by, "alice");
}

TEST_F(AlertEngineTest, NvmlErrorFiresAfterItsForAndDeviceAlertsHoldMeanwhile) {
  RecordingSink sink;
  AlertRule nvml{"NvmlError", AlertMetric::kBackendError, CompareOp::kGt, 0, 1min, "critical",
                 AlertScope::kHost, "NVML failing on {{host}}"};
  auto e = engine({hotRule(0ms), nvml}, &sink);
  e->evaluate(hot());
  ASSERT_EQ(sink.changed.size(), 1u);
  TelemetrySnapshot broken;
  broken.backend_ok = false;
  broken.backend_error = "NVML_ERROR_GPU_IS_LOST";
  for (int i = 0; i <= 12; ++i) {
    broken.taken_at = clock_.now();
    e->evaluate(broken);
    clock_.advance(5s);
  }
  ASSERT_EQ(sink.changed.size(), 2u) << "the temperature alert neither resolved nor re-fired";
  EXPECT_EQ(sink.changed[1].rule, "NvmlError");
  EXPECT_EQ(sink.changed[1].summary, "NVML failing on node1");
  EXPECT_EQ(listed(*e, AlertFilter::kFiring).size(), 2u);
  e->evaluate(hot());
  ASSERT_EQ(sink.changed.size(), 3u);
  EXPECT_EQ(sink.changed[2].rule, "NvmlError");
  EXPECT_EQ(sink.changed[2].state, AlertState::kResolved);
}

TEST_F(AlertEngineTest, LostGpuAndLeakedMigInstance) {
  RecordingSink sink;
  AlertRule lost{"GpuLost", AlertMetric::kGpuLost, CompareOp::kGt, 0, 0ms, "critical", AlertScope::kGpu,
                 "GPU {{gpu_uuid}} lost"};
  AlertRule leak{"MigInstanceLeaked", AlertMetric::kMigLeaked, CompareOp::kGt, 0, 1min, "warning",
                 AlertScope::kInstance, "{{mig_uuid}} leaked"};
  auto e = engine({lost, leak}, &sink);
  TelemetrySnapshot s = snap({gpu(0, kGpu0, 40)});
  s.lost_gpus = {kGpu1};
  DeviceReading mig = gpu(0, kMig0, 40);
  mig.gpu_uuid = kGpu0;
  mig.is_mig = true;
  mig.profile = "1g.10gb";
  s.instances = {mig};
  s.mig_dynamic = false;  // static mode: unheld instances are the pool
  e->evaluate(s);
  ASSERT_EQ(sink.changed.size(), 1u);
  EXPECT_EQ(sink.changed[0].summary, std::string("GPU ") + kGpu1 + " lost");
  clock_.advance(2min);
  s.taken_at = clock_.now();
  e->evaluate(s);
  EXPECT_EQ(sink.changed.size(), 1u);

  s.mig_dynamic = true;
  e->evaluate(s);
  clock_.advance(1min);
  s.taken_at = clock_.now();
  e->evaluate(s);
  ASSERT_EQ(sink.changed.size(), 2u);
  EXPECT_EQ(sink.changed[1].rule, "MigInstanceLeaked");
  EXPECT_EQ(sink.changed[1].labels.at("mig_profile"), "1g.10gb");
  // A session takes the instance and the GPU comes back: both resolve.
  s.instances[0].session_id = "s-0123456789abcdef";
  s.lost_gpus.clear();
  e->evaluate(s);
  ASSERT_EQ(sink.changed.size(), 4u);
  EXPECT_EQ(sink.changed[2].state, AlertState::kResolved);
  EXPECT_EQ(sink.changed[3].state, AlertState::kResolved);
}

TEST_F(AlertEngineTest, MissingReadingsDoNotHoldAConditionAndUnknownStatesAreNotFilters) {
  RecordingSink sink;
  AlertRule util{"GpuSaturated", AlertMetric::kUtilization, CompareOp::kGt, 95, 0ms, "warning", AlertScope::kAny,
                 "{{value}}"};
  auto e = engine({util}, &sink);
  DeviceReading d = gpu(0, kGpu0, 40);  // MIG-mode GPU: no utilisation reported
  e->evaluate(snap({d}));
  EXPECT_TRUE(sink.changed.empty());
  d.utilization_pct = 99;
  e->evaluate(snap({d}));
  EXPECT_EQ(sink.changed.size(), 1u);
  EXPECT_FALSE(parseAlertFilter("open").has_value());
  EXPECT_EQ(parseAlertFilter("all"), AlertFilter::kAll);
}

}  // namespace
}  // namespace sandman
