// GpuLeases: held slots from sessions, the container attachment, and
// noticing slices that vanished behind Sandman's back.
#include "core/gpu_leases.h"

#include <gtest/gtest.h>

namespace sandman {
namespace {

Session gpuSession(const std::string& id, const std::string& device, SessionStatus st = SessionStatus::kRunning) {
  Session s;
  s.id = id;
  s.status = st;
  s.gpu_uuid = device;
  s.gpu = GpuSlot{0, "GPU-a", "1g.10gb", 19, 6, 1, 13, false, true, false, "env-only", ""};
  return s;
}

TEST(GpuLeases, HeldSlotsCarryPlacementsAndProfiles) {
  Session cpu;
  cpu.id = "s-cpu";
  auto held = GpuLeases::heldSlots({gpuSession("s-1", "MIG-x"), cpu});
  ASSERT_EQ(held.size(), 1u) << "a CPU-only session holds nothing";
  EXPECT_EQ(held[0].gpu_uuid, "GPU-a");
  EXPECT_EQ(held[0].device_uuid, "MIG-x");
  EXPECT_EQ(held[0].placement_start, 6);
  EXPECT_EQ(held[0].profile, "1g.10gb");
}

TEST(GpuLeases, VanishedFindsRunningSessionsWhoseDeviceIsGone) {
  GpuLeases leases(nullptr, {});
  GpuInfo gpu;
  gpu.uuid = "GPU-a";
  MigInstance kept;
  kept.uuid = "MIG-kept";
  gpu.instances.push_back(kept);
  Session whole = gpuSession("s-whole", "GPU-a");
  auto gone = leases.vanished({gpuSession("s-kept", "MIG-kept"), gpuSession("s-gone", "MIG-gone"), whole,
                               gpuSession("s-starting", "MIG-other", SessionStatus::kStarting)},
                              {gpu});
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], "s-gone");
}

}  // namespace
}  // namespace sandman
