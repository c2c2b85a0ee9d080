// Ending a session exactly once, against the production NVML loader over
// the simulator: a duplicate DELETE or a periodic reconcile racing a slow
// `docker rm` must neither run the end path twice nor destroy the MIG
// instances NVML has meanwhile handed (same GI id, same placement) to newer
// sessions. Docker is the recording runtime; the store is real SQLite.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <set>

#include "core/gpu_leases.h"
#include "support/nvml_sim_env.h"
#include "support/session_harness.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;
using testing::NvmlSimEnv;

// Holds the first removal of one container until released: a slow `docker rm`.
class SlowRemoval {
 public:
  void arm(const std::string& id) {
    std::lock_guard l(mu_);
    target_ = id;
  }
  void onRemove(const std::string& id) {
    std::unique_lock l(mu_);
    if (id != target_) return;
    ++removals_;
    if (removals_ > 1) return;
    entered_ = true;
    cv_.notify_all();
    cv_.wait(l, [this] { return released_; });
  }
  void waitEntered() {
    std::unique_lock l(mu_);
    ASSERT_TRUE(cv_.wait_for(l, 10s, [this] { return entered_; })) << "the first stop never reached docker rm";
  }
  void release() {
    std::lock_guard l(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int removals() {
    std::lock_guard l(mu_);
    return removals_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string target_;
  int removals_ = 0;
  bool entered_ = false;
  bool released_ = false;
};

class SessionEndRace : public testing::SessionHarness {
 protected:
  void configure(SessionSettings& s) override { s.ports = {40100, 40120}; }
  void SetUp() override {
    env_ = std::make_unique<NvmlSimEnv>("a100-40gb-mig-empty.json");
    backend_ = NvmlSimEnv::load();
    ASSERT_NE(backend_, nullptr);
    GpuSettings gs;
    gs.default_profile = "1g";
    SessionHarness::SetUp();
    gpus_ = GpuLeases(backend_.get(), gs);
    rebuild();
    runtime_.on_remove = [this](const std::string& id) { slow_.onRemove(id); };
  }
  void TearDown() override {
    slow_.release();
    SessionHarness::TearDown();
  }

  std::set<std::string> migUuids() {
    std::set<std::string> out;
    auto gpus = backend_->listGpus();
    EXPECT_TRUE(gpus.ok());
    if (!gpus.ok()) return out;
    for (const auto& g : gpus.value()) {
      for (const auto& i : g.instances) out.insert(i.uuid);
    }
    return out;
  }

  std::unique_ptr<NvmlSimEnv> env_;
  NvmlBackendPtr backend_;
  SlowRemoval slow_;
};

TEST_F(SessionEndRace, DuplicateDeleteDuringSlowRemovalEndsOnceAndSparesNewerInstances) {
  Session a = create("alice");
  ASSERT_TRUE(a.gpu_uuid.has_value());
  slow_.arm(a.container_id);
  auto first = std::async(std::launch::async, [&] { return sessions_->stop(a.id, "deleted"); });
  slow_.waitEntered();

  // The duplicate DELETE: answered with the session as it stands, nothing done.
  auto dup = sessions_->stop(a.id, "deleted");
  ASSERT_TRUE(dup.ok()) << dup.error().message;
  EXPECT_EQ(dup->status, SessionStatus::kStopping);

  // Newer users get slices meanwhile (NVML reuses freed GI ids and placements).
  Session b = create("bob");
  Session c = create("carol");
  ASSERT_TRUE(b.gpu_uuid && c.gpu_uuid);

  slow_.release();
  auto ended = first.get();
  ASSERT_TRUE(ended.ok()) << ended.error().message;
  EXPECT_EQ(ended->status, SessionStatus::kEnded);
  EXPECT_EQ(slow_.removals(), 1) << "the end path ran more than once";

  auto live = migUuids();
  EXPECT_FALSE(live.count(*a.gpu_uuid)) << "alice's instance was not destroyed";
  EXPECT_TRUE(live.count(*b.gpu_uuid)) << "bob's instance was destroyed by alice's stop";
  EXPECT_TRUE(live.count(*c.gpu_uuid)) << "carol's instance was destroyed by alice's stop";
  EXPECT_EQ(sessions_->get(b.id)->status, SessionStatus::kRunning);
  ASSERT_TRUE(sessions_->reconcile(SessionManager::ReconcileMode::kPeriodic).ok());
  EXPECT_EQ(sessions_->get(b.id)->status, SessionStatus::kRunning) << "bob ended with 'GPU slice gone'";
  EXPECT_EQ(sessions_->get(c.id)->status, SessionStatus::kRunning);
}

TEST_F(SessionEndRace, PeriodicReconcileOverlappingASlowRemovalLeavesItToTheStop) {
  Session a = create("alice");
  slow_.arm(a.container_id);
  auto first = std::async(std::launch::async, [&] { return sessions_->stop(a.id, "deleted"); });
  slow_.waitEntered();
  ASSERT_TRUE(sessions_->reconcile(SessionManager::ReconcileMode::kPeriodic).ok());
  EXPECT_EQ(sessions_->get(a.id)->status, SessionStatus::kStopping);
  Session b = create("bob");
  slow_.release();
  ASSERT_TRUE(first.get().ok());
  EXPECT_EQ(slow_.removals(), 1) << "reconcile ran the end path of a session being stopped";
  EXPECT_EQ(sessions_->reconcileRepairs().at("interrupted_stop"), 0u);
  EXPECT_TRUE(migUuids().count(*b.gpu_uuid));
  EXPECT_FALSE(migUuids().count(*a.gpu_uuid));
}

TEST_F(SessionEndRace, RetriedReleaseNeverDestroysTheInstanceNowHoldingItsIdAndPlacement) {
  Session a = create("alice");
  ASSERT_TRUE(a.gpu && a.gpu->created);
  Session stale = a;  // what a late or retried release still holds
  ASSERT_TRUE(sessions_->stop(a.id, "deleted").ok());
  Session b = create("bob");
  ASSERT_TRUE(b.gpu && b.gpu_uuid);
  // The scenario needs NVML to have reused both: check the fixture gives it.
  ASSERT_EQ(b.gpu->gpu_instance_id, a.gpu->gpu_instance_id);
  ASSERT_EQ(b.gpu->placement_start, a.gpu->placement_start);
  ASSERT_NE(*b.gpu_uuid, *a.gpu_uuid);

  ASSERT_TRUE(gpus_.release(stale).ok());
  EXPECT_TRUE(stale.gpu->released) << "alice's instance is gone: nothing left to retry";
  EXPECT_TRUE(migUuids().count(*b.gpu_uuid)) << "a retried release destroyed bob's instance";
  // The backend refuses too, whoever asks.
  MigInstance owned;
  owned.uuid = *a.gpu_uuid;
  owned.gpu_instance_id = a.gpu->gpu_instance_id;
  owned.placement_start = a.gpu->placement_start;
  owned.profile_id = a.gpu->profile_id;
  auto st = backend_->destroyOwnedInstance(a.gpu->gpu_index, owned);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(migUuids().count(*b.gpu_uuid));
}

TEST_F(SessionEndRace, ReleaseAfterACrashBeforeTheUuidWasRecordedFindsItByPlacement) {
  Session a = create("alice");
  // As if the daemon died between NVML's create and the store write.
  Session unrecorded = a;
  unrecorded.gpu_uuid.reset();
  unrecorded.gpu->gpu_instance_id = -1;
  unrecorded.status = SessionStatus::kStopping;  // still holds its placement
  ASSERT_TRUE(gpus_.release(unrecorded).ok());
  EXPECT_FALSE(migUuids().count(*a.gpu_uuid));
  ASSERT_TRUE(sessions_->stop(a.id, "deleted").ok()) << "its instance is gone already: still ends";
  // Once ended, a placement proves nothing: never destroyed by placement.
  Session b = create("bob");
  ASSERT_EQ(b.gpu->placement_start, a.gpu->placement_start);
  Session ended = unrecorded;
  ended.status = SessionStatus::kEnded;
  ended.gpu->released = false;
  ASSERT_TRUE(gpus_.release(ended).ok());
  EXPECT_TRUE(migUuids().count(*b.gpu_uuid));
}

}  // namespace
}  // namespace sandman
