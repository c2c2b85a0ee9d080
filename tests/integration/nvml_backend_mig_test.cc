// NvmlBackend creating and destroying MIG instances on the NVML simulator:
// placements, overlap, per-profile limits, the compute-slice limit, another
// process's view, and loader error paths.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gpu/nvml_backend.h"
#include "support/nvml_sim_env.h"

namespace sandman {
namespace {

using testing::NvmlSimEnv;

constexpr int k1g = 19, k1gMe = 20, k2g = 14, k3g = 9, k4g = 5, k7g = 0;  // A100 profile ids

std::vector<MigInstance> instances(NvmlBackend& b, size_t gpu = 0) {
  auto r = b.listGpus();
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() && r->size() > gpu ? r.value()[gpu].instances : std::vector<MigInstance>{};
}

void expectConflict(NvmlBackend& b, int profile, int start, int gpu = 0) {
  auto r = b.createInstance(gpu, profile, start);
  ASSERT_FALSE(r.ok()) << "profile " << profile << " at " << start << " was created";
  EXPECT_EQ(r.error().kind, ErrorKind::kConflict) << r.error().message;
}

MigInstance mustCreate(NvmlBackend& b, int profile, int start, int gpu = 0) {
  auto r = b.createInstance(gpu, profile, start);
  EXPECT_TRUE(r.ok()) << "profile " << profile << " at " << start << ": "
                      << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : MigInstance{};
}

TEST(NvmlBackendMig, CreateAtPlacementIsListedAndSeenByAnotherProcess) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  MigInstance made = mustCreate(*b, k1g, 3);
  EXPECT_EQ(made.profile_name, "1g.5gb");
  EXPECT_EQ(made.placement_start, 3);
  EXPECT_EQ(made.placement_size, 1);
  EXPECT_EQ(made.gpu_instance_id, 10);  // 7 + start, as the A100 driver numbers them
  EXPECT_EQ(made.compute_instance_id, 0);
  EXPECT_EQ(made.memory_total_mib, 4864u);
  EXPECT_EQ(made.uuid.rfind("MIG-", 0), 0u) << made.uuid;
  auto listed = instances(*b);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].uuid, made.uuid);

  // A second process sees it, and what that process creates shows up here.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto r = NvmlBackend::load(NvmlSimEnv::libraryPath());
    if (!r.ok()) _exit(2);
    auto seen = r.value()->listGpus();
    if (!seen.ok() || seen->at(0).instances.size() != 1 ||
        seen->at(0).instances[0].uuid != made.uuid) {
      _exit(3);
    }
    _exit(r.value()->createInstance(0, k2g, 4).ok() ? 0 : 4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  listed = instances(*b);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1].profile_name, "2g.10gb");
  EXPECT_EQ(listed[1].placement_start, 4);
  EXPECT_EQ(listed[1].gpu_instance_id, 5);

  auto other = NvmlSimEnv::load();  // a second loader in this process agrees
  ASSERT_TRUE(other);
  EXPECT_EQ(instances(*other).size(), 2u);
}

TEST(NvmlBackendMig, ProcessesRacingForThreeGsGetExactlyTwo) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  std::vector<pid_t> children;
  for (int i = 0; i < 6; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto r = NvmlBackend::load(NvmlSimEnv::libraryPath());
      if (!r.ok()) _exit(2);
      for (int start : {0, 4}) {
        auto made = r.value()->createInstance(0, k3g, start);
        if (made.ok()) _exit(0);
        if (made.error().kind != ErrorKind::kConflict) _exit(3);
      }
      _exit(1);
    }
    children.push_back(pid);
  }
  int won = 0;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_LE(WEXITSTATUS(status), 1) << "a child failed to load or got a non-conflict error";
    won += WEXITSTATUS(status) == 0 ? 1 : 0;
  }
  EXPECT_EQ(won, 2);
  EXPECT_EQ(instances(*b).size(), 2u);
}

TEST(NvmlBackendMig, ThreadsCreatingOneGsEverywhereGetSeven) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  std::atomic<int> won{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int s = 0; s <= 6; ++s) {
        auto r = b->createInstance(0, k1g, (s + t) % 7);
        if (r.ok()) {
          ++won;
        } else if (r.error().kind == ErrorKind::kConflict) {
          ++conflicts;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(won.load(), 7);
  EXPECT_EQ(conflicts.load(), 8 * 7 - 7);
  auto listed = instances(*b);
  ASSERT_EQ(listed.size(), 7u);
  for (int s = 0; s <= 6; ++s) EXPECT_EQ(listed[s].gpu_instance_id, 7 + s);
}

TEST(NvmlBackendMig, OverlappingPlacementIsConflict) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  mustCreate(*b, k3g, 0);
  expectConflict(*b, k2g, 2);
  expectConflict(*b, k1g, 3);
  expectConflict(*b, k4g, 0);
  expectConflict(*b, k7g, 0);
  mustCreate(*b, k2g, 4);
  expectConflict(*b, k1g, 5);
  EXPECT_EQ(instances(*b).size(), 2u);
}

TEST(NvmlBackendMig, ExceedingAProfilesInstanceCountIsConflict) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  mustCreate(*b, k1gMe, 0);
  expectConflict(*b, k1gMe, 1);  // +me: one per GPU, though slice 1 is free
  mustCreate(*b, k1g, 1);
}

