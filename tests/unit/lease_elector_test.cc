// LeaseElector's rules against an in-memory Lease with the API server's
// optimistic concurrency (resourceVersion), on manual clocks: who creates,
// who waits, when a takeover is allowed (by the follower's own clock), what
// a failed renewal does, and how a release hands over at once.
#include <gtest/gtest.h>

#include <optional>

#include "runtime/lease_elector.h"
#include "support/manual_clock.h"

namespace sandman {
namespace {

using json = nlohmann::json;
using testing::ManualClock;
using std::chrono::seconds;

// One Lease, as the API server keeps it: a create of an existing one is 409,
// an update with a stale resourceVersion is 409.
struct FakeLeases {
  std::optional<json> lease;
  int64_t rv = 0;
  bool down = false;  // transport errors
  int creates = 0, updates = 0, conflicts = 0;
  std::function<void()> before_update;  // another writer slipping in

  LeaseApi api() {
    LeaseApi a;
    a.get = [this](const std::string&) -> Result<KubeResponse> {
      if (down) return unavailable("connection refused");
      if (!lease) return KubeResponse{404, {{"reason", "NotFound"}}};
      return KubeResponse{200, *lease};
    };
    a.create = [this](const std::string&, const json& obj) -> Result<KubeResponse> {
      if (down) return unavailable("connection refused");
      if (lease) return KubeResponse{409, {{"reason", "AlreadyExists"}}};
      ++creates;
      return KubeResponse{201, store(obj)};
    };
    a.replace = [this](const std::string&, const json& obj) -> Result<KubeResponse> {
      if (down) return unavailable("connection refused");
      if (before_update) std::exchange(before_update, nullptr)();
      if (!lease || obj["metadata"].value("resourceVersion", "") != (*lease)["metadata"]["resourceVersion"]) {
        ++conflicts;
        return KubeResponse{409, {{"reason", "Conflict"}}};
      }
      ++updates;
      return KubeResponse{200, store(obj)};
    };
    return a;
  }
  json store(json obj) {
    obj["metadata"]["resourceVersion"] = std::to_string(++rv);
    lease = obj;
    return obj;
  }
  std::string holder() const { return lease ? (*lease)["spec"].value("holderIdentity", "") : ""; }
  int64_t transitions() const { return lease ? (*lease)["spec"].value("leaseTransitions", int64_t{0}) : -1; }
};

LeaseElectorOptions opts(const std::string& id) {
  LeaseElectorOptions o;
  o.identity = id;
  o.annotations = {{"sandman.io/api", id + ":8080"}};
  return o;
}

TEST(LeaseElectorTest, FirstCreatesTheLeaseAndLeads) {
  FakeLeases fake;
  ManualClock clock;
  LeaseElector a(fake.api(), opts("a"), clock);
  EXPECT_FALSE(a.isLeader());
  a.tick();
  EXPECT_TRUE(a.isLeader());
  EXPECT_EQ(a.term(), 1u);
  EXPECT_EQ(fake.creates, 1);
  EXPECT_EQ(fake.holder(), "a");
  EXPECT_EQ(fake.transitions(), 0);
  EXPECT_EQ((*fake.lease)["spec"]["leaseDurationSeconds"], 15);
  EXPECT_EQ((*fake.lease)["metadata"]["annotations"]["sandman.io/api"], "a:8080");
  // The MicroTime the API server wants.
  EXPECT_EQ((*fake.lease)["spec"]["renewTime"].get<std::string>().size(), std::string("2027-01-15T08:00:00.000000Z").size());
}

TEST(LeaseElectorTest, FollowerWaitsWhileTheLeaderRenews) {
  FakeLeases fake;
  ManualClock clock;
  LeaseElector a(fake.api(), opts("a"), clock), b(fake.api(), opts("b"), clock);
  a.tick();
  for (int i = 0; i < 60; ++i) {
    b.tick();
    clock.advance(seconds(2));
    a.tick();
  }
  EXPECT_TRUE(a.isLeader());
  EXPECT_FALSE(b.isLeader());
  EXPECT_EQ(b.term(), 0u);
  EXPECT_EQ(fake.holder(), "a");
  const LeaderView seen = b.leader();
  EXPECT_FALSE(seen.self);
  EXPECT_EQ(seen.holder, "a");
  EXPECT_EQ(seen.annotations.at("sandman.io/api"), "a:8080");
}

TEST(LeaseElectorTest, TakeoverOnlyAfterTheDurationSinceTheFollowerSawAChange) {
  FakeLeases fake;
  ManualClock clock;
  LeaseElector a(fake.api(), opts("a"), clock), b(fake.api(), opts("b"), clock);
  a.tick();
  clock.advance(seconds(1));
  b.tick();  // b sees a's renewal here: its 15 s start now
  // a dies. Just before 15 s on b's clock, b still waits.
  clock.advance(seconds(14) + Millis(999));
  b.tick();
  EXPECT_FALSE(b.isLeader());
  EXPECT_EQ(b.nextTick(), clock.now() + Millis(2));  // not a whole renew period late
  clock.advance(Millis(1));
  b.tick();
  EXPECT_TRUE(b.isLeader());
  EXPECT_EQ(b.term(), 1u);
  EXPECT_EQ(fake.holder(), "b");
  EXPECT_EQ(fake.transitions(), 1);  // incremented on a takeover, not on renewals
  clock.advance(seconds(2));
  b.tick();
  EXPECT_EQ(fake.transitions(), 1);
  // The old leader, back from a pause, sees it lost and does not fight.
  a.tick();
  EXPECT_FALSE(a.isLeader());
  EXPECT_EQ(fake.holder(), "b");
}

TEST(LeaseElectorTest, FollowerTrustsItsOwnClockNotTheLeaders) {
  FakeLeases fake;
  // The leader's clock is an hour behind: its renewTime looks long expired to
  // anyone comparing timestamps; b must compare only changes.
  ManualClock leader_clock(TimePoint(seconds(1'800'000'000 - 3600)));
  ManualClock clock;
  LeaseElector a(fake.api(), opts("a"), leader_clock), b(fake.api(), opts("b"), clock);
  a.tick();
  for (int i = 0; i < 20; ++i) {
    b.tick();
    clock.advance(seconds(2));
    leader_clock.advance(seconds(2));
    a.tick();
  }
  EXPECT_FALSE(b.isLeader());
  EXPECT_EQ(fake.holder(), "a");
}

TEST(LeaseElectorTest, LeaderUnableToRenewStopsAtTheDeadline) {
  FakeLeases fake;
  ManualClock clock;
  LeaseElector a(fake.api(), opts("a"), clock);
  a.tick();
  fake.down = true;
  clock.advance(seconds(9));
  a.tick();
  EXPECT_TRUE(a.isLeader());
  // No round needed: the deadline alone ends leadership (a hung call cannot extend it).
  clock.advance(seconds(1));
  EXPECT_FALSE(a.isLeader());
  // The lease was never taken: once the API answers again, a renews it and leads in a new term.
  fake.down = false;
  a.tick();
  EXPECT_TRUE(a.isLeader());
  EXPECT_EQ(a.term(), 2u);
}

TEST(LeaseElectorTest, TwoTakingOverAtOnceOneWins) {
  FakeLeases fake;
  ManualClock clock;
  LeaseElector a(fake.api(), opts("a"), clock), b(fake.api(), opts("b"), clock), c(fake.api(), opts("c"), clock);
  a.tick();
  b.tick();
  c.tick();
  clock.advance(seconds(15));
  // c's takeover lands between b's read and b's update: b gets 409.
  fake.before_update = [&] { c.tick(); };
  b.tick();
  EXPECT_TRUE(c.isLeader());
  EXPECT_FALSE(b.isLeader());
  EXPECT_EQ(fake.conflicts, 1);
  EXPECT_EQ(fake.holder(), "c");
  EXPECT_EQ(fake.transitions(), 1);
}

TEST(LeaseElectorTest, ReleaseHandsOverAtOnce) {
  FakeLeases fake;
  ManualClock clock;
  LeaseElector a(fake.api(), opts("a"), clock), b(fake.api(), opts("b"), clock);
  a.tick();
  b.tick();
  a.stop(true);
  EXPECT_FALSE(a.isLeader());
  EXPECT_EQ(fake.holder(), "");
  EXPECT_FALSE((*fake.lease)["metadata"]["annotations"].contains("sandman.io/api"));
  b.tick();  // no 15 s wait
  EXPECT_TRUE(b.isLeader());
  EXPECT_EQ(fake.holder(), "b");
  EXPECT_EQ(fake.transitions(), 1);
}

TEST(LeaseElectorTest, CreateRaceLeavesOneLeader) {
  FakeLeases fake;
  ManualClock clock;
  LeaseElector a(fake.api(), opts("a"), clock);
  LeaseApi racing = fake.api();
  auto create = racing.create;
  // b reads 404, then a creates before b does: b's create is a 409.
  racing.create = [&](const std::string& path, const json& obj) {
    a.tick();
    return create(path, obj);
  };
  LeaseElector b2(racing, opts("b"), clock);
  b2.tick();
  EXPECT_TRUE(a.isLeader());
  EXPECT_FALSE(b2.isLeader());
  EXPECT_EQ(fake.creates, 1);
}

TEST(LeaseElectorTest, IdentityIsHostAndRandom) {
  const std::string id = leaseIdentity("node-1");
  EXPECT_EQ(id.rfind("node-1_", 0), 0u);
  EXPECT_EQ(id.size(), std::string("node-1_").size() + 16);
  EXPECT_NE(id, leaseIdentity("node-1"));
  EXPECT_EQ(formatMicroTime(TimePoint(std::chrono::microseconds(1'800'000'000'123'456))), "2027-01-15T08:00:00.123456Z");
}

}  // namespace
}  // namespace sandman
