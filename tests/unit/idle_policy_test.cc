// The idle policy under a manual clock: exact warning and stop times, what
// counts as busy (GPU processes, utilisation, recent SSH traffic), and
// automatic extension capped by --ttl-max. Docker is the recording runtime;
// the store is real SQLite in a temp dir.
#include "policy/idle_policy.h"

#include <gtest/gtest.h>

#include "support/session_harness.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;

// What the gateway would report: settable traffic, and the lines sent to shells.
class ScriptedActivity final : public SessionActivity {
 public:
  std::map<std::string, SessionTraffic> traffic() override { return traffic_; }
  void notify(const std::string& session_id, const std::string& line) override {
    lines.push_back(session_id + ": " + line);
  }
  std::map<std::string, SessionTraffic> traffic_;
  std::vector<std::string> lines;
};

class IdlePolicyTest : public testing::SessionHarness {
 protected:
  void configure(SessionSettings& settings) override {
    settings.ports = {29410, 29419};  // below the ephemeral range, as in SessionHarness
    settings.ttl_max = 120min;
    options_.stop_after = 60min;
    options_.warning = 10min;
    options_.utilization_threshold = 5;
    options_.traffic_window = 10min;
    options_.ttl_max = settings.ttl_max;
  }

  IdlePolicy& policy() {
    if (!policy_) policy_ = std::make_unique<IdlePolicy>(options_, *sessions_, *store_, &activity_, clock_);
    return *policy_;
  }
  Session create(const std::string& user, Millis ttl = 100min) { return SessionHarness::create(user, ttl); }
  // A snapshot where `holder` holds one MIG instance with these readings.
  TelemetrySnapshot snapshot(const std::string& holder = "", int processes = 0,
                             std::optional<double> util = std::nullopt) {
    TelemetrySnapshot snap;
    snap.taken_at = clock_.now();
    DeviceReading mig;
    mig.uuid = "MIG-00000000-0000-0000-0000-000000000001";
    mig.is_mig = true;
    mig.session_id = holder;
    mig.compute_processes = processes;
    mig.utilization_pct = util;
    snap.instances.push_back(mig);
    return snap;
  }
  // Advances in 1-minute samples, evaluating an idle snapshot at each.
  void idleFor(Millis d) {
    for (Millis t{0}; t < d; t += 1min) {
      clock_.advance(1min);
      policy().evaluate(snapshot());
    }
  }
  SessionStatus status(const Session& s) { return store_->getSession(s.id).value().status; }
  std::vector<std::string> eventKinds(const Session& s) {
    std::vector<std::string> out;
    auto events = store_->listSessionEvents(s.id);  // kept alive: the loop below reads into it
    for (const auto& e : events.value()) out.push_back(e.kind);
    return out;
  }

  IdlePolicyOptions options_;
  ScriptedActivity activity_;
  std::unique_ptr<IdlePolicy> policy_;
};

TEST_F(IdlePolicyTest, IdleSessionIsWarnedThenStoppedAtExactlyTheConfiguredTimes) {
  Session s = create("alice");
  policy().evaluate(snapshot());  // idle from its start
  idleFor(49min);
  EXPECT_TRUE(activity_.lines.empty()) << "warned before stop_after - warning";
  idleFor(1min);  // 50 min idle: warning
  ASSERT_EQ(activity_.lines.size(), 1u);
  EXPECT_NE(activity_.lines[0].find("will be stopped in 10 min"), std::string::npos) << activity_.lines[0];
  idleFor(9min);
  EXPECT_EQ(status(s), SessionStatus::kRunning) << "stopped before 60 min idle";
  idleFor(1min);
  auto ended = store_->getSession(s.id).value();
  EXPECT_EQ(ended.status, SessionStatus::kEnded);
  EXPECT_NE(ended.end_reason.find("idle for 60 min"), std::string::npos) << ended.end_reason;
  EXPECT_EQ(eventKinds(s), (std::vector<std::string>{"idle_warning", "idle_stop"}));
  EXPECT_EQ(policy().decisions().at("idle_stop"), 1u);
  EXPECT_EQ(runtime_.count(), 0u) << "the container goes";
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/ws/alice")) << "the workspace stays";
}

TEST_F(IdlePolicyTest, GpuProcessesOrUtilisationKeepASessionBusy) {
  Session s = create("bob");
  for (int i = 0; i < 90; ++i) {
    clock_.advance(1min);
    // Alternate the two signals: each alone is enough.
    policy().evaluate(i % 2 ? snapshot(s.id, 1, 0.0) : snapshot(s.id, 0, 40.0));
  }
  EXPECT_EQ(status(s), SessionStatus::kRunning);
  EXPECT_TRUE(eventKinds(s).empty());
}

TEST_F(IdlePolicyTest, UtilisationAtTheThresholdIsIdle) {
  Session s = create("carol");
  for (int i = 0; i < 61; ++i) {
    clock_.advance(1min);
    policy().evaluate(snapshot(s.id, 0, 5.0));
  }
  EXPECT_EQ(status(s), SessionStatus::kEnded);
}

