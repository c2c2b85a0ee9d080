// Lifecycle rules under a manual clock: reservation, expiry, failures,
// concurrent deletes and start-up reconciliation. Docker is replaced by a
// recording runtime; the store is real SQLite in a temp dir.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/reaper.h"
#include "core/session_manager.h"
#include "store/sqlite_store.h"
#include "support/session_harness.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;

using SessionLifecycle = testing::SessionHarness;

TEST_F(SessionLifecycle, CreateRunsAHardenedContainerWithTheUsersWorkspace) {
  auto r = sessions_->create({"alice", 30min, std::nullopt, std::nullopt, {}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Session& s = r->session;
  EXPECT_EQ(s.status, SessionStatus::kRunning);
  EXPECT_EQ(s.expires_at, clock_.now() + 30min);
  ASSERT_TRUE(r->ssh_private_key);
  EXPECT_NE(r->ssh_private_key->find("BEGIN OPENSSH PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(s.user_public_key.rfind("ssh-ed25519 ", 0), 0u);

  // What the runtime is asked to run (how Docker runs it: docker_create_body_test).
  const SessionWorkload& w = runtime_.workloads.at(s.container_id);
  auto account = store_->getUser("alice").value();
  EXPECT_EQ(w.uid, account.uid);
  EXPECT_EQ(w.gid, account.gid);
  EXPECT_NE(account.uid, 0);
  EXPECT_EQ(w.session_id, s.id);
  EXPECT_EQ(w.user_id, "alice");
  EXPECT_EQ(w.direct_port, s.ssh_port);
  EXPECT_EQ(w.workspace_dir, dir_ + "/ws/alice");
  EXPECT_EQ(w.sshd_files_dir, dir_ + "/session-files/" + s.id);
  EXPECT_EQ(w.expires_at, s.expires_at);
  struct stat st {};
  ASSERT_EQ(stat((dir_ + "/ws/alice/data").c_str(), &st), 0);
  EXPECT_EQ(static_cast<int>(st.st_uid), account.uid);
  ASSERT_EQ(stat((dir_ + "/session-files/" + s.id + "/ssh_host_ed25519_key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  // The gateway's key for this session: held by Sandman (0600, root), authorized inside.
  ASSERT_EQ(stat((dir_ + "/gateway-keys/" + s.id).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream keys(dir_ + "/session-files/" + s.id + "/authorized_keys");
  std::string line;
  int n = 0;
  while (std::getline(keys, line)) n += line.rfind("ssh-ed25519 ", 0) == 0;
  EXPECT_EQ(n, 2) << "the user's key and the gateway's";
}

TEST_F(SessionLifecycle, GivenPublicKeyIsAuthorizedAndNoPairIsGenerated) {
  auto pair = sessions_->create({"bob", 1min, std::nullopt, std::nullopt, {}});  // any valid key will do
  ASSERT_TRUE(pair.ok());
  std::string key = pair->session.user_public_key;
  ASSERT_TRUE(sessions_->stop(pair->session.id, "deleted").ok());
  auto r = sessions_->create({"bob", 1min, std::nullopt, key, {}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->ssh_private_key);
  EXPECT_EQ(r->session.user_public_key, key);
}

TEST_F(SessionLifecycle, SecondActiveSessionForAUserIsAConflictNamingTheFirst) {
  Session first = create("alice");
  auto second = sessions_->create({"alice", 10min, std::nullopt, std::nullopt, {}});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, ErrorKind::kConflict);
  EXPECT_NE(second.error().message.find(first.id), std::string::npos);
  EXPECT_EQ(runtime_.count(), 1u);
}

TEST_F(SessionLifecycle, InvalidInputChangesNothing) {
  for (auto bad : {"../etc", "", "Alice", "a/b"}) {
    auto r = sessions_->create({bad, 10min, std::nullopt, std::nullopt, {}});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  }
  EXPECT_FALSE(sessions_->create({"alice", 2000min, std::nullopt, std::nullopt, {}}).ok());
  EXPECT_FALSE(sessions_->create({"alice", 1min, "bad image!", std::nullopt, {}}).ok());
  EXPECT_FALSE(sessions_->create({"alice", 1min, std::nullopt, "not a key", {}}).ok());
  auto gpu = sessions_->create({"alice", 1min, std::nullopt, std::nullopt, {"1g.10gb", std::nullopt, std::nullopt}});
  ASSERT_FALSE(gpu.ok());
  EXPECT_EQ(gpu.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(gpu.error().message.find("no GPU backend configured"), std::string::npos);
  EXPECT_TRUE(sessions_->list({})->empty());
  EXPECT_TRUE(runtime_.calls.empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/ws"));
}

TEST_F(SessionLifecycle, ExpiresExactlyAtExpiresAt) {
  Session s = create("alice", 5s);
  EXPECT_EQ(sessions_->nextExpiry(), s.expires_at);
  clock_.advance(4999ms);
  EXPECT_EQ(sessions_->reapExpired(clock_.now()), 0);
  clock_.advance(1ms);
  EXPECT_EQ(sessions_->reapExpired(clock_.now()), 1);
  auto after = sessions_->get(s.id).value();
  EXPECT_EQ(after.status, SessionStatus::kEnded);
  EXPECT_EQ(after.end_reason, "expired");
  EXPECT_EQ(after.ended_at, clock_.now());
  EXPECT_EQ(runtime_.count(), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/session-files/" + s.id));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/gateway-keys/" + s.id));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/ws/alice")) << "the workspace is kept";
  EXPECT_FALSE(sessions_->nextExpiry());
}

TEST_F(SessionLifecycle, NextExpiryIsTheEarliest) {
  create("alice", 10min);
  Session b = create("bob", 2min);
  create("carol", 5min);
  EXPECT_EQ(sessions_->nextExpiry(), b.expires_at);
}

TEST_F(SessionLifecycle, SetTtlExtendsAndShortensWithinBounds) {
  Session s = create("alice", 10min);
  clock_.advance(1min);
  auto r = sessions_->setTtl(s.id, 60min);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->expires_at, clock_.now() + 60min);
  EXPECT_EQ(sessions_->setTtl(s.id, 1441min).error().kind, ErrorKind::kInvalid);
  ASSERT_TRUE(sessions_->setTtl(s.id, 1s).ok());
  clock_.advance(1s);
  EXPECT_EQ(sessions_->reapExpired(clock_.now()), 1);
  EXPECT_EQ(sessions_->setTtl(s.id, 5min).error().kind, ErrorKind::kConflict);
  EXPECT_EQ(sessions_->setTtl("s-0123456789abcdef", 5min).error().kind, ErrorKind::kNotFound);
}

TEST_F(SessionLifecycle, PortsAreNeverHandedOutTwiceAndComeBackAfterStop) {
  Session a = create("a");
  Session b = create("b");
  Session c = create("c");
  std::set<int> ports{a.ssh_port, b.ssh_port, c.ssh_port};
  EXPECT_EQ(ports.size(), 3u);
  auto full = sessions_->create({"d", 1min, std::nullopt, std::nullopt, {}});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().kind, ErrorKind::kConflict);
  EXPECT_NE(full.error().message.find("no free SSH port"), std::string::npos);
  ASSERT_TRUE(sessions_->stop(b.id, "deleted").ok());
  Session d = create("d");
  EXPECT_EQ(d.ssh_port, b.ssh_port);
}

TEST_F(SessionLifecycle, StartFailureFailsTheSessionAndReleasesEverything) {
  runtime_.fail_start = true;
  auto r = sessions_->create({"alice", 10min, std::nullopt, std::nullopt, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kConflict);
  auto list = sessions_->list({}).value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].status, SessionStatus::kFailed);
  EXPECT_NE(list[0].end_reason.find("start failed"), std::string::npos);
  EXPECT_EQ(runtime_.count(), 0u);
  runtime_.fail_start = false;
  create("alice");  // the user and the port are free again
}

TEST_F(SessionLifecycle, NeverReadyFailsAfterTheTimeout) {
  probe_ok_ = false;
  auto r = sessions_->create({"alice", 10min, std::nullopt, std::nullopt, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(sessions_->list({}).value()[0].status, SessionStatus::kFailed);
  EXPECT_EQ(runtime_.count(), 0u);
}

TEST_F(SessionLifecycle, DeleteWhileStartingWinsAndTheContainerIsRemoved) {
  std::atomic<bool> stopped{false};
  sessions_ = std::make_unique<SessionManager>(
      settings_, *store_, runtime_, *workspaces_, *files_, *keyring_, gpus_, clock_,
      [&](const std::string&, int, Millis) {
        if (!stopped.exchange(true)) {
          auto live = sessions_->list({"alice", SessionStatus::kStarting}).value();
          EXPECT_EQ(live.size(), 1u);
          EXPECT_TRUE(sessions_->stop(live[0].id, "deleted").ok());
        }
        return Status();
      });
  auto r = sessions_->create({"alice", 10min, std::nullopt, std::nullopt, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kConflict);
  auto s = sessions_->list({}).value()[0];
  EXPECT_EQ(s.status, SessionStatus::kEnded);
  EXPECT_EQ(s.end_reason, "deleted");
  EXPECT_EQ(runtime_.count(), 0u);
}

TEST_F(SessionLifecycle, DockerErrorOnStopKeepsStoppingUntilReconciled) {
  Session s = create("alice");
  runtime_.fail_remove = true;
  auto r = sessions_->stop(s.id, "deleted");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(sessions_->get(s.id)->status, SessionStatus::kStopping);
  EXPECT_FALSE(sessions_->create({"alice", 1min, std::nullopt, std::nullopt, {}}).ok()) << "still holds its slot";
  runtime_.fail_remove = false;
  ASSERT_TRUE(sessions_->reconcile().ok());
  EXPECT_EQ(sessions_->get(s.id)->status, SessionStatus::kEnded);
  EXPECT_EQ(runtime_.count(), 0u);
}

TEST_F(SessionLifecycle, ReconcileRepairsWhatACrashLeft) {
  Session alive = create("alice");
  Session gone = create("bob");
  Session expired = create("carol", 1min);
  // Behind Sandman's back: bob's container disappears; an orphan of ours and a
  // container of another daemon appear.
  runtime_.containers.erase(gone.container_id);
  runtime_.containers["orphan"] = testing::RecordingRuntime::planted("orphan", "s-00000000000000aa", true, "running");
  runtime_.others["other"] = testing::RecordingRuntime::planted("other", "s-00000000000000bb", true, "running");
  clock_.advance(2min);
  rebuild();  // a restarted daemon
  ASSERT_TRUE(sessions_->reconcile().ok());
  EXPECT_EQ(sessions_->get(alive.id)->status, SessionStatus::kRunning);
  auto b = sessions_->get(gone.id).value();
  EXPECT_EQ(b.status, SessionStatus::kEnded);
  EXPECT_EQ(b.end_reason, "container gone");
  EXPECT_EQ(sessions_->get(expired.id)->end_reason, "expired");
  EXPECT_FALSE(runtime_.containers.count("orphan"));
  EXPECT_TRUE(runtime_.others.count("other")) << "another daemon's container is not ours to remove";
  EXPECT_TRUE(runtime_.containers.count(alive.container_id));
}

TEST_F(SessionLifecycle, ReconcileSaysHowAStoppedContainerEnded) {
  // dockerd restarted without live-restore: the container is still there, exited.
  Session s = create("alice");
  auto& c = runtime_.containers[s.container_id];
  c.running = false;
  c.state = "exited";
  c.exit_code = 143;
  ASSERT_TRUE(sessions_->reconcile(SessionManager::ReconcileMode::kPeriodic).ok());
  auto ended = sessions_->get(s.id).value();
  EXPECT_EQ(ended.status, SessionStatus::kEnded);
  EXPECT_EQ(ended.end_reason, "container stopped outside Sandman (Docker state: exited, exit code 143)");
  EXPECT_FALSE(runtime_.containers.count(s.container_id)) << "the stopped container is removed with the session";
  EXPECT_TRUE(sessions_->create({"alice", 1min, std::nullopt, std::nullopt, {}}).ok()) << "its slot is free again";
}

TEST_F(SessionLifecycle, AnUnreachableDockerEndsNoSession) {
  Session s = create("alice");
  runtime_.fail_list = true;  // dockerd down: no answer at all, which says nothing about the container
  EXPECT_FALSE(sessions_->reconcile(SessionManager::ReconcileMode::kPeriodic).ok());
  EXPECT_EQ(sessions_->get(s.id)->status, SessionStatus::kRunning);
  runtime_.fail_list = false;
  ASSERT_TRUE(sessions_->reconcile(SessionManager::ReconcileMode::kPeriodic).ok());
  EXPECT_EQ(sessions_->get(s.id)->status, SessionStatus::kRunning);
}

TEST_F(SessionLifecycle, StartupReconcileFailsSessionsCaughtMidCreate) {
  // A daemon killed between reserve and ready leaves a `starting` row.
  Session s;
  s.id = "s-00000000000000cc";
  s.user_id = "dave";
  s.status = SessionStatus::kStarting;
  s.ssh_port = 29401;  // inside SessionHarness's range
  s.created_at = clock_.now();
  s.expires_at = clock_.now() + 10min;
  ASSERT_TRUE(store_->transaction([&](StoreTx& tx) { return tx.insertSession(s); }).ok());
  runtime_.containers["half"] = testing::RecordingRuntime::planted("half", s.id, false, "created");
  ASSERT_TRUE(sessions_->reconcile(SessionManager::ReconcileMode::kPeriodic).ok());
  EXPECT_EQ(sessions_->get(s.id)->status, SessionStatus::kStarting) << "a periodic check leaves creates alone";
  ASSERT_TRUE(sessions_->reconcile().ok());
  EXPECT_EQ(sessions_->get(s.id)->status, SessionStatus::kFailed);
  EXPECT_FALSE(runtime_.containers.count("half"));
}

TEST_F(SessionLifecycle, DeleteWhileStartingTellsTheCreator409WithTheReasonNotAStartError) {
  // sshd never answers, and the admin deletes the session while the create
  // waits for it: the creator hears why, not "image has no sshd" (503).
  std::atomic<bool> stopped{false};
  sessions_ = std::make_unique<SessionManager>(
      settings_, *store_, runtime_, *workspaces_, *files_, *keyring_, gpus_, clock_,
      [&](const std::string&, int, Millis) {
        if (!stopped.exchange(true)) {
          auto live = sessions_->list({"alice", SessionStatus::kStarting}).value();
          EXPECT_EQ(live.size(), 1u);
          EXPECT_TRUE(sessions_->stop(live[0].id, "deleted").ok());
        }
        return unavailable("connection refused");
      });
  // The readiness wait polls on the manual clock (auto-advancing sleeps).
  auto r = sessions_->create({"alice", 10min, std::nullopt, std::nullopt, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kConflict) << r.error().message;
  EXPECT_NE(r.error().message.find("deleted"), std::string::npos) << r.error().message;
  auto s = sessions_->list({}).value()[0];
  EXPECT_EQ(s.status, SessionStatus::kEnded);
  EXPECT_EQ(s.end_reason, "deleted");
}

TEST_F(SessionLifecycle, StoppingTwiceRunsTheEndPathOnce) {
  Session s = create("alice");
  int removals = 0;
  runtime_.on_remove = [&](const std::string& id) {
    if (id != s.container_id) return;
    ++removals;
    // A second DELETE lands while the first is inside `docker rm`.
    auto dup = sessions_->stop(s.id, "deleted");
    ASSERT_TRUE(dup.ok());
    EXPECT_EQ(dup->status, SessionStatus::kStopping);
    // And so does the periodic reconcile.
    ASSERT_TRUE(sessions_->reconcile(SessionManager::ReconcileMode::kPeriodic).ok());
  };
  auto r = sessions_->stop(s.id, "deleted");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, SessionStatus::kEnded);
  EXPECT_EQ(removals, 1);
  EXPECT_EQ(sessions_->reconcileRepairs().at("interrupted_stop"), 0u);
}

TEST_F(SessionLifecycle, AutoExtendIsACompareAndSetThatNeverUndoesAnAdminsChange) {
  Session s = create("alice", 10min);
  const TimePoint read_at = s.expires_at;  // what the idle policy computed from
  ASSERT_TRUE(sessions_->setTtl(s.id, 600min).ok());  // the admin extends meanwhile
  auto admin = sessions_->get(s.id)->expires_at;
  auto r = sessions_->extendIf(s.id, read_at, read_at + 30min);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kConflict);
  EXPECT_EQ(sessions_->get(s.id)->expires_at, admin);
  auto ok = sessions_->extendIf(s.id, admin, admin + 30min);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(sessions_->get(s.id)->expires_at, admin + 30min);
}

class ReaperPool : public testing::SessionHarness {
 protected:
  void configure(SessionSettings& s) override {
    s.ports = {40200, 40260};
    s.reap_workers = 3;
  }
};

TEST_F(ReaperPool, ManyExpiriesAtOnceUseABoundedPool) {
  for (char c = 'a'; c < 'a' + 12; ++c) create(std::string("user-") + c, 1min);
  std::mutex mu;
  int now_in = 0, most = 0;
  runtime_.on_remove = [&](const std::string&) {
    {
      std::lock_guard l(mu);
      most = std::max(most, ++now_in);
    }
    std::this_thread::sleep_for(5ms);  // a slow `docker rm`, so removals overlap
    std::lock_guard l(mu);
    --now_in;
  };
  clock_.advance(1min);
  EXPECT_EQ(sessions_->reapExpired(clock_.now()), 12);
  EXPECT_LE(most, 3);
  EXPECT_GE(most, 2) << "removals should overlap";
  auto all = sessions_->list({});
  ASSERT_TRUE(all.ok());
  for (const auto& s : all.value()) EXPECT_EQ(s.status, SessionStatus::kEnded);
}

TEST_F(ReaperPool, ReaperWakesOnTheManualClockWithoutSleepingTheTtl) {
  Session s = create("alice", 1h);
  Reaper reaper(*sessions_, clock_, 24h);
  sessions_->setScheduleListener([&] { reaper.wake(); });
  reaper.start();
  clock_.advance(59min);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(sessions_->get(s.id)->status, SessionStatus::kRunning);
  clock_.advance(1min);
  for (int i = 0; i < 500 && sessions_->get(s.id)->status != SessionStatus::kEnded; ++i) {
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(sessions_->get(s.id)->status, SessionStatus::kEnded);
  EXPECT_EQ(sessions_->get(s.id)->end_reason, "expired");
  reaper.stop();
}

}  // namespace
}  // namespace sandman
