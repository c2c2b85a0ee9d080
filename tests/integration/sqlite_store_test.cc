// SqliteStore against a real SQLite file in a private temp dir.
#include "store/sqlite_store.h"

#include <gtest/gtest.h>

#include <optional>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "common/time_format.h"

namespace sandman {
namespace {

namespace fs = std::filesystem;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/state/sandman.db";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  SqliteStorePtr openStore() {
    auto r = SqliteStore::open(path_);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(r).value() : nullptr;
  }

  static Session makeSession(const std::string& id, const std::string& user, int port,
                             int64_t created_ms, SessionStatus status = SessionStatus::kStarting) {
    Session s;
    s.id = id;
    s.user_id = user;
    s.status = status;
    s.image = "sandman-session:test";
    s.ssh_port = port;
    s.user_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUser " + user;
    s.host_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost";
    s.created_at = fromUnixMillis(created_ms);
    s.expires_at = fromUnixMillis(created_ms + 3600 * 1000);
    if (!isActive(status)) {
      s.ended_at = fromUnixMillis(created_ms + 1000);
      s.end_reason = "deleted";
    }
    return s;
  }

  static Status insert(Store& store, const Session& s) {
    return store.transaction([&](StoreTx& tx) { return tx.insertSession(s); });
  }

  std::string dir_;
  std::string path_;
};

void expectSameSession(const Session& a, const Session& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.image, b.image);
  EXPECT_EQ(a.container_id, b.container_id);
  EXPECT_EQ(a.ssh_port, b.ssh_port);
  EXPECT_EQ(a.user_public_key, b.user_public_key);
  EXPECT_EQ(a.host_public_key, b.host_public_key);
  EXPECT_EQ(a.gpu_uuid, b.gpu_uuid);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.ended_at, b.ended_at);
  EXPECT_EQ(a.end_reason, b.end_reason);
}

std::vector<std::string> ids(const std::vector<Session>& sessions) {
  std::vector<std::string> out;
  for (const auto& s : sessions) out.push_back(s.id);
  return out;
}

