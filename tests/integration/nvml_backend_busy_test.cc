// Busy-ness through the production NVML loader on the simulator: CUDA
// processes per GPU and per MIG instance, and per-instance utilisation via
// GPM (Hopper and later, or "gpm": true), which needs two samples.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gpu/nvml_backend.h"
#include "support/nvml_sim_env.h"

namespace sandman {
namespace {

using nlohmann::json;
using testing::NvmlSimEnv;

// An H100 (GPM) and an A100 (no GPM), each with two 1g instances, and a
// whole RTX 4090.
const char* kConfig = R"({
  "gpus": [
    {"model": "H100-SXM5-80GB", "uuid": "GPU-00000000-0000-4000-8000-000000000001", "mig_mode": true,
     "mig_instances": [{"profile": "1g.10gb", "start": 0}, {"profile": "1g.10gb", "start": 1}]},
    {"model": "A100-SXM4-80GB", "uuid": "GPU-00000000-0000-4000-8000-000000000002", "mig_mode": true,
     "mig_instances": [{"profile": "1g.10gb", "start": 0}, {"profile": "1g.10gb", "start": 1}]},
    {"model": "RTX-4090", "uuid": "GPU-00000000-0000-4000-8000-000000000003",
     "telemetry": {"utilization_gpu": 33, "processes": [{"pid": 77, "used_memory_mib": 500}]}}
  ]
})";

class NvmlBusyTest : public ::testing::Test {
 protected:
  NvmlBusyTest() : env_("a100-40gb-mig-empty.json") { env_.writeConfig(kConfig); }

  // Sets per-instance utilisation and processes by rewriting the config.
  void steer(const std::vector<GpuInfo>& gpus, unsigned util0, unsigned procs0) {
    json cfg = json::parse(kConfig);
    for (int g = 0; g < 2; ++g) {
      json& tel = cfg["gpus"][g]["telemetry"];
      tel["mig_utilization"] = {{gpus[g].instances[0].uuid, util0}, {gpus[g].instances[1].uuid, 5}};
      tel["processes"] = json::array();
      for (unsigned p = 0; p < procs0; ++p) {
        tel["processes"].push_back({{"pid", 1000 + p}, {"used_memory_mib", 100}, {"mig", gpus[g].instances[0].uuid}});
      }
      tel["processes"].push_back({{"pid", 2000}, {"used_memory_mib", 100}, {"mig", gpus[g].instances[1].uuid}});
    }
    cfg["gpus"][2] = json::parse(kConfig)["gpus"][2];
    env_.writeConfig(cfg.dump());
  }

  NvmlSimEnv env_;
};

TEST_F(NvmlBusyTest, ProcessesPerGpuAndPerInstance) {
  auto backend = NvmlSimEnv::load();
  ASSERT_NE(backend, nullptr);
  auto first = backend->listGpus();
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->size(), 3u);
  for (const auto& inst : first->at(0).instances) EXPECT_EQ(inst.compute_processes, 0);
  EXPECT_EQ(first->at(2).telemetry.compute_processes, 1);

  steer(first.value(), 80, 3);
  auto gpus = backend->listGpus();
  ASSERT_TRUE(gpus.ok()) << gpus.error().message;
  for (int g = 0; g < 2; ++g) {
    const GpuInfo& gpu = gpus->at(g);
    EXPECT_EQ(gpu.telemetry.compute_processes, 4) << gpu.name;
    EXPECT_EQ(gpu.instances[0].compute_processes, 3) << gpu.name;
    EXPECT_EQ(gpu.instances[1].compute_processes, 1) << gpu.name;
  }
}

