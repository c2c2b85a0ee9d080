#include "gpu/allocator.h"

#include <gtest/gtest.h>

namespace sandman {
namespace {

// GPU models as NVML reports them (../shared/reference/mig.md section 1).
MigProfile prof(int id, std::string name, int compute, int memory, uint64_t mib, int count,
                std::vector<int> starts) {
  return {id, std::move(name), compute, memory, mib, count, std::move(starts)};
}

const std::vector<int> kOneSlice{0, 1, 2, 3, 4, 5, 6};

GpuInfo migGpu(int index, std::string name, std::string mem, std::vector<std::string> gb,
               std::vector<uint64_t> mib) {
  GpuInfo g;
  g.index = index;
  g.uuid = "GPU-" + mem + "-" + std::to_string(index);
  g.name = std::move(name);
  g.mig_enabled = true;
  g.memory_slice_count = 8;
  // NVML order: 1g, 2g, 3g, 4g, 7g, 1g+me, 1g with two memory slices.
  g.profiles = {prof(19, "1g." + gb[0], 1, 1, mib[0], 7, kOneSlice),
                prof(14, "2g." + gb[1], 2, 2, mib[1], 3, {0, 2, 4}),
                prof(9, "3g." + gb[2], 3, 4, mib[2], 2, {0, 4}),
                prof(5, "4g." + gb[2], 4, 4, mib[2], 1, {0}),
                prof(0, "7g." + gb[3], 7, 8, mib[3], 1, {0}),
                prof(20, "1g." + gb[0] + "+me", 1, 1, mib[0], 1, kOneSlice),
                prof(15, "1g." + gb[1], 1, 2, mib[1], 4, {0, 2, 4, 6})};
  return g;
}

GpuInfo a100_40(int i) {
  return migGpu(i, "NVIDIA A100-SXM4-40GB", "a40", {"5gb", "10gb", "20gb", "40gb"},
                {4864, 9856, 19968, 40192});
}
GpuInfo a100_80(int i) {
  return migGpu(i, "NVIDIA A100 80GB PCIe", "a80", {"10gb", "20gb", "40gb", "80gb"},
                {9728, 19968, 40192, 80896});
}
GpuInfo h200(int i) {
  return migGpu(i, "NVIDIA H200", "h200", {"18gb", "35gb", "71gb", "141gb"},
                {18432, 35840, 72704, 144384});
}
GpuInfo a30(int i) {
  GpuInfo g;
  g.index = i;
  g.uuid = "GPU-a30-" + std::to_string(i);
  g.name = "NVIDIA A30";
  g.mig_enabled = true;
  g.memory_slice_count = 4;
  g.profiles = {prof(14, "1g.6gb", 1, 1, 5952, 4, {0, 1, 2, 3}),
                prof(5, "2g.12gb", 2, 2, 11968, 2, {0, 2}),
                prof(0, "4g.24gb", 4, 4, 24000, 1, {0}),
                prof(21, "1g.6gb+me", 1, 1, 5952, 1, {0, 1, 2, 3}),
                prof(6, "2g.12gb+me", 2, 2, 11968, 1, {0, 2})};
  return g;
}
GpuInfo rtx4090(int i) {
  GpuInfo g;
  g.index = i;
  g.uuid = "GPU-rtx-" + std::to_string(i);
  g.name = "NVIDIA GeForce RTX 4090";
  return g;
}

// Adds an existing instance of `profile` at `start`; returns its uuid.
std::string addInstance(GpuInfo& g, const std::string& profile, int start) {
  for (const MigProfile& p : g.profiles) {
    if (p.name != profile) continue;
    MigInstance inst;
    inst.uuid = "MIG-" + g.uuid + "/" + std::to_string(start);
    inst.profile_id = p.profile_id;
    inst.profile_name = p.name;
    inst.placement_start = start;
    inst.placement_size = p.memory_slices;
    g.instances.push_back(inst);
    return inst.uuid;
  }
  ADD_FAILURE() << "no profile " << profile;
  return "";
}

SlotRequest profile(const std::string& name) { return {name, std::nullopt, std::nullopt}; }
SlotRequest instance(const std::string& uuid) { return {std::nullopt, uuid, std::nullopt}; }

// Sessions hold every listed instance.
std::vector<HeldSlot> allHeld(const std::vector<GpuInfo>& gpus) {
  std::vector<HeldSlot> held;
  for (const GpuInfo& g : gpus)
    for (const MigInstance& m : g.instances)
      held.push_back({g.uuid, m.uuid, m.placement_start, m.placement_size, false, m.profile_name});
  return held;
}

Result<Allocation> dyn(const std::vector<GpuInfo>& gpus, const SlotRequest& req) {
  return allocate(gpus, allHeld(gpus), req, MigMode::kDynamic, "3g");
}
Result<Allocation> dyn(const std::vector<GpuInfo>& gpus, const SlotRequest& req,
                       const std::vector<HeldSlot>& held) {
  return allocate(gpus, held, req, MigMode::kDynamic, "3g");
}

// Applies a dynamic allocation to the GPU list, as the caller would after creating it.
void apply(std::vector<GpuInfo>& gpus, const Allocation& a) {
  for (GpuInfo& g : gpus)
    if (g.uuid == a.gpu_uuid) addInstance(g, a.profile, a.placement_start);
}

TEST(Allocator, OneSliceOnEmptyA100GoesToSlotSix) {
  // Any 1g blocks the 7g and one 3g. Slot 6 also blocks only the 1g.10gb@6;
  // it keeps all three 2g placements and the 4g (4 or 5 lose 2g@4, 0..3 the 4g).
  auto a = dyn({a100_40(0)}, profile("1g.5gb"));
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->placement_start, 6);
  EXPECT_EQ(a->placement_size, 1);
  EXPECT_EQ(a->profile_id, 19);
  EXPECT_TRUE(a->create);
  EXPECT_EQ(a->device_uuid, "");
}

TEST(Allocator, SecondOneSliceStaysInTheRightHalf) {
  // With 1g@6, slots 4 and 5 cost only the 2g@4; 0..3 would cost the 4g and 3g@0.
  std::vector<GpuInfo> gpus{a100_40(0)};
  addInstance(gpus[0], "1g.5gb", 6);
  auto a = dyn(gpus, profile("1g.5gb"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->placement_start, 4) << "4 and 5 tie; the lower start wins";
}

TEST(Allocator, OneSliceBesideThreeGKeepsTwoG) {
  std::vector<GpuInfo> gpus{a100_40(0)};
  addInstance(gpus[0], "3g.20gb", 0);
  auto a = dyn(gpus, profile("1g.5gb"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->placement_start, 6) << "4 or 5 would block the 2g@4";
  apply(gpus, *a);
  auto two = dyn(gpus, profile("2g.10gb"));
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->placement_start, 4);
}

TEST(Allocator, FourGPlusThreeGFillsTheGpu) {
  std::vector<GpuInfo> gpus{a100_40(0)};
  addInstance(gpus[0], "4g.20gb", 0);
  addInstance(gpus[0], "3g.20gb", 4);
  auto a = dyn(gpus, profile("1g.5gb"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().kind, ErrorKind::kConflict);
  EXPECT_NE(a.error().message.find("nothing"), std::string::npos) << a.error().message;
  for (const auto& [name, n] : remainingCapacity(gpus[0], {})) EXPECT_EQ(n, 0) << name;
}

TEST(Allocator, TwoThreeGLeaveNoRoomForOneG) {
  // Six compute slices used, but all eight memory slices: a 1g cannot go anywhere.
  std::vector<GpuInfo> gpus{a100_40(0)};
  addInstance(gpus[0], "3g.20gb", 0);
  addInstance(gpus[0], "3g.20gb", 4);
  auto a = dyn(gpus, profile("1g.5gb"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().kind, ErrorKind::kConflict);
}

TEST(Allocator, SevenComputeSlicesAreTheLimitEvenWithMemoryFree) {
  // Real tables never leave a valid placement free at 7 compute slices, so
  // a synthetic model with a 1g placement on slice 7 shows the rule.
  GpuInfo g = a100_40(0);
  g.profiles = {prof(19, "1g.x", 1, 1, 1, 8, {0, 1, 2, 3, 4, 5, 6, 7}),
                prof(0, "7g.x", 7, 8, 8, 1, {0})};
  for (int s = 0; s < 7; ++s) addInstance(g, "1g.x", s);
  auto a = dyn({g}, profile("1g.x"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().kind, ErrorKind::kConflict);
  EXPECT_EQ(remainingCapacity(g, {}).at("1g.x"), 0);
}

TEST(Allocator, MediaExtensionProfileAllowsOneInstance) {
  std::vector<GpuInfo> gpus{a100_40(0)};
  addInstance(gpus[0], "1g.5gb+me", 0);
  auto a = dyn(gpus, profile("1g.5gb+me"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().kind, ErrorKind::kConflict);
  auto cap = remainingCapacity(gpus[0], {});
  EXPECT_EQ(cap.at("1g.5gb+me"), 0);
  EXPECT_EQ(cap.at("1g.5gb"), 6);
  EXPECT_EQ(cap.at("2g.10gb"), 2);
}

TEST(Allocator, RemainingCapacityCountsEachProfileAlone) {
  GpuInfo g = a100_40(0);
  EXPECT_EQ(remainingCapacity(g, {}),
            (std::map<std::string, int>{{"1g.5gb", 7}, {"1g.5gb+me", 1}, {"1g.10gb", 4},
                                        {"2g.10gb", 3}, {"3g.20gb", 2}, {"4g.20gb", 1},
                                        {"7g.40gb", 1}}));
  addInstance(g, "3g.20gb", 4);
  auto cap = remainingCapacity(g, {});
  EXPECT_EQ(cap.at("1g.5gb"), 4);
  EXPECT_EQ(cap.at("2g.10gb"), 2);
  EXPECT_EQ(cap.at("3g.20gb"), 1);
  EXPECT_EQ(cap.at("4g.20gb"), 1);
  EXPECT_EQ(cap.at("7g.40gb"), 0);
}

TEST(Allocator, RemainingCapacitiesMatchesThePerGpuForm) {
  std::vector<GpuInfo> gpus{a100_40(0), a30(1), rtx4090(2)};
  addInstance(gpus[0], "4g.20gb", 0);
  std::vector<HeldSlot> held{{gpus[1].uuid, "", 2, 2, false, "2g.12gb"}, {"GPU-rtx-2", "GPU-rtx-2", -1, 0, true, ""}};
  auto all = remainingCapacities(gpus, held);
  ASSERT_EQ(all.size(), 3u);
  for (size_t i = 0; i < gpus.size(); ++i) EXPECT_EQ(all[i], remainingCapacity(gpus[i], held)) << i;
  EXPECT_EQ(all[1].at("2g.12gb"), 1);
  EXPECT_EQ(all[2].at("whole"), 0);
}

TEST(Allocator, A30HasFourSlicesAndKeepsTheTwoGFree) {
  std::vector<GpuInfo> gpus{a30(0)};
  auto first = dyn(gpus, profile("1g.6gb"));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->placement_start, 0) << "all four slots tie on an empty A30";
  apply(gpus, *first);
  auto second = dyn(gpus, profile("1g.6gb"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->placement_start, 1) << "slot 1 keeps the 2g@2";
  apply(gpus, *second);
  auto two = dyn(gpus, profile("2g.12gb"));
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->placement_start, 2);
  EXPECT_EQ(two->profile_id, 5);
  apply(gpus, *two);
  EXPECT_EQ(dyn(gpus, profile("1g.6gb")).error().kind, ErrorKind::kConflict);
  EXPECT_EQ(dyn({a30(0)}, profile("4g.24gb"))->placement_size, 4);
}

TEST(Allocator, HeldReservationsCountAsOccupied) {
  std::vector<GpuInfo> gpus{a100_40(0)};
  std::vector<HeldSlot> held{{gpus[0].uuid, "", 0, 4, false, "3g.20gb"}};  // not created yet
  auto a = dyn(gpus, profile("3g.20gb"), held);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->placement_start, 4);
  held.push_back({gpus[0].uuid, "", 4, 4, false, ""});  // profile unknown: still occupied
  EXPECT_EQ(dyn(gpus, profile("1g.5gb"), held).error().kind, ErrorKind::kConflict);
}

TEST(Allocator, HeldSlotOfAnExistingInstanceIsNotCountedTwice) {
  // 4g@0 counted twice would be 8 compute slices and leave no room for the 3g.
  std::vector<GpuInfo> gpus{a100_40(0)};
  const std::string uuid = addInstance(gpus[0], "4g.20gb", 0);
  std::vector<HeldSlot> held{{gpus[0].uuid, uuid, 0, 4, false, "4g.20gb"}};
  auto a = dyn(gpus, profile("3g.20gb"), held);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->placement_start, 4);
}

TEST(Allocator, PacksOntoAPartlyUsedGpu) {
  std::vector<GpuInfo> gpus{a100_40(0), a100_40(1)};
  addInstance(gpus[1], "3g.20gb", 0);
  auto one = dyn(gpus, profile("1g.5gb"));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->gpu_index, 1);
  EXPECT_EQ(one->placement_start, 6);
  auto seven = dyn(gpus, profile("7g.40gb"));
  ASSERT_TRUE(seven.ok());
  EXPECT_EQ(seven->gpu_index, 0);
}

TEST(Allocator, StaticModeHandsOutExistingInstances) {
  std::vector<GpuInfo> gpus{a100_40(0)};
  const std::string a = addInstance(gpus[0], "1g.5gb", 0);
  const std::string b = addInstance(gpus[0], "1g.5gb", 1);
  std::vector<HeldSlot> held{{gpus[0].uuid, a, 0, 1, false, ""}};
  auto by_profile = allocate(gpus, held, profile("1g.5gb"), MigMode::kStatic, "3g");
  ASSERT_TRUE(by_profile.ok());
  EXPECT_EQ(by_profile->device_uuid, b);
  EXPECT_FALSE(by_profile->create);
  auto by_uuid = allocate(gpus, {}, instance(a), MigMode::kStatic, "3g");
  ASSERT_TRUE(by_uuid.ok());
  EXPECT_EQ(by_uuid->device_uuid, a);
  EXPECT_EQ(by_uuid->placement_start, 0);
  // Held by uuid only (no placement): still held.
  auto taken = allocate(gpus, {{gpus[0].uuid, a, -1, 0, false, ""}}, instance(a), MigMode::kStatic, "3g");
  EXPECT_EQ(taken.error().kind, ErrorKind::kConflict);
  auto unknown = allocate(gpus, {}, instance("MIG-nope"), MigMode::kStatic, "3g");
  EXPECT_EQ(unknown.error().kind, ErrorKind::kInvalid);
  auto gpu_uuid = allocate(gpus, {}, instance(gpus[0].uuid), MigMode::kStatic, "3g");
  EXPECT_EQ(gpu_uuid.error().kind, ErrorKind::kInvalid);
}

TEST(Allocator, StaticModeNeverCreates) {
  std::vector<GpuInfo> gpus{a100_40(0)};
  addInstance(gpus[0], "1g.5gb", 3);
  auto a = allocate(gpus, {}, profile("3g.20gb"), MigMode::kStatic, "3g");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().kind, ErrorKind::kConflict);
  EXPECT_NE(a.error().message.find("1g.5gb x1"), std::string::npos) << a.error().message;
}

TEST(Allocator, DynamicModeReusesAFreeExistingInstance) {
  std::vector<GpuInfo> gpus{a100_40(0)};
  const std::string pre = addInstance(gpus[0], "1g.5gb", 2);
  auto reused = dyn(gpus, profile("1g.5gb"), {});
  ASSERT_TRUE(reused.ok());
  EXPECT_FALSE(reused->create);
  EXPECT_EQ(reused->device_uuid, pre);
  auto fresh = dyn(gpus, profile("1g.5gb"), {{gpus[0].uuid, pre, 2, 1, false, "1g.5gb"}});
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(fresh->create);
  EXPECT_EQ(fresh->placement_start, 3) << "beside the 1g@2, keeping the 4g's half for 2g@0 and the right half whole";
}

TEST(Allocator, UnusableDefaultClassIsInvalid) {
  auto a = allocate({a100_40(0)}, {}, {}, MigMode::kDynamic, "big");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().kind, ErrorKind::kInvalid);
}