TEST_F(SqliteStoreTest, CreatesPrivateDirectoryAndFile) {
  auto store = openStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->schemaVersion(), 13);
  struct stat sb {};
  ASSERT_EQ(stat((dir_ + "/state").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(path_.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  ASSERT_TRUE(insert(*store, makeSession("s-1", "alice", 10001, 1000)).ok());
  ASSERT_EQ(stat((path_ + "-wal").c_str(), &sb), 0);  // WAL mode is on
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  EXPECT_TRUE(store->ping().ok());
}

TEST_F(SqliteStoreTest, InsertGetRoundTripsEveryField) {
  auto store = openStore();
  ASSERT_TRUE(store);
  Session with_gpu = makeSession("s-00000000000000a1", "alice", 10001, 1700000000123);
  with_gpu.gpu_uuid = "MIG-1c2d3e4f-0000-5555-aaaa-bbbbccccdddd";
  with_gpu.container_id = "c0ffee";
  Session ended = makeSession("s-00000000000000a2", "bob", 10002, 1700000000456,
                              SessionStatus::kEnded);
  ASSERT_TRUE(insert(*store, with_gpu).ok());
  ASSERT_TRUE(insert(*store, ended).ok());

  auto got = store->getSession(with_gpu.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  expectSameSession(*got, with_gpu);
  EXPECT_FALSE(got->ended_at.has_value());
  auto got_ended = store->getSession(ended.id);
  ASSERT_TRUE(got_ended.ok());
  expectSameSession(*got_ended, ended);
  EXPECT_FALSE(got_ended->gpu_uuid.has_value());
}

TEST_F(SqliteStoreTest, UnknownSessionIsNotFound) {
  auto store = openStore();
  ASSERT_TRUE(store);
  auto got = store->getSession("s-nope");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(got.error().message, "no session s-nope");
  Status upd = store->updateSession(makeSession("s-nope", "alice", 10001, 1));
  ASSERT_FALSE(upd.ok());
  EXPECT_EQ(upd.error().kind, ErrorKind::kNotFound);
  auto user = store->getUser("nobody");
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.error().kind, ErrorKind::kNotFound);
}

TEST_F(SqliteStoreTest, ListsNewestFirstWithFilters) {
  auto store = openStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(insert(*store, makeSession("s-a", "alice", 10001, 1000, SessionStatus::kEnded)).ok());
  ASSERT_TRUE(insert(*store, makeSession("s-b", "alice", 10002, 3000)).ok());
  ASSERT_TRUE(insert(*store, makeSession("s-c", "bob", 10003, 2000, SessionStatus::kRunning)).ok());
  // Same created_at as s-c: ties are broken by id, descending too (the
  // (created_at, id) index read backwards, which keyset paging relies on).
  ASSERT_TRUE(insert(*store, makeSession("s-d", "carol", 10004, 2000, SessionStatus::kFailed)).ok());

  auto all = store->listSessions({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(ids(*all), (std::vector<std::string>{"s-b", "s-d", "s-c", "s-a"}));

  auto alice = store->listSessions({.user_id = "alice", .status = std::nullopt});
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(ids(*alice), (std::vector<std::string>{"s-b", "s-a"}));

  auto ended = store->listSessions({.user_id = std::nullopt, .status = SessionStatus::kEnded});
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ids(*ended), (std::vector<std::string>{"s-a"}));

  auto both = store->listSessions({.user_id = "alice", .status = SessionStatus::kStarting});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(ids(*both), (std::vector<std::string>{"s-b"}));

  // A value that looks like SQL is just a value.
  auto odd = store->listSessions({.user_id = "x' OR '1'='1", .status = std::nullopt});
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->empty());

  auto active = store->activeSessions();
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(ids(*active), (std::vector<std::string>{"s-c", "s-b"}));  // oldest first

  std::set<int> ports;
  ASSERT_TRUE(store->transaction([&](StoreTx& tx) {
                     auto p = tx.activePorts();
                     if (!p.ok()) return p.status();
                     ports = *p;
                     return Status();
                   }).ok());
  EXPECT_EQ(ports, (std::set<int>{10002, 10003}));
}

TEST_F(SqliteStoreTest, APortIsHeldByOneActiveSessionButSessionsWithoutOneDoNotCollide) {
  auto store = openStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(insert(*store, makeSession("s-p1", "alice", 10001, 1000)).ok());
  Status taken = insert(*store, makeSession("s-p2", "bob", 10001, 1001));
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().kind, ErrorKind::kConflict);
  // Kubernetes sessions are reached through the gateway only: no direct port.
  ASSERT_TRUE(insert(*store, makeSession("s-k1", "carol", 0, 1002)).ok());
  ASSERT_TRUE(insert(*store, makeSession("s-k2", "dave", 0, 1003)).ok());
}

TEST_F(SqliteStoreTest, UpdateOverwritesMutableFields) {
  auto store = openStore();
  ASSERT_TRUE(store);
  Session s = makeSession("s-u", "alice", 10001, 5000);
  s.gpu_uuid = "GPU-11111111-2222-3333-4444-555555555555";
  ASSERT_TRUE(insert(*store, s).ok());

  s.status = SessionStatus::kRunning;
  s.container_id = "abc123";
  s.expires_at = fromUnixMillis(999999);
  ASSERT_TRUE(store->updateSession(s).ok());
  auto running = store->getSession(s.id);
  ASSERT_TRUE(running.ok());
  expectSameSession(*running, s);

  s.status = SessionStatus::kEnded;
  s.ended_at = fromUnixMillis(123456789);
  s.end_reason = "expired";
  ASSERT_TRUE(store->updateSession(s).ok());
  auto ended = store->getSession(s.id);
  ASSERT_TRUE(ended.ok());
  expectSameSession(*ended, s);
  ASSERT_TRUE(ended->ended_at.has_value());
  EXPECT_EQ(toUnixMillis(*ended->ended_at), 123456789);
  EXPECT_EQ(ended->gpu_uuid, s.gpu_uuid);  // kept for billing history
}

TEST_F(SqliteStoreTest, FailedTransactionLeavesNothing) {
  auto store = openStore();
  ASSERT_TRUE(store);
  Status st = store->transaction([&](StoreTx& tx) {
    auto user = tx.ensureUser("alice");
    if (!user.ok()) return user.status();
    if (Status ins = tx.insertSession(makeSession("s-r", "alice", 10001, 1)); !ins.ok()) return ins;
    return Status(invalid("changed my mind"));
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(st.error().message, "changed my mind");
  EXPECT_EQ(store->getSession("s-r").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(store->getUser("alice").error().kind, ErrorKind::kNotFound);

  EXPECT_THROW(store->transaction([&](StoreTx& tx) -> Status {
    (void)tx.insertSession(makeSession("s-t", "alice", 10001, 1));
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_EQ(store->getSession("s-t").error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(insert(*store, makeSession("s-ok", "alice", 10001, 1)).ok());  // not wedged
}

TEST_F(SqliteStoreTest, ReenteringTheStoreInsideATransactionFailsInsteadOfDeadlocking) {
  auto store = openStore();
  ASSERT_TRUE(store);
  Status st = store->transaction([&](StoreTx&) { return store->ping(); });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kInternal);
  EXPECT_TRUE(store->ping().ok());
}

TEST_F(SqliteStoreTest, DatabaseRefusesSecondActiveSessionForUser) {
  auto store = openStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(insert(*store, makeSession("s-old", "alice", 10001, 1, SessionStatus::kEnded)).ok());
  ASSERT_TRUE(insert(*store, makeSession("s-1", "alice", 10002, 2)).ok());
  // Inserted directly, without asking activeSessionForUser first.
  Status st = insert(*store, makeSession("s-2", "alice", 10003, 3, SessionStatus::kPending));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kConflict);
  EXPECT_NE(st.error().message.find("alice"), std::string::npos) << st.error().message;
  EXPECT_EQ(store->getSession("s-2").error().kind, ErrorKind::kNotFound);

  // Ended and failed sessions do not count.
  ASSERT_TRUE(insert(*store, makeSession("s-f", "alice", 10004, 4, SessionStatus::kFailed)).ok());
  // Re-activating an ended session next to an active one is refused too.
  auto old = store->getSession("s-old");
  ASSERT_TRUE(old.ok());
  Session revived = *old;
  revived.status = SessionStatus::kRunning;
  revived.ended_at.reset();
  Status upd = store->updateSession(revived);
  ASSERT_FALSE(upd.ok());
  EXPECT_EQ(upd.error().kind, ErrorKind::kConflict);

  // Once the active one ends, a new one fits.
  auto first = store->getSession("s-1");
  ASSERT_TRUE(first.ok());
  Session done = *first;
  done.status = SessionStatus::kEnded;
  done.ended_at = fromUnixMillis(10);
  ASSERT_TRUE(store->updateSession(done).ok());
  EXPECT_TRUE(insert(*store, makeSession("s-3", "alice", 10005, 5)).ok());
}

TEST_F(SqliteStoreTest, DatabaseRefusesSecondActiveSessionOnPort) {
  auto store = openStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(insert(*store, makeSession("s-e", "carol", 10001, 1, SessionStatus::kEnded)).ok());
  ASSERT_TRUE(insert(*store, makeSession("s-1", "alice", 10001, 2, SessionStatus::kRunning)).ok());
  Status st = insert(*store, makeSession("s-2", "bob", 10001, 3, SessionStatus::kStopping));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kConflict);
  EXPECT_NE(st.error().message.find("10001"), std::string::npos) << st.error().message;
  EXPECT_TRUE(insert(*store, makeSession("s-3", "bob", 10002, 3)).ok());
}

TEST_F(SqliteStoreTest, GpuSlotRoundTripsAndADeviceIsHeldOnce) {
  auto store = openStore();
  ASSERT_TRUE(store);
  Session a = makeSession("s-g1", "alice", 10001, 1, SessionStatus::kRunning);
  a.gpu_uuid = "MIG-11111111-2222-5333-8444-555555555555";
  a.gpu = GpuSlot{2, "GPU-abc", "1g.10gb", 19, 6, 1, 13, false, true, false, "env-only", ""};
  ASSERT_TRUE(insert(*store, a).ok());
  auto got = store->getSession("s-g1");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->gpu);
  EXPECT_EQ(got->gpu->gpu_index, 2);
  EXPECT_EQ(got->gpu->profile, "1g.10gb");
  EXPECT_EQ(got->gpu->placement_start, 6);
  EXPECT_EQ(got->gpu->gpu_instance_id, 13);
  EXPECT_TRUE(got->gpu->created);
  EXPECT_EQ(got->gpu->attach, "env-only");

  Session b = makeSession("s-g2", "bob", 10002, 2, SessionStatus::kStarting);
  b.gpu_uuid = a.gpu_uuid;
  Status st = insert(*store, b);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kConflict);
  EXPECT_NE(st.error().message.find("held by another active session"), std::string::npos) << st.error().message;

  a.status = SessionStatus::kEnded;
  a.gpu->released = true;
  ASSERT_TRUE(store->updateSession(a).ok());
  EXPECT_TRUE(store->getSession("s-g1")->gpu->released);
  EXPECT_TRUE(insert(*store, b).ok()) << "an ended session holds nothing";
}

TEST_F(SqliteStoreTest, UserKeysAreKeptOncePerFingerprint) {
  auto store = openStore();
  ASSERT_TRUE(store);
  UserKey k{0, "alice", "ssh-ed25519 AAAAkey alice@laptop", "SHA256:abc", fromUnixMillis(1000)};
  auto a = store->addUserKey(k);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_GT(a->id, 0);
  auto again = store->addUserKey(k);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, a->id) << "the same key twice is one entry";
  ASSERT_TRUE(store->addUserKey({0, "alice", "ssh-ed25519 AAAAother", "SHA256:def", fromUnixMillis(2000)}).ok());
  ASSERT_TRUE(store->addUserKey({0, "bob", "ssh-ed25519 AAAAkey", "SHA256:abc", fromUnixMillis(3000)}).ok());
  EXPECT_EQ(store->listUserKeys("alice")->size(), 2u);
  EXPECT_EQ(store->deleteUserKey("bob", a->id).error().kind, ErrorKind::kNotFound) << "not bob's key";
  ASSERT_TRUE(store->deleteUserKey("alice", a->id).ok());
  auto left = store->listUserKeys("alice").value();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].fingerprint, "SHA256:def");
}