TEST(NvmlBackendMig, TwoThreeGsLeaveNoRoomForAOneG) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  mustCreate(*b, k3g, 0);
  mustCreate(*b, k3g, 4);
  for (int s = 0; s <= 6; ++s) expectConflict(*b, k1g, s);
  expectConflict(*b, k3g, 0);
}

TEST(NvmlBackendMig, FourGAndThreeGFillTheSevenComputeSlices) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  mustCreate(*b, k4g, 0);
  mustCreate(*b, k3g, 4);
  auto listed = instances(*b);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].gpu_instance_id, 1);
  EXPECT_EQ(listed[1].gpu_instance_id, 2);
  for (int s = 0; s <= 6; ++s) expectConflict(*b, k1g, s);
}

TEST(NvmlBackendMig, DestroyRemovesItAndAbsentIsSuccess) {
  NvmlSimEnv env("mixed-host.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  MigInstance made = mustCreate(*b, k3g, 4, 1);
  ASSERT_EQ(instances(*b, 1).size(), 1u);
  ASSERT_TRUE(b->destroyInstance(1, made.gpu_instance_id).ok());
  EXPECT_TRUE(instances(*b, 1).empty());
  EXPECT_TRUE(b->destroyInstance(1, made.gpu_instance_id).ok()) << "absent is success";
  EXPECT_TRUE(b->destroyInstance(3, 1).ok()) << "MIG off: nothing to destroy";

  // Pre-made instances go the same way, and their slices become free.
  auto premade = instances(*b, 0);
  ASSERT_EQ(premade.size(), 3u);
  ASSERT_TRUE(b->destroyInstance(0, premade[0].gpu_instance_id).ok());
  EXPECT_EQ(instances(*b, 0).size(), 2u);
  MigInstance again = mustCreate(*b, k3g, 0, 0);
  EXPECT_NE(again.uuid, premade[0].uuid) << "a recreated MIG device gets a new UUID";
}

TEST(NvmlBackendMig, BadProfilePlacementOrGpuIsInvalid) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  for (auto [gpu, profile, start] : {std::tuple{0, 99, 0}, {0, k3g, 2}, {0, k1g, 7}, {5, k1g, 0}}) {
    auto r = b->createInstance(gpu, profile, start);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid) << r.error().message;
  }
  auto r = b->createInstance(0, k3g, 2);
  EXPECT_NE(r.error().message.find("valid starts: 0, 4"), std::string::npos) << r.error().message;
  EXPECT_TRUE(instances(*b).empty());
}

TEST(NvmlBackendMig, OtherModelsCreateWithTheirOwnIds) {
  NvmlSimEnv env("a30-and-h200.json");
  auto b = NvmlSimEnv::load();
  ASSERT_TRUE(b);
  MigInstance a30 = mustCreate(*b, 5, 2, 0);  // A30 2g.12gb at 2
  EXPECT_EQ(a30.profile_name, "2g.12gb");
  EXPECT_EQ(a30.gpu_instance_id, 2);
  expectConflict(*b, 14, 3, 0);  // 1g.6gb inside it
  expectConflict(*b, 0, 0, 0);   // 4g.24gb
  mustCreate(*b, 14, 1, 0);
  MigInstance h200 = mustCreate(*b, k3g, 4, 1);
  EXPECT_EQ(h200.profile_name, "3g.71gb");
  EXPECT_EQ(h200.memory_total_mib, 72704u);
}

TEST(NvmlBackendLoad, MissingLibraryIsUnavailableAndNamed) {
  auto r = NvmlBackend::load("/nonexistent/libnvidia-ml.so.1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("/nonexistent/libnvidia-ml.so.1"), std::string::npos)
      << r.error().message;
}

TEST(NvmlBackendLoad, LibraryWithoutNvmlSymbolsIsUnavailableAndNamesOne) {
  auto r = NvmlBackend::load("libc.so.6");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("lacks symbol nvmlInit_v2"), std::string::npos)
      << r.error().message;
}

TEST(NvmlBackendLoad, SimulatorInitErrorsAreSurfaced) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  const struct {
    std::string config;
    std::string says;
  } cases[] = {
      {"{ not json", "parse error"},
      {R"({"gpus": [{"model": "Z80", "uuid": "GPU-1"}]})", "unknown model \"Z80\""},
      {R"({"gpus": [{"model": "RTX-4090", "mig_mode": true}]})", "does not support MIG"},
      {R"({"gpus": [{"model": "A100-SXM4-40GB", "mig_mode": true, "mig_instances":
          [{"profile": "3g.20gb", "start": 0}, {"profile": "2g.10gb", "start": 2}]}]})",
       "Insufficient Resources"},
  };
  for (const auto& c : cases) {
    env.writeConfig(c.config);
    auto r = NvmlBackend::load(NvmlSimEnv::libraryPath());
    ASSERT_FALSE(r.ok()) << c.config;
    EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
    EXPECT_NE(r.error().message.find("nvmlInit_v2"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
  unsetenv("SANDMAN_NVML_SIM_CONFIG");
  auto r = NvmlBackend::load(NvmlSimEnv::libraryPath());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("SANDMAN_NVML_SIM_CONFIG"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace sandman
