// Two replicas over one shared engine (the recording runtime standing in for
// the cluster), each with its own store and keyring: the follower mirrors
// what the leader does, mutates nothing, and on takeover adopts what the old
// leader left before it opens mutations, so nothing is lost or doubled.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "core/replica_sync.h"
#include "support/session_harness.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;

class Replicas : public testing::SessionHarness {
 protected:
  void SetUp() override {
    runtime_.direct_ports = false;
    runtime_.schedules_gpus = true;
    SessionHarness::SetUp();
    // Replica a is the harness's SessionManager, leading; b has its own store.
    sessions_->setMutationGate([this]() -> Status { return a_leads_ ? Status() : unavailable("a: not the leader"); });
    b_store_ = SqliteStore::open(dir_ + "/b.db").value();
    b_files_ = std::make_unique<SshdFiles>(dir_ + "/b-session-files");
    b_keyring_ = std::make_unique<GatewayKeyring>(dir_ + "/b-gateway-keys");
    b_ = std::make_unique<SessionManager>(settings_, *b_store_, runtime_, *workspaces_, *b_files_, *b_keyring_, gpus_,
                                          clock_, [](const std::string&, int, Millis) { return Status(); });
    b_sync_ = std::make_unique<ReplicaSync>(*b_, [this] { return b_elected_; }, [this] { return b_term_; }, clock_);
    b_->setMutationGate([this]() -> Status {
      return b_sync_->mayMutate() ? Status() : unavailable("b: not the leader");
    });
  }
  std::vector<std::string> ids(SessionManager& m) {
    std::vector<std::string> out;
    auto active = m.active();
    if (!active.ok()) return {"error: " + active.error().message};
    const std::vector<Session> rows = active.value();
    for (const auto& s : rows) out.push_back(s.user_id + " " + s.id + " " + toString(s.status));
    std::sort(out.begin(), out.end());
    return out;
  }

  bool a_leads_ = true;
  bool b_elected_ = false;
  uint64_t b_term_ = 0;
  std::unique_ptr<SqliteStore> b_store_;
  std::unique_ptr<SshdFiles> b_files_;
  std::unique_ptr<GatewayKeyring> b_keyring_;
  std::unique_ptr<SessionManager> b_;
  std::unique_ptr<ReplicaSync> b_sync_;
};

TEST_F(Replicas, TheFollowerMirrorsTheLeadersSessions) {
  Session alice = create("alice");
  Session bob = create("bob");
  b_sync_->round();
  EXPECT_EQ(ids(*b_), ids(*sessions_));
  Session mirrored = b_->get(alice.id).value();
  EXPECT_EQ(mirrored.status, SessionStatus::kRunning);
  EXPECT_EQ(mirrored.container_id, alice.container_id);
  EXPECT_EQ(mirrored.expires_at, alice.expires_at);
  EXPECT_EQ(mirrored.created_at, alice.created_at);
  EXPECT_EQ(mirrored.user_public_key, alice.user_public_key);
  EXPECT_EQ(mirrored.host_public_key, alice.host_public_key);
  EXPECT_EQ(b_keyring_->get(alice.id).value(), keyring_->get(alice.id).value()) << "the gateway key, for b's gateway";
  EXPECT_EQ(b_store_->getUser("alice")->uid, store_->getUser("alice")->uid) << "the uid the pod runs as";

  // A TTL change on the leader is recorded on the workload and reaches b.
  Session extended = sessions_->setTtl(alice.id, 300min).value();
  b_sync_->round();
  EXPECT_EQ(b_->get(alice.id)->expires_at, extended.expires_at);

  // The leader ends bob: b ends its copy (store and keyring only).
  ASSERT_TRUE(sessions_->stop(bob.id, "deleted").ok());
  const size_t removals = runtime_.calls.size();
  b_sync_->round();
  EXPECT_EQ(b_->get(bob.id)->status, SessionStatus::kEnded);
  EXPECT_FALSE(b_keyring_->get(bob.id).ok());
  EXPECT_EQ(runtime_.calls.size(), removals) << "the follower touched the engine";
}

