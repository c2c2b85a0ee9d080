// Disk rules: DiskAlmostFull per file system (after its 5 minutes, not at the
// threshold, and while NVML fails too), WorkspaceOverQuota at 100% of the
// quota, and the disk series of /metrics with user names only where allowed.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "alerts/alert_engine.h"
#include "store/sqlite_store.h"
#include "support/manual_clock.h"
#include "telemetry/metrics_exporter.h"
#include "workspace/quota_notice.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;
using testing::ManualClock;

const AlertRule& builtin(const std::string& name) {
  static const std::vector<AlertRule> rules = defaultAlertRules();
  for (const auto& r : rules) {
    if (r.name == name) return r;
  }
  ADD_FAILURE() << "no built-in rule " << name;
  return rules.front();
}

class DiskAlertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-disk-alerts-XXXXXX";
    dir_ = mkdtemp(tmpl);
    sessions_store_ = SqliteStore::open(dir_ + "/sandman.db").value();
    store_ = AlertStore::open(dir_ + "/sandman.db").value();
    engine_ = std::make_unique<AlertEngine>(
        std::vector<AlertRule>{builtin("DiskAlmostFull"), builtin("WorkspaceOverQuota")}, *store_, clock_, nullptr,
        AlertEngineOptions{"node1"});
    ASSERT_TRUE(engine_->restore().ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The state file system with `avail` of 1000 bytes free, a workspace file
  // system with 500 of 1000, and alice's workspace holding `alice` bytes of a
  // 100-byte quota.
  TelemetrySnapshot snap(uint64_t avail, uint64_t alice = 10, bool backend_ok = true) {
    TelemetrySnapshot s;
    s.taken_at = clock_.now();
    s.backend_ok = backend_ok;
    s.disk.filesystems = {{"state", "/var/lib/sandman", 1000, avail}, {"workspace", "/srv/ws", 1000, 500}};
    s.disk.workspaces = {{"alice", alice, 100, false}, {"bob", 5, 100, false}};
    return s;
  }
  std::vector<Alert> active() { return engine_->list(AlertFilter::kActive, 100).value(); }

  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<SqliteStore> sessions_store_;
  std::unique_ptr<AlertStore> store_;
  std::unique_ptr<AlertEngine> engine_;
};

TEST_F(DiskAlertsTest, DiskAlmostFullFiresAfterFiveMinutesBelowTenPercentOnThatFileSystemOnly) {
  engine_->evaluate(snap(99));
  ASSERT_EQ(active().size(), 1u);
  EXPECT_EQ(active()[0].state, AlertState::kPending);
  clock_.advance(4min + 59s);
  engine_->evaluate(snap(90));
  EXPECT_EQ(active()[0].state, AlertState::kPending);
  clock_.advance(1s);
  engine_->evaluate(snap(90));
  auto a = active();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].state, AlertState::kFiring);
  EXPECT_EQ(a[0].labels.at("filesystem"), "state");
  EXPECT_EQ(a[0].summary, "state file system (/var/lib/sandman) on node1 has 9% free, below 10% for 5m");
}

TEST_F(DiskAlertsTest, ExactlyTenPercentFreeIsNotAlmostFullAndFreeingResolves) {
  engine_->evaluate(snap(100));
  EXPECT_TRUE(active().empty());
  engine_->evaluate(snap(50));
  clock_.advance(5min);
  engine_->evaluate(snap(50));
  ASSERT_EQ(active().size(), 1u);
  engine_->evaluate(snap(400));
  EXPECT_TRUE(active().empty());
  auto resolved = engine_->list(AlertFilter::kResolved, 10).value();
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].rule, "DiskAlmostFull");
}

TEST_F(DiskAlertsTest, DiskRulesStillEvaluateWhileTheGpuBackendFails) {
  engine_->evaluate(snap(50, 10, /*backend_ok=*/false));
  clock_.advance(5min);
  engine_->evaluate(snap(50, 10, false));
  auto a = active();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].state, AlertState::kFiring);
}

