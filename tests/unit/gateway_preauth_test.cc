// PreauthLimits and the gateway's user-name check, under a manual clock.
#include <gtest/gtest.h>

#include <mutex>

#include "gateway/connection_journal.h"
#include "gateway/connection_limits.h"
#include "gateway/preauth_limits.h"
#include "gateway/refusal_log.h"
#include "gateway/user_name.h"
#include "support/manual_clock.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;

GatewayOptions limitsOptions() {
  GatewayOptions o;
  o.max_unauth_per_source = 2;
  o.block_after_failures = 3;
  o.block_for = 60s;
  return o;
}

TEST(GatewayUserName, AcceptsOnlyLowercaseUnixNames) {
  EXPECT_TRUE(isValidGatewayUser("alice"));
  EXPECT_TRUE(isValidGatewayUser("_svc-1"));
  EXPECT_TRUE(isValidGatewayUser(std::string(32, 'a')));
  EXPECT_FALSE(isValidGatewayUser(std::string(33, 'a')));
  EXPECT_FALSE(isValidGatewayUser(""));
  EXPECT_FALSE(isValidGatewayUser("1alice"));
  EXPECT_FALSE(isValidGatewayUser("-alice"));
  EXPECT_FALSE(isValidGatewayUser("Alice"));
  EXPECT_FALSE(isValidGatewayUser("al.ice"));
  EXPECT_FALSE(isValidGatewayUser("../etc"));
  EXPECT_FALSE(isValidGatewayUser(std::string("al\0ice", 6)));
}

TEST(GatewayPreauthLimits, UnauthenticatedConnectionsAreCappedPerSource) {
  testing::ManualClock clock;
  GatewayOptions o = limitsOptions();
  PreauthLimits limits(o, clock);
  std::string why;
  EXPECT_TRUE(limits.admit("10.0.0.1", &why));
  EXPECT_TRUE(limits.admit("10.0.0.1", &why));
  EXPECT_FALSE(limits.admit("10.0.0.1", &why));
  EXPECT_NE(why.find("too many unauthenticated"), std::string::npos);
  EXPECT_TRUE(limits.admit("10.0.0.2", &why));  // other sources are not affected
  limits.authenticated("10.0.0.1");
  EXPECT_TRUE(limits.admit("10.0.0.1", &why));
  limits.closedUnauthenticated("10.0.0.1");
  limits.closedUnauthenticated("10.0.0.1");
  EXPECT_EQ(limits.unauthenticated("10.0.0.1"), 0);
}

TEST(GatewayPreauthLimits, RepeatedFailuresBlockSourceAndUserForAWhile) {
  testing::ManualClock clock;
  GatewayOptions o = limitsOptions();
  PreauthLimits limits(o, clock);
  EXPECT_FALSE(limits.recordFailure("10.0.0.1", "alice"));
  EXPECT_FALSE(limits.recordFailure("10.0.0.1", "alice"));
  EXPECT_TRUE(limits.recordFailure("10.0.0.1", "alice"));
  EXPECT_TRUE(limits.sourceBlocked("10.0.0.1"));
  EXPECT_TRUE(limits.userBlockedFrom("alice", "10.0.0.1"));
  EXPECT_FALSE(limits.userBlockedFrom("bob", "10.0.0.1"));
  std::string why;
  EXPECT_FALSE(limits.admit("10.0.0.1", &why));
  EXPECT_NE(why.find("blocked"), std::string::npos);
  clock.advance(61s);
  EXPECT_FALSE(limits.sourceBlocked("10.0.0.1"));
  EXPECT_FALSE(limits.userBlockedFrom("alice", "10.0.0.1"));
  EXPECT_TRUE(limits.admit("10.0.0.1", &why));
}

TEST(GatewayPreauthLimits, FailuresSpreadOverTimeDoNotBlock) {
  testing::ManualClock clock;
  GatewayOptions o = limitsOptions();
  PreauthLimits limits(o, clock);
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(limits.recordFailure("10.0.0.1", "")) << i;
    clock.advance(31s);  // two failures per 60 s window at most
    if (i % 2 == 1) clock.advance(30s);
  }
  EXPECT_FALSE(limits.sourceBlocked("10.0.0.1"));
}

// Issue 10: ten failures naming alice from one address blocked alice from
// everywhere. Now the name is blocked only from the address that failed.
TEST(GatewayPreauthLimits, FailuresNamingAUserFromOneAddressDoNotBlockHerElsewhere) {
  testing::ManualClock clock;
  GatewayOptions o = limitsOptions();
  PreauthLimits limits(o, clock);
  for (int i = 0; i < 10; ++i) (void)limits.recordFailure("10.6.6.6", "alice");
  EXPECT_TRUE(limits.sourceBlocked("10.6.6.6"));
  EXPECT_TRUE(limits.userBlockedFrom("alice", "10.6.6.6"));
  EXPECT_FALSE(limits.userBlockedFrom("alice", "10.0.0.1"));
  EXPECT_FALSE(limits.sourceBlocked("10.0.0.1"));
  std::string why;
  EXPECT_TRUE(limits.admit("10.0.0.1", &why));
}