TEST_F(Replicas, TheFollowerMutatesNothing) {
  Session alice = create("alice");
  b_sync_->round();
  EXPECT_FALSE(b_sync_->mayMutate());
  auto made = b_->create({"carol", 10min, std::nullopt, std::nullopt, {}});
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().kind, ErrorKind::kUnavailable);
  EXPECT_FALSE(b_->stop(alice.id, "deleted").ok());
  EXPECT_FALSE(b_->setTtl(alice.id, 5min).ok());
  // Workloads b does not know (the leader's, made since b's last sync) are not orphans to b.
  Session bob = create("bob");
  EXPECT_TRUE(b_->reconcile().ok());
  EXPECT_EQ(runtime_.count(), 2u);
  clock_.advance(11min);
  EXPECT_EQ(b_->reapExpired(clock_.now()), 0);
  EXPECT_FALSE(b_->nextExpiry()) << "a follower's reaper would spin on expiries it may not reap";
  EXPECT_EQ(runtime_.count(), 2u);
  (void)bob;
}

TEST_F(Replicas, ANewLeaderAdoptsWhatTheOldOneLeftBeforeItMutates) {
  Session alice = create("alice");
  b_sync_->round();
  // Made after b's last mirror round, then the leader dies.
  Session bob = create("bob");
  Session extended = sessions_->setTtl(alice.id, 200min).value();
  // A create that died half-way: the workload exists, its gateway key does not.
  runtime_.containers["c-half"] = testing::RecordingRuntime::planted("c-half", "s-00000000000000ff", true, "Pending");
  SessionWorkload half;
  half.session_id = "s-00000000000000ff";
  half.user_id = "erin";
  half.created_at = clock_.now();
  half.expires_at = clock_.now() + 10min;
  half.user_public_key = "ssh-ed25519 AAAA erin";
  half.host_public_key = "ssh-ed25519 AAAA host";
  runtime_.workloads["c-half"] = half;
  a_leads_ = false;

  b_elected_ = true;
  b_term_ = 1;
  b_sync_->round();
  EXPECT_TRUE(b_sync_->mayMutate());
  EXPECT_EQ(b_sync_->takeovers(), 1u);
  EXPECT_EQ(ids(*b_), (std::vector<std::string>{"alice " + alice.id + " running", "bob " + bob.id + " running"}));
  EXPECT_EQ(b_->get(alice.id)->expires_at, extended.expires_at);
  EXPECT_FALSE(runtime_.containers.count("c-half")) << "the half-made workload is removed by the takeover's reconcile";
  EXPECT_EQ(runtime_.count(), 2u);

  // Not doubled: alice already has her session on the new leader too.
  auto again = b_->create({"alice", 10min, std::nullopt, std::nullopt, {}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind, ErrorKind::kConflict);
  auto carol = b_->create({"carol", 10min, std::nullopt, std::nullopt, {}});
  ASSERT_TRUE(carol.ok()) << carol.error().message;

  // Leadership lost (renewals failed): mutations close at once.
  b_elected_ = false;
  EXPECT_FALSE(b_sync_->mayMutate());
  EXPECT_FALSE(b_->stop(carol->session.id, "deleted").ok());
  // Regained in a new term: open only after another sync.
  b_elected_ = true;
  b_term_ = 2;
  EXPECT_FALSE(b_sync_->mayMutate());
  b_sync_->round();
  EXPECT_TRUE(b_sync_->mayMutate());
}

TEST_F(Replicas, TheLeaderRecordsItsExpiryWhereTheWorkloadsDiffers) {
  Session alice = create("alice");
  // The annotation write failed at the TTL change (the engine's copy is stale).
  runtime_.workloads[alice.container_id].expires_at = alice.expires_at - 5min;
  auto synced = sessions_->syncFromCluster(true);
  ASSERT_TRUE(synced.ok());
  EXPECT_EQ(synced->expiries, 1);
  EXPECT_EQ(runtime_.workloads[alice.container_id].expires_at, alice.expires_at);
  EXPECT_EQ(sessions_->get(alice.id)->expires_at, alice.expires_at) << "the leader's store decides";
}

}  // namespace
}  // namespace sandman