TEST_F(SqliteStoreTest, ConnectionsAreRecordedAndFinished) {
  auto store = openStore();
  ASSERT_TRUE(store);
  ConnectionRecord c;
  c.user_id = "alice";
  c.session_id = "s-0000000000000001";
  c.source = "127.0.0.1:5555";
  c.outcome = "login";
  c.started_at = fromUnixMillis(1000);
  auto id = store->insertConnection(c);
  ASSERT_TRUE(id.ok());
  c.id = id.value();
  c.outcome = "closed";
  c.reason = "client disconnected";
  c.ended_at = fromUnixMillis(4000);
  c.bytes_in = 123;
  c.bytes_out = 4567;
  ASSERT_TRUE(store->finishConnection(c).ok());
  ConnectionRecord refused{0, "mallory", "", "10.0.0.9:1", "refused", "bad key", fromUnixMillis(5000), fromUnixMillis(5000), 0, 0};
  ASSERT_TRUE(store->insertConnection(refused).ok());
  auto list = store->listConnections("s-0000000000000001").value();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].outcome, "closed");
  EXPECT_EQ(list[0].bytes_out, 4567u);
  EXPECT_EQ(list[0].ended_at, fromUnixMillis(4000));
  c.id = 999;
  EXPECT_EQ(store->finishConnection(c).error().kind, ErrorKind::kNotFound);
}