TEST_F(IdlePolicyTest, OnlyRecentTrafficOnAnOpenConnectionCountsAsBusy) {
  Session s = create("dave");
  for (int i = 0; i < 90; ++i) {
    clock_.advance(1min);
    activity_.traffic_[s.id] = {1, clock_.now() - 2min};  // typing in a shell
    policy().evaluate(snapshot());
  }
  EXPECT_EQ(status(s), SessionStatus::kRunning);
  // The user walks away with the connection open: the last byte ages past the window.
  const TimePoint last = clock_.now();
  activity_.traffic_[s.id] = {1, last};
  idleFor(10min);
  EXPECT_TRUE(eventKinds(s).empty()) << "traffic within the window is still busy";
  idleFor(61min);
  EXPECT_EQ(status(s), SessionStatus::kEnded);
  // Idle started when the traffic left the window, not at the last byte.
  auto events = store_->listSessionEvents(s.id).value();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].at, last + 10min + 1min + 60min);
}

TEST_F(IdlePolicyTest, ASessionOnANodeWhoseAgentIsMissingIsNeverStoppedOnTheGap) {
  Session s = create("nina", 120min);
  policy().evaluate(snapshot());
  idleFor(40min);
  // The node's agent goes missing for an hour (idle throughout, it would be
  // stopped at 60 min): nothing is known, nothing is decided.
  for (int i = 0; i < 60; ++i) {
    clock_.advance(1min);
    TelemetrySnapshot gap;
    gap.taken_at = clock_.now();
    gap.cluster = true;
    gap.unobserved_sessions = {s.id};
    policy().evaluate(gap);
  }
  EXPECT_EQ(status(s), SessionStatus::kRunning);
  EXPECT_TRUE(eventKinds(s).empty());
  // Seen again and idle: the idle clock starts over at the first sample that sees it.
  idleFor(50min);
  EXPECT_TRUE(eventKinds(s).empty());
  idleFor(1min);
  EXPECT_EQ(eventKinds(s), (std::vector<std::string>{"idle_warning"}));
  idleFor(10min);
  EXPECT_EQ(status(s), SessionStatus::kEnded);
}

TEST_F(IdlePolicyTest, ActivityAfterTheWarningCancelsTheStop) {
  Session s = create("erin", 120min);
  idleFor(55min);
  ASSERT_EQ(eventKinds(s), std::vector<std::string>{"idle_warning"});
  clock_.advance(1min);
  policy().evaluate(snapshot(s.id, 1));
  EXPECT_EQ(eventKinds(s), (std::vector<std::string>{"idle_warning", "busy_again"}));
  // The idle clock restarts at the first idle sample after the busy one (minute 57).
  idleFor(60min);  // minute 116: idle for 59
  EXPECT_EQ(status(s), SessionStatus::kRunning) << store_->getSession(s.id)->end_reason;
  idleFor(1min);
  EXPECT_EQ(status(s), SessionStatus::kEnded);
}

TEST_F(IdlePolicyTest, NoStopWhenTheSampleFailed) {
  Session s = create("frank");
  TelemetrySnapshot broken;
  broken.backend_ok = false;
  for (int i = 0; i < 120; ++i) {
    clock_.advance(1min);
    policy().evaluate(broken);
  }
  EXPECT_EQ(status(s), SessionStatus::kRunning);
}

TEST_F(IdlePolicyTest, BusySessionsAreExtendedInStepsButNeverPastTtlMax) {
  options_.stop_after = Millis(0);
  options_.auto_extend = true;
  options_.extend_step = 30min;
  options_.extend_before = 10min;
  Session s = create("grace", 30min);
  const TimePoint created = s.created_at;
  auto busyFor = [&](Millis d) {
    for (Millis t{0}; t < d; t += 1min) {
      clock_.advance(1min);
      policy().evaluate(snapshot(s.id, 1));
    }
  };
  busyFor(19min);
  EXPECT_EQ(store_->getSession(s.id)->expires_at, created + 30min) << "extended too early";
  busyFor(1min);  // 10 min left
  EXPECT_EQ(store_->getSession(s.id)->expires_at, created + 60min);
  busyFor(90min);  // 120 min: at --ttl-max
  auto got = store_->getSession(s.id).value();
  EXPECT_EQ(got.status, SessionStatus::kRunning);
  EXPECT_EQ(got.expires_at, created + 120min) << "never past created_at + ttl_max";
  auto kinds = eventKinds(s);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "auto_extend"), 3);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "auto_extend_limit"), 1);
}

TEST_F(IdlePolicyTest, IdleSessionsAreNotExtended) {
  options_.stop_after = Millis(0);
  options_.auto_extend = true;
  Session s = create("heidi", 30min);
  idleFor(25min);
  EXPECT_EQ(store_->getSession(s.id)->expires_at, s.created_at + 30min);
  EXPECT_TRUE(eventKinds(s).empty());
}

}  // namespace
}  // namespace sandman