TEST_F(NvmlBusyTest, InstanceUtilisationNeedsGpmAndTwoSamples) {
  auto backend = NvmlSimEnv::load();
  ASSERT_NE(backend, nullptr);
  auto first = backend->sampleGpus();
  ASSERT_TRUE(first.ok());
  steer(first.value(), 80, 1);

  // The period between the previous sample and this one: the simulator
  // reports the value the config gave at the later sample.
  auto a = backend->sampleGpus();
  ASSERT_TRUE(a.ok());
  const MigInstance& h0 = a->at(0).instances[0];
  ASSERT_TRUE(h0.utilization_gpu.has_value());
  EXPECT_EQ(*h0.utilization_gpu, 80u);
  EXPECT_EQ(*a->at(0).instances[1].utilization_gpu, 5u);
  // No GPM on A100: unknown, never a made-up 0.
  for (const auto& inst : a->at(1).instances) EXPECT_FALSE(inst.utilization_gpu.has_value());
  // MIG mode: no whole-GPU utilisation either; the RTX has its own.
  EXPECT_FALSE(a->at(0).telemetry.utilization_gpu.has_value());
  EXPECT_EQ(*a->at(2).telemetry.utilization_gpu, 33u);

  steer(first.value(), 12, 1);
  auto b = backend->sampleGpus();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b->at(0).instances[0].utilization_gpu, 12u);
}

TEST_F(NvmlBusyTest, FirstSampleIsUnknownAndGpmCanBeForcedOn) {
  json cfg = json::parse(kConfig);
  cfg["gpus"][1]["gpm"] = true;  // a test may give an A100 GPM to steer its instances
  env_.writeConfig(cfg.dump());
  auto backend = NvmlSimEnv::load();
  ASSERT_NE(backend, nullptr);
  auto first = backend->sampleGpus();
  ASSERT_TRUE(first.ok());
  // One sample makes no period yet.
  for (int g = 0; g < 2; ++g) {
    for (const auto& inst : first->at(g).instances) EXPECT_FALSE(inst.utilization_gpu.has_value());
  }
  auto second = backend->sampleGpus();
  ASSERT_TRUE(second.ok());
  for (int g = 0; g < 2; ++g) {
    for (const auto& inst : second->at(g).instances) {
      ASSERT_TRUE(inst.utilization_gpu.has_value()) << inst.uuid;
      EXPECT_EQ(*inst.utilization_gpu, 0u);
    }
  }
}

TEST_F(NvmlBusyTest, OnlyTheSamplerTakesGpmSamplesReadsReportTheLastOne) {
  auto backend = NvmlSimEnv::load();
  ASSERT_NE(backend, nullptr);
  auto first = backend->sampleGpus();
  ASSERT_TRUE(first.ok());
  steer(first.value(), 80, 1);
  // API reads (GET /gpus, reservations) in between: no new period starts, so
  // nothing is known until the sampler's next sample.
  for (int i = 0; i < 3; ++i) {
    auto read = backend->listGpus();
    ASSERT_TRUE(read.ok());
    EXPECT_FALSE(read->at(0).instances[0].utilization_gpu.has_value()) << "read " << i << " took a GPM sample";
  }
  auto sampled = backend->sampleGpus();
  ASSERT_TRUE(sampled.ok());
  EXPECT_EQ(*sampled->at(0).instances[0].utilization_gpu, 80u);
  steer(first.value(), 12, 1);
  auto read = backend->listGpus();
  ASSERT_TRUE(read.ok());
  ASSERT_TRUE(read->at(0).instances[0].utilization_gpu.has_value());
  EXPECT_EQ(*read->at(0).instances[0].utilization_gpu, 80u) << "a read reports the sampler's last period";
  EXPECT_EQ(*backend->sampleGpus()->at(0).instances[0].utilization_gpu, 12u);
}

TEST_F(NvmlBusyTest, SimulatorRejectsBadMigUtilization) {
  json cfg = json::parse(kConfig);
  cfg["gpus"][0]["telemetry"]["mig_utilization"] = {{"GPU-not-a-mig", 10}};
  env_.writeConfig(cfg.dump());
  auto r = NvmlBackend::load(NvmlSimEnv::libraryPath());
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace sandman
