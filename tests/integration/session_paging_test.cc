// Paged history and retention against a real SQLite file: keyset pages that
// stay put while rows are added, filters, limits, counts kept by triggers
// (checked against GROUP BY), batch pruning, and the migration on a store
// that already holds history.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/time_format.h"
#include "core/history_retention.h"
#include "store/sqlite_store.h"
#include "support/manual_clock.h"

namespace sandman {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kDay = 86'400'000;

class SessionPagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-paging-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/sandman.db";
    auto r = SqliteStore::open(path_);
    ASSERT_TRUE(r.ok()) << r.error().message;
    store_ = std::move(r).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // "u" + n, built by appends (g++ 12 warns falsely, -Wrestrict, on the operator+ form).
  static std::string name(const char* prefix, int n) {
    std::string out(prefix);
    out.append(std::to_string(n));
    return out;
  }

  // Session ids as the daemon makes them ("s-" + 16 hex digits), from n.
  static std::string sid(int n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "s-%016x", n);
    return buf;
  }

  Session make(int n, const std::string& user, int64_t created_ms, SessionStatus status) {
    Session s;
    s.id = sid(n);
    s.user_id = user;
    s.status = status;
    s.image = "sandman-workspace:test";
    s.ssh_port = 10000 + n;
    s.user_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUser";
    s.host_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost";
    s.created_at = fromUnixMillis(created_ms);
    s.expires_at = fromUnixMillis(created_ms + 3'600'000);
    if (!isActive(status)) {
      s.ended_at = fromUnixMillis(created_ms + 1000);
      s.end_reason = "deleted";
    }
    return s;
  }

  void insert(const Session& s) {
    ASSERT_TRUE(store_->transaction([&](StoreTx& tx) { return tx.insertSession(s); }).ok()) << s.id;
  }

  // Every page of `f` (limit `page`), as ListSessions callers walk them.
  std::vector<std::string> walk(SessionFilter f, size_t page, const std::function<void()>& between = {}) {
    std::vector<std::string> out;
    f.limit = page;
    for (int guard = 0; guard < 1000; ++guard) {
      auto rows = store_->listSessions(f);
      EXPECT_TRUE(rows.ok());
      if (!rows.ok() || rows->empty()) break;
      EXPECT_LE(rows->size(), page);
      for (const auto& s : *rows) out.push_back(s.id);
      if (rows->size() < page) break;
      f.after = SessionKey{rows->back().created_at, rows->back().id};
      if (between) between();
    }
    return out;
  }

  // Counts as a GROUP BY over the file sees them (the reference for the trigger-kept table).
  std::map<std::string, int64_t> groupBy() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    std::map<std::string, int64_t> out;
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT status, count(*) FROM sessions GROUP BY status", -1, &st, nullptr),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
      out[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  void exec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }

  std::string dir_;
  std::string path_;
  SqliteStorePtr store_;
};

TEST_F(SessionPagingTest, PagesWalkEveryRowOnceNewestFirstWhileRowsAreAdded) {
  // 23 sessions, some sharing a created_at (ties are broken by id).
  std::vector<std::string> expected;
  for (int i = 0; i < 23; ++i) insert(make(i, name("u", i), 1'000'000 + (i / 2) * 1000, SessionStatus::kEnded));
  auto all = store_->listSessions({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 23u);
  for (const auto& s : *all) expected.push_back(s.id);
  for (size_t i = 1; i < all->size(); ++i) {
    const Session& a = (*all)[i - 1];
    const Session& b = (*all)[i];
    EXPECT_TRUE(a.created_at > b.created_at || (a.created_at == b.created_at && a.id > b.id)) << a.id << " " << b.id;
  }
  // Between pages, newer sessions arrive (as they do while a client pages):
  // the walk neither repeats nor skips a row, and does not see the new ones.
  int next = 100;
  auto got = walk({}, 5, [&] { insert(make(next, name("late", next), 9'000'000 + next, SessionStatus::kEnded)); ++next; });
  EXPECT_EQ(got, expected);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), got.size());
}