TEST(Allocator, MigOffGpuIsHandedOutWhole) {
  std::vector<GpuInfo> gpus{a100_40(0), rtx4090(1)};
  for (MigMode mode : {MigMode::kStatic, MigMode::kDynamic}) {
    auto a = allocate(gpus, {}, profile("whole"), mode, "3g");
    ASSERT_TRUE(a.ok());
    EXPECT_TRUE(a->whole);
    EXPECT_EQ(a->device_uuid, "GPU-rtx-1");
    EXPECT_EQ(a->gpu_index, 1);
  }
  std::vector<HeldSlot> held{{"GPU-rtx-1", "GPU-rtx-1", -1, 0, true, ""}};
  EXPECT_EQ(dyn(gpus, profile("whole"), held).error().kind, ErrorKind::kConflict);
  EXPECT_EQ(dyn({a100_40(0)}, profile("whole")).error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(remainingCapacity(gpus[1], held).at("whole"), 0);
}

TEST(Allocator, NoProfileFallsBackToAWholeGpu) {
  auto only = dyn({rtx4090(0)}, {});
  ASSERT_TRUE(only.ok());
  EXPECT_TRUE(only->whole);
  auto explicit_profile = dyn({rtx4090(0)}, profile("1g.10gb"));
  ASSERT_FALSE(explicit_profile.ok());
  EXPECT_EQ(explicit_profile.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(explicit_profile.error().message.find("whole"), std::string::npos);
  // MIG GPUs first; the whole GPU once they are full.
  std::vector<GpuInfo> gpus{a100_40(0), rtx4090(1)};
  EXPECT_EQ(dyn(gpus, {})->profile, "3g.20gb");
  addInstance(gpus[0], "7g.40gb", 0);
  EXPECT_TRUE(dyn(gpus, {})->whole);
}

TEST(Allocator, DefaultProfileFollowsTheGpuModel) {
  EXPECT_EQ(dyn({a100_40(0)}, {})->profile, "3g.20gb");
  EXPECT_EQ(dyn({a100_80(0)}, {})->profile, "3g.40gb");
  EXPECT_EQ(dyn({h200(0)}, {})->profile, "3g.71gb");
  EXPECT_EQ(dyn({a30(0)}, {})->profile, "2g.12gb") << "A30 has no 3g: the largest below";
  auto full_name = allocate({a100_80(0)}, {}, {}, MigMode::kDynamic, "3g.20gb");
  EXPECT_EQ(full_name->profile, "3g.40gb") << "a full name maps by its class";
  auto one = allocate({a100_80(0)}, {}, {}, MigMode::kDynamic, "1g");
  EXPECT_EQ(one->profile, "1g.10gb") << "smallest memory, no +me";
}

TEST(Allocator, BothFieldsIsInvalid) {
  SlotRequest req{"1g.5gb", "MIG-x", std::nullopt};
  auto a = dyn({a100_40(0)}, req);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().kind, ErrorKind::kInvalid);
}

TEST(Allocator, UnknownProfileListsTheValidOnes) {
  auto a = dyn({a100_40(0), a30(1)}, profile("3g.40gb"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().kind, ErrorKind::kInvalid);
  for (const char* name : {"1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb", "1g.6gb", "4g.24gb"})
    EXPECT_NE(a.error().message.find(name), std::string::npos) << name << ": " << a.error().message;
}

TEST(Allocator, ConflictSaysWhatIsFree) {
  std::vector<GpuInfo> gpus{a100_40(0)};
  addInstance(gpus[0], "4g.20gb", 0);
  auto a = dyn(gpus, profile("4g.20gb"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().kind, ErrorKind::kConflict);
  EXPECT_NE(a.error().message.find("3g.20gb x1"), std::string::npos) << a.error().message;
}

int acceptAll(Result<Allocation> (*fn)(const std::vector<GpuInfo>&, const std::vector<HeldSlot>&,
                                       const SlotRequest&, MigMode, const std::string&),
              const std::vector<std::string>& seq) {
  std::vector<GpuInfo> gpus{a100_40(0)};
  int accepted = 0;
  for (const std::string& p : seq) {
    auto a = fn(gpus, allHeld(gpus), profile(p), MigMode::kDynamic, "3g");
    if (!a.ok()) continue;
    apply(gpus, *a);
    ++accepted;
  }
  return accepted;
}

TEST(Allocator, PolicyAcceptsWhatFirstFitFragments) {
  // First-fit: 1g@0 blocks the 4g. The policy: 1g@6, 4g@0, 2g@4 (full GPU).
  const std::vector<std::string> seq{"1g.5gb", "4g.20gb", "2g.10gb"};
  EXPECT_EQ(acceptAll(&allocateFirstFit, seq), 2);
  EXPECT_EQ(acceptAll(&allocate, seq), 3);
  // 2g then 4g: first-fit takes 2g@0 and rejects the 4g; the policy takes 2g@4.
  EXPECT_EQ(acceptAll(&allocateFirstFit, {"2g.10gb", "4g.20gb"}), 1);
  EXPECT_EQ(acceptAll(&allocate, {"2g.10gb", "4g.20gb"}), 2);
}

TEST(Allocator, FirstFitTakesTheLowestPlacement) {
  auto a = allocateFirstFit({a100_40(0)}, {}, profile("1g.5gb"), MigMode::kDynamic, "3g");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->placement_start, 0);
}

}  // namespace
}  // namespace sandman
