// TelemetrySampler over the production NVML loader on the simulator library,
// with a real SqliteStore in a temp dir: attribution of MIG instances and
// whole GPUs to sessions, lost GPUs, backend failures, history writes and the
// sampler thread.
#include "telemetry/sampler.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/metrics_history.h"
#include "store/sqlite_store.h"
#include "support/manual_clock.h"
#include "support/nvml_sim_env.h"

namespace sandman {
namespace {

using testing::ManualClock;
using testing::NvmlSimEnv;

constexpr const char* kA100 = "GPU-4f1b2c3d-1a2b-4c5d-8e9f-0a1b2c3d4e5f";
constexpr const char* kH100 = "GPU-6b7c8d9e-3c4d-4e5f-8a0b-2c3d4e5f6071";
constexpr const char* kRtx = "GPU-7c8d9e0f-4d5e-4f60-9b1c-3d4e5f607182";

// A backend whose driver has gone away: every read fails.
class BrokenBackend final : public GpuBackend {
 public:
  std::string description() const override { return "broken"; }
  Result<std::vector<GpuInfo>> listGpus() override {
    return unavailable("nvmlDeviceGetCount_v2 failed: GPU is lost (15)");
  }
  Result<MigInstance> createInstance(int, int, int) override { return unavailable("broken"); }
  Status destroyInstance(int, int) override { return unavailable("broken"); }
  Status destroyOwnedInstance(int, const MigInstance&) override { return unavailable("broken"); }
};

class TelemetrySamplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-sampler-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = SqliteStore::open(dir_ + "/sandman.db");
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void hold(const std::string& id, const std::string& user, const std::string& device, int port) {
    Session s;
    s.id = id;
    s.user_id = user;
    s.status = SessionStatus::kRunning;
    s.image = "sandman-workspace:test";
    s.ssh_port = port;
    s.user_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUser " + user;
    s.host_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost";
    s.gpu_uuid = device;
    s.created_at = clock_.now();
    s.expires_at = clock_.now() + std::chrono::hours(1);
    Status st = store_->transaction([&](StoreTx& tx) { return tx.insertSession(s); });
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  static const DeviceReading* find(const std::vector<DeviceReading>& list, const std::string& uuid) {
    for (const auto& d : list) {
      if (d.uuid == uuid) return &d;
    }
    return nullptr;
  }

  std::string dir_;
  ManualClock clock_;
  SqliteStorePtr store_;
};

TEST_F(TelemetrySamplerTest, ReadsEveryDeviceAndAttributesHolders) {
  NvmlSimEnv env("mixed-host.json");
  auto backend = NvmlSimEnv::load();
  ASSERT_NE(backend, nullptr);
  auto gpus = backend->listGpus();
  ASSERT_TRUE(gpus.ok());
  const std::string mig = gpus->at(0).instances.at(2).uuid;  // the 1g.10gb at slot 6
  hold("s-00000000000000a1", "alice", mig, 30001);
  hold("s-00000000000000b2", "bob", kRtx, 30002);

  TelemetrySampler sampler({Millis(1000), true}, backend.get(), *store_, clock_, nullptr);
  SnapshotPtr snap = sampler.sampleOnce();
  ASSERT_TRUE(snap);
  EXPECT_EQ(sampler.latest(), snap);
  EXPECT_TRUE(snap->backend_ok);
  EXPECT_TRUE(snap->mig_dynamic);
  EXPECT_EQ(snap->taken_at, clock_.now());
  ASSERT_EQ(snap->gpus.size(), 4u);
  ASSERT_EQ(snap->instances.size(), 3u);
  EXPECT_TRUE(snap->lost_gpus.empty());
  EXPECT_GT(snap->sample_seconds, 0);

  const DeviceReading* a100 = find(snap->gpus, kA100);
  ASSERT_NE(a100, nullptr);
  EXPECT_TRUE(a100->mig_enabled);
  EXPECT_FALSE(a100->utilization_pct.has_value());  // MIG mode: unknown, not 0
  EXPECT_DOUBLE_EQ(*a100->temperature_c, 44);
  EXPECT_DOUBLE_EQ(*a100->power_w, 92);
  EXPECT_DOUBLE_EQ(*a100->power_limit_w, 400);
  EXPECT_TRUE(a100->session_id.empty());

  const DeviceReading* held = find(snap->instances, mig);
  ASSERT_NE(held, nullptr);
  EXPECT_TRUE(held->is_mig);
  EXPECT_EQ(held->gpu_uuid, kA100);
  EXPECT_EQ(held->profile, "1g.10gb");
  EXPECT_EQ(held->compute_slices, 1);
  EXPECT_EQ(held->model_name, "NVIDIA A100-SXM4-80GB");
  EXPECT_DOUBLE_EQ(*held->temperature_c, 44);  // the parent's
  EXPECT_EQ(held->session_id, "s-00000000000000a1");
  EXPECT_EQ(held->user_id, "alice");
  for (const auto& d : snap->instances) {
    if (d.uuid != mig) {
      EXPECT_TRUE(d.session_id.empty()) << d.uuid;
    }
  }
  // Instances come by GPU index, then instance id.
  for (size_t i = 1; i < snap->instances.size(); ++i) {
    EXPECT_LT(snap->instances[i - 1].gpu_instance_id, snap->instances[i].gpu_instance_id);
  }

  const DeviceReading* rtx = find(snap->gpus, kRtx);
  ASSERT_NE(rtx, nullptr);
  EXPECT_FALSE(rtx->mig_enabled);
  EXPECT_TRUE(rtx->utilization_pct.has_value());
  EXPECT_EQ(rtx->session_id, "s-00000000000000b2");
  EXPECT_EQ(rtx->user_id, "bob");
}

TEST_F(TelemetrySamplerTest, SeesForcedTelemetryAndReportsLostGpus) {
  NvmlSimEnv env("mixed-host.json");
  auto backend = NvmlSimEnv::load();
  ASSERT_NE(backend, nullptr);
  TelemetrySampler sampler({Millis(1000), false}, backend.get(), *store_, clock_, nullptr);
  ASSERT_TRUE(sampler.sampleOnce()->backend_ok);

  // Force a temperature, and take the H100 off the bus.
  auto cfg = nlohmann::json::parse(env.readConfig());
  cfg["gpus"][0]["telemetry"]["temperature"] = 91;
  cfg["gpus"].erase(2);
  env.writeConfig(cfg.dump());
  SnapshotPtr snap = sampler.sampleOnce();
  ASSERT_TRUE(snap->backend_ok);
  EXPECT_EQ(snap->gpus.size(), 3u);
  EXPECT_DOUBLE_EQ(*find(snap->gpus, kA100)->temperature_c, 91);
  for (const auto& d : snap->instances) EXPECT_DOUBLE_EQ(*d.temperature_c, 91);
  ASSERT_EQ(snap->lost_gpus.size(), 1u);
  EXPECT_EQ(snap->lost_gpus[0], kH100);
  // Still lost on the next cycle: alerts key on it while it is absent.
  EXPECT_EQ(sampler.sampleOnce()->lost_gpus, snap->lost_gpus);
}

TEST_F(TelemetrySamplerTest, BackendFailureIsASnapshotNotACrash) {
  BrokenBackend broken;
  int heard = 0;
  TelemetrySampler sampler({Millis(1000), true}, &broken, *store_, clock_, nullptr);
  sampler.addListener([&](const TelemetrySnapshot& s) {
    ++heard;
    EXPECT_FALSE(s.backend_ok);
  });
  SnapshotPtr snap = sampler.sampleOnce();
  EXPECT_FALSE(snap->backend_ok);
  EXPECT_NE(snap->backend_error.find("GPU is lost"), std::string::npos);
  EXPECT_TRUE(snap->gpus.empty());
  EXPECT_TRUE(snap->lost_gpus.empty());
  EXPECT_EQ(heard, 1);

  // No backend at all (CPU-only host): an empty, healthy snapshot.
  TelemetrySampler none({Millis(1000), true}, nullptr, *store_, clock_, nullptr);
  SnapshotPtr empty = none.sampleOnce();
  EXPECT_TRUE(empty->backend_ok);
  EXPECT_TRUE(empty->gpus.empty());
  EXPECT_TRUE(empty->instances.empty());
}

TEST_F(TelemetrySamplerTest, ListenerExceptionsDoNotStopTheSampler) {
  TelemetrySampler sampler({Millis(1000), true}, nullptr, *store_, clock_, nullptr);
  int after = 0;
  sampler.addListener([](const TelemetrySnapshot&) { throw std::runtime_error("listener bug"); });
  sampler.addListener([&](const TelemetrySnapshot&) { ++after; });
  sampler.sampleOnce();
  sampler.sampleOnce();
  EXPECT_EQ(after, 2);
  EXPECT_EQ(sampler.cycles(), 2u);
}

TEST_F(TelemetrySamplerTest, ThreadSamplesEveryIntervalIntoTheHistory) {
  NvmlSimEnv env("mixed-host.json");
  auto backend = NvmlSimEnv::load();
  ASSERT_NE(backend, nullptr);
  SystemClock wall;
  auto history = MetricsHistory::open(dir_ + "/sandman.db", {}, wall);
  ASSERT_TRUE(history.ok()) << history.error().message;
  TelemetrySampler sampler({Millis(100), true}, backend.get(), *store_, wall, history.value().get());
  std::atomic<int> heard{0};
  sampler.addListener([&](const TelemetrySnapshot&) { ++heard; });
  sampler.start();
  for (int i = 0; i < 100 && sampler.cycles() < 4; ++i) std::this_thread::sleep_for(Millis(50));
  sampler.stop();
  sampler.stop();  // idempotent
  const uint64_t cycles = sampler.cycles();
  EXPECT_GE(cycles, 4u);
  EXPECT_EQ(heard.load(), static_cast<int>(cycles));
  EXPECT_GT(sampler.cpuSeconds(), 0);
  std::this_thread::sleep_for(Millis(250));
  EXPECT_EQ(sampler.cycles(), cycles);  // stopped means stopped

  auto series = history.value()->query(kA100, wall.now() - std::chrono::minutes(5), wall.now(), Millis(1000));
  ASSERT_TRUE(series.ok()) << series.error().message;
  int64_t samples = 0;
  for (const auto& p : series->points) samples += p.samples;
  EXPECT_EQ(samples, static_cast<int64_t>(cycles));
  EXPECT_TRUE(history.value()->knows(kRtx).value());
}

}  // namespace
}  // namespace sandman
