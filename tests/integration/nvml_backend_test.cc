// NvmlBackend (the production dlopen loader) against the NVML simulator
// library, for each fixture and model: inventory, MIG create/destroy under
// the driver's rules, and the error paths of loading.
#include "gpu/nvml_backend.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "support/nvml_sim_env.h"

namespace sandman {
namespace {

using testing::NvmlSimEnv;

struct Expected {
  int id;
  int compute_slices;
  uint64_t memory_mib;
  int instance_count;
  std::vector<int> starts;
  int size;
};

const MigProfile* findProfile(const GpuInfo& gpu, const std::string& name) {
  for (const auto& p : gpu.profiles) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

void expectProfiles(const GpuInfo& gpu, const std::map<std::string, Expected>& want) {
  std::set<std::string> names;
  for (const auto& p : gpu.profiles) names.insert(p.name);
  EXPECT_EQ(names.size(), want.size()) << gpu.name;
  for (const auto& [name, e] : want) {
    const MigProfile* p = findProfile(gpu, name);
    ASSERT_NE(p, nullptr) << gpu.name << " lacks " << name;
    EXPECT_EQ(p->profile_id, e.id) << name;
    EXPECT_EQ(p->compute_slices, e.compute_slices) << name;
    EXPECT_EQ(p->memory_mib, e.memory_mib) << name;
    EXPECT_EQ(p->instance_count, e.instance_count) << name;
    EXPECT_EQ(p->placement_starts, e.starts) << name;
    EXPECT_EQ(p->memory_slices, e.size) << name;
  }
}

bool looksLikeMigUuid(const std::string& s) {
  static const std::regex re(
      "^MIG-[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(s, re);
}

std::vector<GpuInfo> list(NvmlBackend& b) {
  auto r = b.listGpus();
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : std::vector<GpuInfo>{};
}

const std::vector<int> k0to6 = {0, 1, 2, 3, 4, 5, 6};

TEST(NvmlBackend, DescribesDriverAndNvmlVersions) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->description(), "NVML 12.550.54.15, driver 550.54.15");
}

TEST(NvmlBackend, A100_40GB_ProfilesIdsAndPlacementsMatchMigTables) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  auto gpus = list(*b);
  ASSERT_EQ(gpus.size(), 1u);
  const GpuInfo& g = gpus[0];
  EXPECT_EQ(g.index, 0);
  EXPECT_EQ(g.uuid, "GPU-e86cb44c-6756-fd30-cd4a-1e6da3caf9b0");
  EXPECT_EQ(g.name, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(g.memory_total_mib, 40960u);
  EXPECT_TRUE(g.mig_enabled);
  EXPECT_TRUE(g.mig_pending);
  EXPECT_EQ(g.memory_slice_count, 8);
  EXPECT_TRUE(g.instances.empty());
  expectProfiles(g, {
                        {"1g.5gb", {19, 1, 4864, 7, k0to6, 1}},
                        {"1g.5gb+me", {20, 1, 4864, 1, k0to6, 1}},
                        {"1g.10gb", {15, 1, 9856, 4, {0, 2, 4, 6}, 2}},
                        {"2g.10gb", {14, 2, 9856, 3, {0, 2, 4}, 2}},
                        {"3g.20gb", {9, 3, 19968, 2, {0, 4}, 4}},
                        {"4g.20gb", {5, 4, 19968, 1, {0}, 4}},
                        {"7g.40gb", {0, 7, 40192, 1, {0}, 8}},
                    });
  EXPECT_EQ(g.telemetry.temperature_c, 38u);
  EXPECT_EQ(g.telemetry.power_usage_mw, 54000u);
  EXPECT_EQ(g.telemetry.power_limit_mw, 400000u);
  EXPECT_FALSE(g.telemetry.utilization_gpu.has_value()) << "NVML has no utilisation in MIG mode";
}

TEST(NvmlBackend, A30_HasFourMemorySlicesAndItsOwnProfileIds) {
  NvmlSimEnv env("a30-and-h200.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  auto gpus = list(*b);
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].name, "NVIDIA A30");
  EXPECT_EQ(gpus[0].memory_slice_count, 4);
  expectProfiles(gpus[0], {
                              {"1g.6gb", {14, 1, 5952, 4, {0, 1, 2, 3}, 1}},
                              {"1g.6gb+me", {21, 1, 5952, 1, {0, 1, 2, 3}, 1}},
                              {"2g.12gb", {5, 2, 11968, 2, {0, 2}, 2}},
                              {"2g.12gb+me", {6, 2, 11968, 1, {0, 2}, 2}},
                              {"4g.24gb", {0, 4, 24000, 1, {0}, 4}},
                          });
}

TEST(NvmlBackend, HopperProfileNames) {
  {
    NvmlSimEnv env("mixed-host.json");
    auto b = NvmlSimEnv::load();
    ASSERT_TRUE(b);
    auto gpus = list(*b);
    ASSERT_EQ(gpus.size(), 4u);
    const GpuInfo& h100 = gpus[2];
    EXPECT_EQ(h100.name, "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(h100.memory_slice_count, 8);
    expectProfiles(h100, {
                             {"1g.10gb", {19, 1, 9984, 7, k0to6, 1}},
                             {"1g.10gb+me", {20, 1, 9984, 1, k0to6, 1}},
                             {"1g.20gb", {15, 1, 20096, 4, {0, 2, 4, 6}, 2}},
                             {"2g.20gb", {14, 2, 20096, 3, {0, 2, 4}, 2}},
                             {"3g.40gb", {9, 3, 40448, 2, {0, 4}, 4}},
                             {"4g.40gb", {5, 4, 40448, 1, {0}, 4}},
                             {"7g.80gb", {0, 7, 81152, 1, {0}, 8}},
                         });
  }
  NvmlSimEnv env("a30-and-h200.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  auto gpus = list(*b);
  ASSERT_EQ(gpus.size(), 2u);
  std::set<std::string> names;
  for (const auto& p : gpus[1].profiles) names.insert(p.name);
  EXPECT_EQ(names, (std::set<std::string>{"1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb",
                                          "3g.71gb", "4g.71gb", "7g.141gb"}));
  ASSERT_NE(findProfile(gpus[1], "3g.71gb"), nullptr);
  EXPECT_EQ(findProfile(gpus[1], "3g.71gb")->profile_id, 9);
}

TEST(NvmlBackend, MixedHostListsPremadeInstancesWithMigUuids) {
  NvmlSimEnv env("mixed-host.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  auto gpus = list(*b);
  ASSERT_EQ(gpus.size(), 4u);
  const auto& inst = gpus[0].instances;
  ASSERT_EQ(inst.size(), 3u);
  struct Want {
    const char* profile;
    int id, start, size, gi;
    uint64_t mib;
  };
  const Want want[] = {{"3g.40gb", 9, 0, 4, 1, 40192},
                       {"2g.20gb", 14, 4, 2, 5, 19968},
                       {"1g.10gb", 19, 6, 1, 13, 9728}};
  std::set<std::string> uuids;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(inst[i].profile_name, want[i].profile);
    EXPECT_EQ(inst[i].profile_id, want[i].id);
    EXPECT_EQ(inst[i].placement_start, want[i].start);
    EXPECT_EQ(inst[i].placement_size, want[i].size);
    EXPECT_EQ(inst[i].gpu_instance_id, want[i].gi) << "driver-like GI id for " << want[i].profile;
    EXPECT_EQ(inst[i].compute_instance_id, 0);
    EXPECT_EQ(inst[i].memory_total_mib, want[i].mib);
    EXPECT_TRUE(looksLikeMigUuid(inst[i].uuid)) << inst[i].uuid;
    uuids.insert(inst[i].uuid);
  }
  EXPECT_EQ(uuids.size(), 3u);
  EXPECT_TRUE(gpus[1].instances.empty());
  EXPECT_TRUE(gpus[2].instances.empty());

  // Another loader (another process, another start) sees the same UUIDs.
  b.reset();
  auto again = NvmlSimEnv::load();
  ASSERT_TRUE(again);
  auto gpus2 = list(*again);
  ASSERT_EQ(gpus2.size(), 4u);
  ASSERT_EQ(gpus2[0].instances.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(gpus2[0].instances[i].uuid, inst[i].uuid);
}

TEST(NvmlBackend, Rtx4090HasMigOffAndNoProfiles) {
  NvmlSimEnv env("mixed-host.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  auto gpus = list(*b);
  ASSERT_EQ(gpus.size(), 4u);
  const GpuInfo& g = gpus[3];
  EXPECT_EQ(g.name, "NVIDIA GeForce RTX 4090");
  EXPECT_EQ(g.uuid, "GPU-7c8d9e0f-4d5e-4f60-9b1c-3d4e5f607182");
  EXPECT_FALSE(g.mig_enabled);
  EXPECT_FALSE(g.mig_pending);
  EXPECT_EQ(g.memory_slice_count, 0);
  EXPECT_TRUE(g.profiles.empty());
  EXPECT_TRUE(g.instances.empty());
  EXPECT_EQ(g.memory_used_mib, 300u);
  EXPECT_EQ(g.memory_free_mib, g.memory_total_mib - 300u);
  EXPECT_EQ(g.telemetry.utilization_gpu, 0u);
  EXPECT_EQ(g.telemetry.temperature_c, 33u);
  EXPECT_EQ(g.telemetry.power_limit_mw, 450000u);
  auto r = b->createInstance(3, 19, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("MIG is off"), std::string::npos) << r.error().message;
}

TEST(NvmlBackend, TelemetryFollowsConfigRewrites) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  std::string text = env.readConfig();
  auto at = text.find("\"temperature\": 38");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 17, "\"temperature\": 91");
  env.writeConfig(text);
  auto gpus = list(*b);
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].telemetry.temperature_c, 91u);
}

// On a real H200 the v1 memory call said 615 MiB "used" on an idle GPU where
// nvidia-smi said 0 (616 MiB reserved): Sandman reads _v2, so a session's
// peak memory (right-sizing, the dashboard) is what its processes hold.
TEST(NvmlBackend, TheDriversReservationIsNotUsedMemory) {
  NvmlSimEnv env("mixed-host.json");
  std::string text = env.readConfig();
  auto at = text.find("\"memory_used_mib\": 300");
  ASSERT_NE(at, std::string::npos);
  text.insert(at, "\"memory_reserved_mib\": 616, ");
  env.writeConfig(text);
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  auto gpus = list(*b);
  ASSERT_EQ(gpus.size(), 4u);
  EXPECT_EQ(gpus[3].memory_used_mib, 300u);
  EXPECT_EQ(gpus[3].memory_free_mib, gpus[3].memory_total_mib - 300u - 616u);
}

}  // namespace
}  // namespace sandman