TEST_F(SessionPagingTest, LimitIsHonouredAndALastPartialPageEnds) {
  for (int i = 0; i < 7; ++i) insert(make(i, name("u", i), 1000 + i, SessionStatus::kEnded));
  SessionFilter f;
  f.limit = 3;
  auto first = store_->listSessions(f);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ(first->front().id, sid(6));
  EXPECT_EQ(walk({}, 3).size(), 7u);
  EXPECT_EQ(walk({}, 7).size(), 7u);
  EXPECT_EQ(walk({}, 1000).size(), 7u);
}

TEST_F(SessionPagingTest, FiltersCombineWithPaging) {
  // alice: 6 ended and 1 running; bob: 4 failed and 1 starting; times interleaved.
  int n = 0;
  for (int i = 0; i < 6; ++i) insert(make(n++, "alice", 10'000 + i * 100, SessionStatus::kEnded));
  insert(make(n++, "alice", 20'000, SessionStatus::kRunning));
  for (int i = 0; i < 4; ++i) insert(make(n++, "bob", 10'050 + i * 100, SessionStatus::kFailed));
  insert(make(n++, "bob", 20'001, SessionStatus::kStarting));

  EXPECT_EQ(walk({.user_id = "alice", .status = std::nullopt}, 2).size(), 7u);
  EXPECT_EQ(walk({.user_id = "alice", .status = SessionStatus::kEnded}, 4).size(), 6u);
  EXPECT_EQ(walk({.user_id = std::nullopt, .status = SessionStatus::kFailed}, 3).size(), 4u);
  auto active = walk({.user_id = std::nullopt, .status = std::nullopt, .active_only = true}, 1);
  EXPECT_EQ(active, (std::vector<std::string>{sid(11), sid(6)}));  // bob's starting (newer), alice's running
  EXPECT_EQ(walk({.user_id = "bob", .status = std::nullopt, .active_only = true}, 10),
            (std::vector<std::string>{sid(11)}));

  // from is inclusive, to exclusive, both on created_at.
  SessionFilter window{.user_id = std::nullopt, .status = std::nullopt};
  window.from = fromUnixMillis(10'100);
  window.to = fromUnixMillis(10'300);
  auto in = walk(window, 1);
  std::set<std::string> want = {sid(1), sid(8), sid(2), sid(9)};  // 10100, 10150, 10200, 10250
  EXPECT_EQ(std::set<std::string>(in.begin(), in.end()), want);
  EXPECT_EQ(in.size(), 4u);

  // A value that looks like SQL is only a value.
  EXPECT_TRUE(walk({.user_id = "alice' OR '1'='1", .status = std::nullopt}, 5).empty());
}

TEST_F(SessionPagingTest, RowListingsPageByIdInTheirOwnOrder) {
  const std::string s = sid(1);
  for (int i = 0; i < 9; ++i) {
    ConnectionRecord c;
    c.user_id = "alice";
    c.session_id = s;
    c.source = "127.0.0.1:" + std::to_string(4000 + i);
    c.outcome = "login";
    c.started_at = fromUnixMillis(1000 + i * 10);
    ASSERT_TRUE(store_->insertConnection(c).ok());
    ASSERT_TRUE(store_->addSessionEvent({0, s, fromUnixMillis(1000 + i * 10), "idle_warning", name("n", i)}).ok());
  }
  ConnectionRecord other{0, "bob", sid(2), "10.0.0.1:1", "login", "", fromUnixMillis(1005), std::nullopt, 0, 0};
  ASSERT_TRUE(store_->insertConnection(other).ok());

  // Connections: newest first, 4 at a time.
  std::vector<int64_t> conn_ids;
  RowPage page{.after_id = std::nullopt};
  page.limit = 4;
  for (;;) {
    auto rows = store_->listConnections(s, page).value();
    for (const auto& r : rows) conn_ids.push_back(r.id);
    if (rows.size() < 4) break;
    page.after_id = rows.back().id;
  }
  ASSERT_EQ(conn_ids.size(), 9u);
  for (size_t i = 1; i < conn_ids.size(); ++i) EXPECT_GT(conn_ids[i - 1], conn_ids[i]);

  // Events: oldest first.
  RowPage ev{.after_id = std::nullopt};
  ev.limit = 4;
  std::vector<std::string> details;
  for (;;) {
    auto rows = store_->listSessionEvents(s, ev).value();
    for (const auto& r : rows) details.push_back(r.detail);
    if (rows.size() < 4) break;
    ev.after_id = rows.back().id;
  }
  EXPECT_EQ(details, (std::vector<std::string>{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"}));

  // from/to on the row's own time.
  RowPage window{.after_id = std::nullopt};
  window.from = fromUnixMillis(1020);
  window.to = fromUnixMillis(1050);
  EXPECT_EQ(store_->listSessionEvents(s, window).value().size(), 3u);  // 1020, 1030, 1040
  EXPECT_EQ(store_->listConnections(s, window).value().size(), 3u);

  // User keys: by id.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->addUserKey({0, "alice", "ssh-ed25519 AAAA" + std::to_string(i), "SHA256:" + std::to_string(i),
                                    fromUnixMillis(1000)}).ok());
  }
  RowPage keys{.after_id = std::nullopt};
  keys.limit = 2;
  auto k1 = store_->listUserKeys("alice", keys).value();
  ASSERT_EQ(k1.size(), 2u);
  keys.after_id = k1.back().id;
  auto k2 = store_->listUserKeys("alice", keys).value();
  ASSERT_EQ(k2.size(), 2u);
  EXPECT_GT(k2.front().id, k1.back().id);
}

TEST_F(SessionPagingTest, CountsFollowEveryChangeAsGroupByWould) {
  for (int i = 0; i < 5; ++i) insert(make(i, name("u", i), 1000 + i, SessionStatus::kRunning));
  for (int i = 5; i < 9; ++i) insert(make(i, name("u", i), 1000 + i, SessionStatus::kEnded));
  // Transitions, a compare-and-set that loses (nothing changes), an update that keeps the status.
  Session a = store_->getSession(sid(0)).value();
  a.status = SessionStatus::kStopping;
  ASSERT_TRUE(store_->updateSessionIf(a, SessionStatus::kRunning, std::nullopt).value());
  a.status = SessionStatus::kEnded;
  a.ended_at = fromUnixMillis(5000);
  ASSERT_TRUE(store_->updateSession(a).ok());
  Session b = store_->getSession(sid(1)).value();
  b.status = SessionStatus::kFailed;
  b.ended_at = fromUnixMillis(6000);
  EXPECT_FALSE(store_->updateSessionIf(b, SessionStatus::kStarting, std::nullopt).value());
  b.expires_at += std::chrono::minutes(5);
  ASSERT_TRUE(store_->updateSession(b).ok());  // now failed
  Session c = store_->getSession(sid(2)).value();
  c.expires_at += std::chrono::minutes(5);
  ASSERT_TRUE(store_->updateSession(c).ok());  // still running
  // A refused insert (second active session for u3) leaves counts alone.
  EXPECT_FALSE(store_->transaction([&](StoreTx& tx) { return tx.insertSession(make(50, "u3", 9000, SessionStatus::kRunning)); }).ok());

  auto counts = store_->sessionCounts().value();
  EXPECT_EQ(counts.by_status, groupBy());
  EXPECT_EQ(counts.by_status, (std::map<std::string, int64_t>{{"ended", 5}, {"failed", 1}, {"running", 3}}));
  EXPECT_EQ(counts.active_users, 3);
  EXPECT_EQ(store_->countSessionsByStatus().value(), groupBy());

  // Pruning deletes through the same triggers.
  ASSERT_EQ(store_->pruneEndedSessions(fromUnixMillis(1'000'000), 100).value(), 6);
  EXPECT_EQ(store_->sessionCounts().value().by_status, groupBy());
  EXPECT_EQ(store_->sessionCounts().value().by_status, (std::map<std::string, int64_t>{{"running", 3}}));
}

TEST_F(SessionPagingTest, MigrationCountsTheHistoryAStoreAlreadyHolds) {
  for (int i = 0; i < 6; ++i) insert(make(i, name("u", i), 1000 + i, i < 2 ? SessionStatus::kRunning : SessionStatus::kEnded));
  store_.reset();
  // Back to schema 7: the paging objects gone, the old single-column indexes back.
  exec("DROP TRIGGER session_counts_insert; DROP TRIGGER session_counts_update; DROP TRIGGER session_counts_delete;"
       "DROP TABLE session_counts; DROP INDEX sessions_by_created; DROP INDEX sessions_by_user;"
       "DROP INDEX sessions_by_user_status; DROP INDEX sessions_by_status; DROP INDEX sessions_by_end;"
       "DROP INDEX sessions_holding_gpu; DROP INDEX connections_by_session_row;"
       "DROP INDEX session_events_by_session_row; DROP INDEX session_events_by_at;"
       "CREATE INDEX sessions_by_user ON sessions(user_id); CREATE INDEX sessions_by_created ON sessions(created_at);"
       "DROP TABLE mig_layout_proposals;"  // migration 10
       "DROP INDEX sessions_cost_unbooked; ALTER TABLE sessions DROP COLUMN team;"  // migration 11
       "ALTER TABLE sessions DROP COLUMN project; ALTER TABLE sessions DROP COLUMN cost_booked;"
       "ALTER TABLE gpu_samples_minute DROP COLUMN procs_max; DROP TABLE teams; DROP TABLE projects;"
       "DROP TABLE user_org; DROP TABLE gpu_prices; DROP TABLE cost_ledger; DROP TABLE budgets;"
       "DROP TABLE demand;"
       "DROP TABLE gpu_node_meta; DROP TABLE gpu_node_events;"  // migrations 12 and 13
       "DELETE FROM schema_version WHERE version >= 8;");
  auto reopened = SqliteStore::open(path_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  store_ = std::move(reopened).value();
  EXPECT_EQ(store_->schemaVersion(), 13);
  EXPECT_EQ(store_->sessionCounts().value().by_status, (std::map<std::string, int64_t>{{"ended", 4}, {"running", 2}}));
  insert(make(7, "u7", 2000, SessionStatus::kStarting));
  EXPECT_EQ(store_->sessionCounts().value().by_status, groupBy());
}

TEST_F(SessionPagingTest, PruningTakesOldEndedSessionsWithTheirEventsInBatches) {
  const int64_t now = 400 * kDay;
  int n = 0;
  for (int i = 0; i < 7; ++i) insert(make(n++, name("old", i), now - 100 * kDay, SessionStatus::kEnded));
  insert(make(n++, "oldfail", now - 100 * kDay, SessionStatus::kFailed));
  insert(make(n++, "recent", now - 10 * kDay, SessionStatus::kEnded));
  insert(make(n++, "live", now - 100 * kDay, SessionStatus::kRunning));  // old but active: kept
  Session leak = make(n++, "leak", now - 100 * kDay, SessionStatus::kEnded);
  leak.gpu = GpuSlot{};
  leak.gpu->created = true;  // its MIG instance was never released: kept for reconcile
  insert(leak);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_->addSessionEvent({0, sid(0), fromUnixMillis(now - 95 * kDay), "idle_stop", ""}).ok());
  ASSERT_TRUE(store_->addSessionEvent({0, sid(8), fromUnixMillis(now - 1 * kDay), "idle_warning", ""}).ok());

  auto holding = store_->endedSessionsHoldingGpu().value();
  ASSERT_EQ(holding.size(), 1u);
  EXPECT_EQ(holding[0].id, leak.id);

  const TimePoint cutoff = fromUnixMillis(now - 90 * kDay);
  EXPECT_EQ(store_->pruneEndedSessions(cutoff, 3).value(), 3);  // a batch is a batch
  EXPECT_EQ(store_->pruneEndedSessions(cutoff, 3).value(), 3);
  EXPECT_EQ(store_->pruneEndedSessions(cutoff, 3).value(), 2);
  EXPECT_EQ(store_->pruneEndedSessions(cutoff, 3).value(), 0);
  std::set<std::string> left;
  auto rows = store_->listSessions({});
  ASSERT_TRUE(rows.ok());
  for (const auto& s : rows.value()) left.insert(s.id);
  EXPECT_EQ(left, (std::set<std::string>{sid(8), sid(9), leak.id}));
  EXPECT_EQ(store_->listSessionEvents(sid(0)).value().size(), 0u);  // went with its session
  EXPECT_EQ(store_->listSessionEvents(sid(8)).value().size(), 1u);

  // Events alone, by their own time.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store_->addSessionEvent({0, sid(9), fromUnixMillis(now - 40 * kDay), "busy_again", ""}).ok());
  EXPECT_EQ(store_->pruneSessionEvents(fromUnixMillis(now - 30 * kDay), 2).value(), 2);
  EXPECT_EQ(store_->pruneSessionEvents(fromUnixMillis(now - 30 * kDay), 10).value(), 3);
  EXPECT_EQ(store_->listSessionEvents(sid(8)).value().size(), 1u);
}

TEST_F(SessionPagingTest, RetentionPassDrainsBatchesAndHonoursZeroAsForever) {
  testing::ManualClock clock(fromUnixMillis(400 * kDay));
  for (int i = 0; i < 12; ++i) insert(make(i, name("u", i), 200 * kDay, SessionStatus::kEnded));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(store_->addSessionEvent({0, sid(50), fromUnixMillis(300 * kDay), "idle_warning", ""}).ok());

  RetentionOptions keep;
  keep.sessions = Millis(0);
  keep.events = Millis(0);
  HistoryRetention forever(keep, *store_, clock);
  auto none = forever.pruneOnce().value();
  EXPECT_EQ(none.sessions, 0);
  EXPECT_EQ(none.events, 0);

  RetentionOptions opts;
  opts.sessions = std::chrono::hours(24 * 90);
  opts.events = std::chrono::hours(24 * 30);
  opts.batch = 5;        // 12 rows: batches of 5, 5, 2
  opts.max_batches = 10;
  HistoryRetention retention(opts, *store_, clock);
  auto pruned = retention.pruneOnce().value();
  EXPECT_EQ(pruned.sessions, 12);
  EXPECT_EQ(pruned.events, 4);
  EXPECT_TRUE(store_->listSessions({}).value().empty());

  // max_batches bounds one pass; the rest waits for the next.
  for (int i = 0; i < 12; ++i) insert(make(100 + i, name("v", i), 200 * kDay, SessionStatus::kEnded));
  opts.max_batches = 1;
  HistoryRetention bounded(opts, *store_, clock);
  EXPECT_EQ(bounded.pruneOnce().value().sessions, 5);
  EXPECT_EQ(bounded.pruneOnce().value().sessions, 5);
  EXPECT_EQ(bounded.totals().sessions, 10);
}

TEST_F(SessionPagingTest, RetentionThreadPrunesAtStartAndStopsPromptly) {
  testing::ManualClock clock(fromUnixMillis(400 * kDay));
  for (int i = 0; i < 3; ++i) insert(make(i, name("u", i), 200 * kDay, SessionStatus::kEnded));
  HistoryRetention retention({}, *store_, clock);
  retention.start();
  // The first pass runs at once; the clock never moves, so the thread then
  // waits for ever unless stop() wakes it.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (retention.totals().sessions < 3 && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  retention.stop();
  EXPECT_EQ(retention.totals().sessions, 3);
  EXPECT_TRUE(store_->listSessions({}).value().empty());
}

}  // namespace
}  // namespace sandman
