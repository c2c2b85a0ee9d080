// The NVML simulator's own rules, called through its C ABI (dlopen + dlsym,
// as any NVML client would): default placements, destroy order, capacity,
// MIG-off answers, UUID lookups, struct versions, processes, error strings.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gpu/nvml_api.h"
#include "support/nvml_sim_env.h"

namespace sandman {
namespace {

using testing::NvmlSimEnv;

// The simulator opened directly, initialised for the test's lifetime.
class NvmlSim : public ::testing::Test {
 protected:
  void open(const std::string& fixture) {
    env_ = std::make_unique<NvmlSimEnv>(fixture);
    dl_ = dlopen(NvmlSimEnv::libraryPath().c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(dl_, nullptr) << dlerror();
    ASSERT_EQ(fn<nvmlInit_v2_fn>("nvmlInit_v2")(), NVML_SUCCESS);
  }
  void TearDown() override {
    if (dl_ != nullptr) {
      fn<nvmlShutdown_fn>("nvmlShutdown")();
      dlclose(dl_);
    }
    env_.reset();
  }
  template <typename Fn>
  Fn fn(const char* name) {
    void* p = dlsym(dl_, name);
    EXPECT_NE(p, nullptr) << name;
    return reinterpret_cast<Fn>(p);
  }
  nvmlDevice_t gpu(unsigned index) {
    nvmlDevice_t d = nullptr;
    EXPECT_EQ(fn<nvmlDeviceGetHandleByIndex_v2_fn>("nvmlDeviceGetHandleByIndex_v2")(index, &d),
              NVML_SUCCESS);
    return d;
  }
  nvmlReturn_t createDefault(nvmlDevice_t d, unsigned profile, nvmlGpuInstance_t* gi) {
    return fn<nvmlDeviceCreateGpuInstance_fn>("nvmlDeviceCreateGpuInstance")(d, profile, gi);
  }
  nvmlGpuInstancePlacement_t placementOf(nvmlGpuInstance_t gi) {
    nvmlGpuInstanceInfo_t info{};
    EXPECT_EQ(fn<nvmlGpuInstanceGetInfo_fn>("nvmlGpuInstanceGetInfo")(gi, &info), NVML_SUCCESS);
    return info.placement;
  }
  unsigned remaining(nvmlDevice_t d, unsigned profile) {
    unsigned n = 0;
    EXPECT_EQ(fn<nvmlDeviceGetGpuInstanceRemainingCapacity_fn>(
                  "nvmlDeviceGetGpuInstanceRemainingCapacity")(d, profile, &n),
              NVML_SUCCESS);
    return n;
  }

  std::unique_ptr<NvmlSimEnv> env_;
  void* dl_ = nullptr;
};

TEST_F(NvmlSim, DefaultPlacementsReproduceTheDocumentedFragmentation) {
  open("a100-40gb-mig-empty.json");
  nvmlDevice_t d = gpu(0);
  nvmlGpuInstance_t a, b, c, e;
  // nvidia-smi mig -cgi 19,19,14,9: 1g@6, 1g@4, 2g@0, then 3g has no room.
  ASSERT_EQ(createDefault(d, 19, &a), NVML_SUCCESS);
  EXPECT_EQ(placementOf(a).start, 6u);
  ASSERT_EQ(createDefault(d, 19, &b), NVML_SUCCESS);
  EXPECT_EQ(placementOf(b).start, 4u);
  ASSERT_EQ(createDefault(d, 14, &c), NVML_SUCCESS);
  EXPECT_EQ(placementOf(c).start, 0u);
  EXPECT_EQ(placementOf(c).size, 2u);
  EXPECT_EQ(createDefault(d, 9, &e), NVML_ERROR_INSUFFICIENT_RESOURCES);
  EXPECT_EQ(remaining(d, 9), 0u);
  EXPECT_EQ(remaining(d, 19), 3u);  // slices 2, 3, 5
  EXPECT_EQ(remaining(d, 14), 1u);  // 2:2
}

TEST_F(NvmlSim, RemainingCapacityCountsLimitsAndComputeSlices) {
  open("a100-40gb-mig-empty.json");
  nvmlDevice_t d = gpu(0);
  EXPECT_EQ(remaining(d, 19), 7u);
  EXPECT_EQ(remaining(d, 20), 1u);
  EXPECT_EQ(remaining(d, 15), 4u);
  EXPECT_EQ(remaining(d, 14), 3u);
  EXPECT_EQ(remaining(d, 9), 2u);
  EXPECT_EQ(remaining(d, 0), 1u);
  unsigned n = 0;
  EXPECT_EQ(fn<nvmlDeviceGetGpuInstanceRemainingCapacity_fn>(
                "nvmlDeviceGetGpuInstanceRemainingCapacity")(d, 77, &n),
            NVML_ERROR_INVALID_ARGUMENT);
}

TEST_F(NvmlSim, GpuInstanceWithComputeInstancesIsInUse) {
  open("a100-40gb-mig-empty.json");
  nvmlDevice_t d = gpu(0);
  nvmlGpuInstance_t gi;
  ASSERT_EQ(createDefault(d, 9, &gi), NVML_SUCCESS);
  nvmlComputeInstance_t ci;
  auto createCi = fn<nvmlGpuInstanceCreateComputeInstance_fn>("nvmlGpuInstanceCreateComputeInstance");
  EXPECT_EQ(createCi(gi, NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE, &ci), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ(createCi(gi, NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE, &ci), NVML_SUCCESS);
  nvmlComputeInstance_t none;
  EXPECT_EQ(createCi(gi, NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE, &none),
            NVML_ERROR_INSUFFICIENT_RESOURCES);
  auto destroyGi = fn<nvmlGpuInstanceDestroy_fn>("nvmlGpuInstanceDestroy");
  EXPECT_EQ(destroyGi(gi), NVML_ERROR_IN_USE);
  nvmlComputeInstanceInfo_t info{};
  ASSERT_EQ(fn<nvmlComputeInstanceGetInfo_v2_fn>("nvmlComputeInstanceGetInfo_v2")(ci, &info),
            NVML_SUCCESS);
  EXPECT_EQ(info.id, 0u);
  EXPECT_EQ(info.profileId, 2u);
  EXPECT_EQ(info.placement.size, 3u);
  EXPECT_EQ(fn<nvmlComputeInstanceDestroy_fn>("nvmlComputeInstanceDestroy")(ci), NVML_SUCCESS);
  EXPECT_EQ(destroyGi(gi), NVML_SUCCESS);
  EXPECT_EQ(destroyGi(gi), NVML_ERROR_INVALID_ARGUMENT) << "a destroyed instance's handle is stale";
}

TEST_F(NvmlSim, MigCallsAreNotSupportedWithMigOff) {
  open("mixed-host.json");
  nvmlDevice_t rtx = gpu(3);
  unsigned cur = 9, pend = 9;
  EXPECT_EQ(fn<nvmlDeviceGetMigMode_fn>("nvmlDeviceGetMigMode")(rtx, &cur, &pend),
            NVML_ERROR_NOT_SUPPORTED);
  nvmlGpuInstanceProfileInfo_t info{};
  auto profileInfo =
      fn<nvmlDeviceGetGpuInstanceProfileInfo_fn>("nvmlDeviceGetGpuInstanceProfileInfo");
  EXPECT_EQ(profileInfo(rtx, 0, &info), NVML_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(profileInfo(rtx, NVML_GPU_INSTANCE_PROFILE_COUNT, &info), NVML_ERROR_INVALID_ARGUMENT);
  nvmlGpuInstance_t gi;
  EXPECT_EQ(createDefault(rtx, 19, &gi), NVML_ERROR_NOT_SUPPORTED);
  unsigned max = 9;
  EXPECT_EQ(fn<nvmlDeviceGetMaxMigDeviceCount_fn>("nvmlDeviceGetMaxMigDeviceCount")(rtx, &max),
            NVML_SUCCESS);
  EXPECT_EQ(max, 0u);
  nvmlUtilization_t util{};
  auto utilization = fn<nvmlDeviceGetUtilizationRates_fn>("nvmlDeviceGetUtilizationRates");
  EXPECT_EQ(utilization(rtx, &util), NVML_SUCCESS);
  EXPECT_EQ(utilization(gpu(0), &util), NVML_ERROR_NOT_SUPPORTED) << "MIG on: no utilisation";
  // On a MIG-capable GPU the A100's profile indices still end at COUNT.
  EXPECT_EQ(profileInfo(gpu(0), NVML_GPU_INSTANCE_PROFILE_8_SLICE, &info),
            NVML_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(profileInfo(gpu(0), NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2, &info), NVML_SUCCESS);
  EXPECT_EQ(info.id, 15u);
}

TEST_F(NvmlSim, HandlesByGpuMigAndLegacyUuid) {
  open("mixed-host.json");
  auto byUuid = fn<nvmlDeviceGetHandleByUUID_fn>("nvmlDeviceGetHandleByUUID");
  auto getUuid = fn<nvmlDeviceGetUUID_fn>("nvmlDeviceGetUUID");
  nvmlDevice_t d = nullptr;
  ASSERT_EQ(byUuid("GPU-6b7c8d9e-3c4d-4e5f-8a0b-2c3d4e5f6071", &d), NVML_SUCCESS);
  EXPECT_EQ(d, gpu(2));
  nvmlDevice_t mig = nullptr;
  ASSERT_EQ(fn<nvmlDeviceGetMigDeviceHandleByIndex_fn>("nvmlDeviceGetMigDeviceHandleByIndex")(
                gpu(0), 0, &mig),
            NVML_SUCCESS);
  char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
  ASSERT_EQ(getUuid(mig, uuid, sizeof uuid), NVML_SUCCESS);
  nvmlDevice_t again = nullptr;
  ASSERT_EQ(byUuid(uuid, &again), NVML_SUCCESS);
  EXPECT_EQ(again, mig);
  unsigned gi = 0, is_mig = 0;
  ASSERT_EQ(fn<nvmlDeviceGetGpuInstanceId_fn>("nvmlDeviceGetGpuInstanceId")(mig, &gi),
            NVML_SUCCESS);
  EXPECT_EQ(gi, 1u);  // 3g.40gb at 0
  EXPECT_EQ(fn<nvmlDeviceIsMigDeviceHandle_fn>("nvmlDeviceIsMigDeviceHandle")(mig, &is_mig),
            NVML_SUCCESS);
  EXPECT_EQ(is_mig, 1u);
  std::string legacy = "MIG-GPU-4f1b2c3d-1a2b-4c5d-8e9f-0a1b2c3d4e5f/1/0";
  ASSERT_EQ(byUuid(legacy.c_str(), &again), NVML_SUCCESS);
  EXPECT_EQ(again, mig);
  nvmlDevice_t parent = nullptr;
  ASSERT_EQ(fn<nvmlDeviceGetDeviceHandleFromMigDeviceHandle_fn>(
                "nvmlDeviceGetDeviceHandleFromMigDeviceHandle")(mig, &parent),
            NVML_SUCCESS);
  EXPECT_EQ(parent, gpu(0));
  EXPECT_EQ(byUuid("MIG-00000000-0000-5000-8000-000000000000", &again), NVML_ERROR_NOT_FOUND);
  char small[8];
  EXPECT_EQ(getUuid(gpu(0), small, sizeof small), NVML_ERROR_INSUFFICIENT_SIZE);
}

TEST_F(NvmlSim, ProfileInfoVChecksTheStructVersionAndNamesLikeTheDriver) {
  open("a100-40gb-mig-empty.json");
  auto infoV = fn<nvmlDeviceGetGpuInstanceProfileInfoV_fn>("nvmlDeviceGetGpuInstanceProfileInfoV");
  nvmlGpuInstanceProfileInfo_v2_t v2{};
  EXPECT_EQ(infoV(gpu(0), 0, &v2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  v2.version = nvmlGpuInstanceProfileInfo_v2;
  EXPECT_EQ(v2.version, 0x02000098u);  // 152 | 2 << 24
  ASSERT_EQ(infoV(gpu(0), NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, &v2), NVML_SUCCESS);
  EXPECT_STREQ(v2.name, "MIG 1g.5gb+me");
  EXPECT_EQ(v2.id, 20u);
  EXPECT_EQ(v2.memorySizeMB, 4864u);
}

TEST_F(NvmlSim, ProcessesBlockComputeInstanceDestroy) {
  open("a100-40gb-mig-empty.json");
  nvmlGpuInstance_t gi;
  ASSERT_EQ(createDefault(gpu(0), 0, &gi), NVML_SUCCESS);  // 7g
  nvmlComputeInstance_t ci;
  ASSERT_EQ(fn<nvmlGpuInstanceCreateComputeInstance_fn>("nvmlGpuInstanceCreateComputeInstance")(
                gi, NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE, &ci),
            NVML_SUCCESS);
  nvmlDevice_t mig = nullptr;
  ASSERT_EQ(fn<nvmlDeviceGetMigDeviceHandleByIndex_fn>("nvmlDeviceGetMigDeviceHandleByIndex")(
                gpu(0), 0, &mig),
            NVML_SUCCESS);
  char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
  ASSERT_EQ(fn<nvmlDeviceGetUUID_fn>("nvmlDeviceGetUUID")(mig, uuid, sizeof uuid), NVML_SUCCESS);
  std::string text = env_->readConfig();
  auto at = text.find("\"temperature\"");
  ASSERT_NE(at, std::string::npos);
  text.insert(at, std::string("\"processes\": [{\"pid\": 4242, \"used_memory_mib\": 900, \"mig\": \"") +
                      uuid + "\"}], ");
  env_->writeConfig(text);
  // The simulator looks at its files again when a caller enumerates the devices.
  unsigned count = 0;
  ASSERT_EQ(fn<nvmlDeviceGetCount_v2_fn>("nvmlDeviceGetCount_v2")(&count), NVML_SUCCESS);
  nvmlProcessInfo_t procs[4];
  unsigned n = 4;
  ASSERT_EQ(fn<nvmlDeviceGetComputeRunningProcesses_v3_fn>(
                "nvmlDeviceGetComputeRunningProcesses_v3")(gpu(0), &n, procs),
            NVML_SUCCESS);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(procs[0].pid, 4242u);
  EXPECT_EQ(procs[0].usedGpuMemory, 900ull * 1024 * 1024);
  EXPECT_EQ(procs[0].gpuInstanceId, 0u);
  EXPECT_EQ(procs[0].computeInstanceId, 0u);
  nvmlMemory_t mem{};
  ASSERT_EQ(fn<nvmlDeviceGetMemoryInfo_fn>("nvmlDeviceGetMemoryInfo")(mig, &mem), NVML_SUCCESS);
  EXPECT_EQ(mem.total, 40192ull * 1024 * 1024);
  EXPECT_EQ(mem.used, 900ull * 1024 * 1024);
  EXPECT_EQ(fn<nvmlComputeInstanceDestroy_fn>("nvmlComputeInstanceDestroy")(ci), NVML_ERROR_IN_USE);
}

TEST(NvmlSimInit, ErrorStringSaysWhyInitFailed) {
  NvmlSimEnv env("a100-40gb-mig-empty.json");
  env.writeConfig(R"({"gpus": [{"model": "A100-SXM4-40GB", "uuid": "nope"}]})");
  void* dl = dlopen(NvmlSimEnv::libraryPath().c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr) << dlerror();
  auto init = reinterpret_cast<nvmlInit_v2_fn>(dlsym(dl, "nvmlInit_v2"));
  auto why = reinterpret_cast<nvmlErrorString_fn>(dlsym(dl, "nvmlErrorString"));
  auto count = reinterpret_cast<nvmlDeviceGetCount_v2_fn>(dlsym(dl, "nvmlDeviceGetCount_v2"));
  nvmlReturn_t rc = init();
  EXPECT_NE(rc, NVML_SUCCESS);
  EXPECT_NE(std::string(why(rc)).find("must start with \"GPU-\""), std::string::npos) << why(rc);
  unsigned n = 0;
  EXPECT_EQ(count(&n), NVML_ERROR_UNINITIALIZED);
  EXPECT_STREQ(why(NVML_ERROR_INSUFFICIENT_RESOURCES), "Insufficient Resources");
  dlclose(dl);
}

}  // namespace
}  // namespace sandman