// --connection-retention: records that ended before the cut-off go, in
// batches of at most `limit`; newer ones and ones still open stay.
TEST_F(SqliteStoreTest, OldConnectionRecordsArePrunedInBatches) {
  auto store = openStore();
  ASSERT_TRUE(store);
  auto add = [&](int64_t started_ms, std::optional<int64_t> ended_ms) {
    ConnectionRecord c{0, "alice", "s-1", "10.0.0.1:1", "closed", "", fromUnixMillis(started_ms), std::nullopt, 0, 0};
    if (ended_ms) c.ended_at = fromUnixMillis(*ended_ms);
    ASSERT_TRUE(store->insertConnection(c).ok());
  };
  for (int i = 0; i < 7; ++i) add(1000 + i, 2000 + i);  // old and ended
  add(1500, 9000);                                        // started old, ended after the cut-off
  add(1600, std::nullopt);                                // never ended, started before
  add(8000, 8500);                                        // new
  const TimePoint cutoff = fromUnixMillis(5000);
  auto first = store->pruneConnections(cutoff, 3);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(*first, 3);
  auto second = store->pruneConnections(cutoff, 3);
  EXPECT_EQ(second.value(), 3);
  auto third = store->pruneConnections(cutoff, 3);
  EXPECT_EQ(third.value(), 2);  // the last old one, and the one never ended
  EXPECT_EQ(store->pruneConnections(cutoff, 3).value(), 0);
  auto left = store->listConnections("s-1").value();
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].started_at, fromUnixMillis(8000));
  EXPECT_EQ(left[1].started_at, fromUnixMillis(1500));
}

TEST_F(SqliteStoreTest, DuplicateSessionIdIsConflict) {
  auto store = openStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(insert(*store, makeSession("s-1", "alice", 10001, 1, SessionStatus::kEnded)).ok());
  Status st = insert(*store, makeSession("s-1", "bob", 10002, 2));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kConflict);
}