TEST(GatewayConnectionLimits, CapsInAllPerSourceAndPerUser) {
  GatewayOptions o;
  o.max_connections = 5;
  o.max_connections_per_source = 3;
  o.max_connections_per_user = 2;
  ConnectionLimits caps(o);
  std::string why;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(caps.admit("10.0.0.1", &why)) << i;
  EXPECT_FALSE(caps.admit("10.0.0.1", &why));
  EXPECT_NE(why.find("from this source"), std::string::npos) << why;
  EXPECT_TRUE(caps.admit("10.0.0.2", &why));
  EXPECT_TRUE(caps.admit("10.0.0.3", &why));
  EXPECT_FALSE(caps.admit("10.0.0.4", &why));  // 5 open in all
  EXPECT_NE(why.find("cap"), std::string::npos) << why;
  caps.closed("10.0.0.1");
  EXPECT_EQ(caps.open(), 4);
  EXPECT_EQ(caps.openFrom("10.0.0.1"), 2);
  EXPECT_TRUE(caps.admit("10.0.0.4", &why));

  EXPECT_TRUE(caps.login("alice"));
  EXPECT_TRUE(caps.login("alice"));
  EXPECT_FALSE(caps.login("alice"));
  EXPECT_TRUE(caps.login("bob"));
  caps.loggedOut("alice");
  EXPECT_EQ(caps.loggedIn("alice"), 1);
  EXPECT_TRUE(caps.login("alice"));
}

// Records what reaches the "store", and answers prunes in batches.
class CountingDirectory final : public GatewayDirectory {
 public:
  Result<GatewayRoute> route(const std::string&) override { return notFound("none"); }
  Result<std::vector<std::string>> authorizedKeys(const std::string&) override { return std::vector<std::string>{}; }
  Result<int64_t> connectionStarted(const ConnectionRecord& c) override {
    std::lock_guard<std::mutex> lock(mu);
    started.push_back(c);
    return static_cast<int64_t>(started.size());
  }
  Status connectionEnded(int64_t id, const ConnectionRecord&) override {
    std::lock_guard<std::mutex> lock(mu);
    ended.push_back(id);
    return Status();
  }
  Result<int64_t> pruneConnections(TimePoint before, int limit) override {
    std::lock_guard<std::mutex> lock(mu);
    prune_cutoffs.push_back(before);
    int64_t n = std::min<int64_t>(limit, prunable);
    prunable -= n;
    return n;
  }
  std::mutex mu;
  std::vector<ConnectionRecord> started;
  std::vector<int64_t> ended;
  std::vector<TimePoint> prune_cutoffs;
  int64_t prunable = 0;
};

TEST(GatewayRefusalLog, AFloodIsCountedButRecordedAndLoggedOnlyBySample) {
  testing::ManualClock clock;
  CountingDirectory dir;
  ConnectionJournal journal(dir, clock, {});
  std::map<std::string, uint64_t> totals;
  RefusalLog log({5, std::chrono::minutes(1)}, clock, journal, totals);
  ConnectionRecord rec;
  rec.source = "10.0.0.9:1234";
  rec.outcome = "refused";
  for (int i = 0; i < 1000; ++i) log.refused("limit", rec);
  journal.flush();
  EXPECT_EQ(totals["limit"], 1000u);
  EXPECT_EQ(dir.started.size(), 5u);
  EXPECT_EQ(dir.ended.size(), 5u);
  EXPECT_EQ(log.suppressedRecords(), 995u);
  EXPECT_EQ(log.suppressedLines(), 995u);
  clock.advance(61s);  // a new interval: a few more get through
  for (int i = 0; i < 10; ++i) log.refused("auth_failed", rec);
  journal.flush();
  EXPECT_EQ(totals["auth_failed"], 10u);
  EXPECT_EQ(dir.started.size(), 10u);
}

TEST(GatewayConnectionJournal, LoginRecordsAreWrittenOffTheCallerAndPairedByHandle) {
  testing::ManualClock clock;
  CountingDirectory dir;
  ConnectionJournal journal(dir, clock, {});
  journal.start();
  ConnectionRecord rec;
  rec.user_id = "alice";
  uint64_t a = journal.started(rec);
  uint64_t b = journal.started(rec);
  journal.ended(b, rec);
  journal.ended(a, rec);
  journal.flush();
  journal.stop();
  EXPECT_EQ(dir.started.size(), 2u);
  ASSERT_EQ(dir.ended.size(), 2u);
  EXPECT_EQ(dir.ended[0], 2);  // b's store id
  EXPECT_EQ(dir.ended[1], 1);
  EXPECT_EQ(journal.stats().written, 4u);
}

TEST(GatewayConnectionJournal, PrunesOlderThanTheRetentionInSmallBatches) {
  testing::ManualClock clock;
  CountingDirectory dir;
  dir.prunable = 1234;
  ConnectionJournalOptions o;
  o.retention = std::chrono::hours(24 * 30);
  o.prune_batch = 500;
  ConnectionJournal journal(dir, clock, o);
  auto n = journal.pruneNow();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1234);
  ASSERT_EQ(dir.prune_cutoffs.size(), 3u);  // 500, 500, 234
  EXPECT_EQ(dir.prune_cutoffs[0], clock.now() - std::chrono::hours(24 * 30));
  EXPECT_EQ(journal.stats().pruned, 1234u);
}

}  // namespace
}  // namespace sandman