TEST_F(DiskAlertsTest, WorkspaceOverQuotaFiresAtOnceAtOneHundredPercentForThatUser) {
  engine_->evaluate(snap(500, 99));
  EXPECT_TRUE(active().empty());
  engine_->evaluate(snap(500, 130));
  auto a = active();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].rule, "WorkspaceOverQuota");
  EXPECT_EQ(a[0].state, AlertState::kFiring);
  EXPECT_EQ(a[0].labels.at("user_id"), "alice");
  EXPECT_EQ(a[0].summary, "workspace of alice holds 130% of its quota");
  engine_->evaluate(snap(500, 60));
  EXPECT_TRUE(active().empty());
}

std::vector<std::string> samples(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0) out.push_back(line);
  }
  return out;
}

MetricsInputs diskInputs(bool user_labels) {
  auto s = std::make_shared<TelemetrySnapshot>();
  s->disk.filesystems = {{"state+workspace", "/var/lib/sandman", 4096, 1024}};
  s->disk.workspaces = {{"alice", 300, 200, true}, {"bob", 100, 200, true}};
  MetricsInputs in;
  in.snapshot = s;
  in.user_labels = user_labels;
  return in;
}

TEST(DiskMetrics, FileSystemsAndTotalsAlwaysPerUserOnlyWithUserLabels) {
  const std::string with = renderMetrics(diskInputs(true), {});
  EXPECT_EQ(samples(with, "sandman_filesystem_avail_bytes"),
            std::vector<std::string>{
                "sandman_filesystem_avail_bytes{filesystem=\"state+workspace\",path=\"/var/lib/sandman\"} 1024"});
  EXPECT_EQ(samples(with, "sandman_filesystem_size_bytes").size(), 1u);
  EXPECT_EQ(samples(with, "sandman_workspaces_used_bytes"), std::vector<std::string>{"sandman_workspaces_used_bytes 400"});
  EXPECT_EQ(samples(with, "sandman_workspaces_over_quota"), std::vector<std::string>{"sandman_workspaces_over_quota 1"});
  EXPECT_EQ(samples(with, "sandman_workspace_bytes"),
            (std::vector<std::string>{"sandman_workspace_bytes{user_id=\"alice\"} 300",
                                      "sandman_workspace_bytes{user_id=\"bob\"} 100"}));

  const std::string without = renderMetrics(diskInputs(false), {});
  EXPECT_TRUE(samples(without, "sandman_workspace_bytes").empty());
  EXPECT_EQ(without.find("alice"), std::string::npos);
  EXPECT_EQ(samples(without, "sandman_workspaces_used_bytes"),
            std::vector<std::string>{"sandman_workspaces_used_bytes 400"});
}

TEST(QuotaBanner, SaysWhatTheUserMustKnowAndNothingOtherwise) {
  WorkspaceUsage u{"alice", 3u << 20, true, {}, "walk"};
  EXPECT_EQ(quotaBanner(0, false, u), "");
  EXPECT_EQ(quotaBanner(10u << 20, true, u), "");
  EXPECT_EQ(quotaBanner(2u << 20, true, u),
            "Sandman: /workspace holds 3 MiB and has reached its 2 MiB quota: writes there fail until you delete files.\n");
  EXPECT_NE(quotaBanner(2u << 20, false, u).find("over its 2 MiB quota (not enforced on this host)"), std::string::npos);
  EXPECT_EQ(quotaBanner(10u << 20, false, std::nullopt),
            "Sandman: /workspace has a 10 MiB quota that this host cannot enforce; please stay under it.\n");
}

TEST(ErrorKinds, NoSpaceIsA507) {
  EXPECT_EQ(httpStatus(ErrorKind::kNoSpace), 507);
  EXPECT_STREQ(errorCode(ErrorKind::kNoSpace), "insufficient_storage");
}

}  // namespace
}  // namespace sandman