TEST_F(SqliteStoreTest, EnsureUserAssignsStableDistinctUids) {
  auto store = openStore();
  ASSERT_TRUE(store);
  auto ensure = [&](const std::string& user) {
    UserAccount out;
    Status st = store->transaction([&](StoreTx& tx) {
      auto u = tx.ensureUser(user);
      if (!u.ok()) return u.status();
      out = *u;
      return Status();
    });
    EXPECT_TRUE(st.ok());
    return out;
  };
  UserAccount alice = ensure("alice");
  UserAccount bob = ensure("bob");
  EXPECT_EQ(alice.uid, SqliteStore::kFirstUid);
  EXPECT_EQ(alice.gid, alice.uid);
  EXPECT_EQ(bob.uid, SqliteStore::kFirstUid + 1);
  EXPECT_EQ(bob.gid, bob.uid);
  EXPECT_EQ(ensure("alice").uid, alice.uid);
  auto got = store->getUser("bob");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->uid, bob.uid);
  EXPECT_EQ(got->user_id, "bob");
}

TEST_F(SqliteStoreTest, DataSurvivesReopen) {
  Session s = makeSession("s-p", "alice", 10001, 42, SessionStatus::kRunning);
  s.gpu_uuid = "GPU-1";
  int uid = 0;
  {
    auto store = openStore();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->transaction([&](StoreTx& tx) {
                       auto u = tx.ensureUser("alice");
                       if (!u.ok()) return u.status();
                       uid = u->uid;
                       return tx.insertSession(s);
                     }).ok());
  }
  auto store = openStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->schemaVersion(), 13);
  auto got = store->getSession("s-p");
  ASSERT_TRUE(got.ok());
  expectSameSession(*got, s);
  auto user = store->getUser("alice");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->uid, uid);
  // The constraint survives too.
  EXPECT_EQ(insert(*store, makeSession("s-q", "alice", 10002, 43)).error().kind,
            ErrorKind::kConflict);
}

TEST_F(SqliteStoreTest, ConcurrentCheckThenInsertLetsExactlyOneWin) {
  auto store = openStore();
  ASSERT_TRUE(store);
  constexpr int kThreads = 8;
  std::atomic<int> ok{0}, conflicts{0}, other{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      Status st = store->transaction([&](StoreTx& tx) -> Status {
        auto active = tx.activeSessionForUser("alice");
        if (!active.ok()) return active.status();
        if (active->has_value()) return conflict("alice already has a session");
        auto user = tx.ensureUser("alice");
        if (!user.ok()) return user.status();
        return tx.insertSession(makeSession("s-" + std::to_string(i), "alice", 10000 + i, i));
      });
      if (st.ok()) {
        ++ok;
      } else if (st.error().kind == ErrorKind::kConflict) {
        ++conflicts;
      } else {
        ++other;
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflicts.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  auto alice = store->listSessions({.user_id = "alice", .status = std::nullopt});
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->size(), 1u);
}

TEST_F(SqliteStoreTest, TwoStoresOnOneFileStillAllowOneActiveSession) {
  // Two daemons by mistake on one file: the database, not the mutex, decides.
  auto a = openStore();
  auto b = openStore();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(insert(*a, makeSession("s-1", "alice", 10001, 1)).ok());
  Status st = insert(*b, makeSession("s-2", "alice", 10002, 2));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kConflict);
}

TEST_F(SqliteStoreTest, UnusablePathIsUnavailableAndNamesIt) {
  std::string file = dir_ + "/plainfile";
  std::ofstream(file) << "not a directory";
  std::string bad = file + "/sub/sandman.db";
  auto r = SqliteStore::open(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find(file), std::string::npos) << r.error().message;
}

TEST_F(SqliteStoreTest, DirectoryAsDatabaseIsUnavailable) {
  fs::create_directories(path_);
  auto r = SqliteStore::open(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find(path_), std::string::npos) << r.error().message;
}

TEST_F(SqliteStoreTest, FileThatIsNotADatabaseIsUnavailable) {
  fs::create_directories(dir_ + "/state");
  std::ofstream(path_) << std::string(4096, 'x');
  auto r = SqliteStore::open(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find(path_), std::string::npos) << r.error().message;
}

TEST_F(SqliteStoreTest, SchemaFromTheFutureIsRefused) {
  { ASSERT_TRUE(openStore()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_version (version, applied_at) VALUES (99, 0)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto r = SqliteStore::open(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("99"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace sandman
