// Sessions on an engine that schedules GPUs and has no direct ports
// (Kubernetes): no port is reserved, a GPU request becomes a resource and a
// model for the scheduler, the device is learned once the workload runs, and
// the engine's refusal reaches the caller as it said it.
#include <gtest/gtest.h>

#include "support/session_harness.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;

class ScheduledGpuSessions : public testing::SessionHarness {
 protected:
  void SetUp() override {
    runtime_.direct_ports = false;
    runtime_.schedules_gpus = true;
    SessionHarness::SetUp();
  }
  Result<CreatedSession> createGpu(const std::string& user, std::optional<std::string> profile,
                                   std::optional<std::string> product = std::nullopt,
                                   std::optional<std::string> instance = std::nullopt) {
    return sessions_->create({user, 10min, std::nullopt, std::nullopt, {profile, instance, product}});
  }
};

TEST_F(ScheduledGpuSessions, NoDirectPortIsReservedSoSessionsAreNotLimitedByTheRange) {
  // The harness's port range holds 3 ports; a fourth session still starts.
  for (auto u : {"a1", "a2", "a3", "a4"}) {
    Session s = create(u);
    EXPECT_EQ(s.status, SessionStatus::kRunning);
    EXPECT_EQ(s.ssh_port, 0);
    EXPECT_EQ(runtime_.workloads.at(s.container_id).direct_port, 0);
  }
}

TEST_F(ScheduledGpuSessions, AProfileBecomesTheDevicePluginResourceAndTheDeviceIsLearnedOnceRunning) {
  runtime_.assign_gpu = "MIG-5a1c";
  auto r = createGpu("alice", "1g.10gb", "NVIDIA-H100-80GB-HBM3");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const SessionWorkload& w = runtime_.workloads.at(r->session.container_id);
  EXPECT_EQ(w.gpu_resource, "nvidia.com/mig-1g.10gb");
  EXPECT_EQ(w.gpu_product, "NVIDIA-H100-80GB-HBM3");
  EXPECT_FALSE(w.gpu_uuid) << "the scheduler, not Sandman, picks the device";
  ASSERT_TRUE(r->session.gpu);
  EXPECT_EQ(r->session.gpu->profile, "1g.10gb");
  EXPECT_EQ(r->session.gpu->attach, "scheduler");
  EXPECT_EQ(r->session.gpu_uuid, "MIG-5a1c");
  EXPECT_EQ(sessions_->get(r->session.id)->gpu_uuid, "MIG-5a1c") << "recorded in the store";

  runtime_.assign_gpu = "GPU-77aa";
  auto whole = createGpu("bob", "whole");
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  EXPECT_EQ(runtime_.workloads.at(whole->session.container_id).gpu_resource, "nvidia.com/gpu");
}

TEST_F(ScheduledGpuSessions, RequestsTheSchedulerCannotServeAre400WithNothingLaunched) {
  for (auto [profile, product, instance] :
       {std::tuple<std::optional<std::string>, std::optional<std::string>, std::optional<std::string>>{
            "1g.10gb", std::nullopt, "MIG-x"},
        {"3g", std::nullopt, std::nullopt},
        {"1g.10gb; rm -rf /", std::nullopt, std::nullopt},
        {"1g.10gb", "bad product!", std::nullopt},
        {std::nullopt, "NVIDIA-H100-80GB-HBM3", std::nullopt}}) {
    auto r = createGpu("alice", profile, product, instance);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid) << r.error().message;
  }
  EXPECT_TRUE(runtime_.calls.empty());
  EXPECT_TRUE(sessions_->list({})->empty());
}

TEST_F(ScheduledGpuSessions, AWorkloadThatCannotBeScheduledFailsTheCreateWithTheEnginesWords) {
  probe_ok_ = false;  // it never answers: the engine's verdict must end the wait, not the timeout
  runtime_.on_launch = [](WorkloadInfo& w) {
    w.running = true;
    w.state = "Pending";
    w.problem = "no node has a free nvidia.com/mig-1g.10gb (scheduler: 0/2 nodes are available)";
    w.problem_kind = ErrorKind::kConflict;
  };
  auto r = createGpu("alice", "1g.10gb");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kConflict);
  EXPECT_NE(r.error().message.find("no node has a free nvidia.com/mig-1g.10gb"), std::string::npos)
      << r.error().message;
  auto list = sessions_->list({}).value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].status, SessionStatus::kFailed);
  EXPECT_EQ(runtime_.count(), 0u) << "the pod that could not be placed is removed";
}

using DockerSessions = testing::SessionHarness;

TEST_F(DockerSessions, GpuProductIsOnlyForTheScheduler) {
  // Without a scheduler, the model is a property of this host's GPUs.
  auto r = sessions_->create({"alice", 10min, std::nullopt, std::nullopt, {std::nullopt, std::nullopt, "X"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("Kubernetes"), std::string::npos);
}

}  // namespace
}  // namespace sandman
