// Disk limits on real, small file systems this test mounts (a tmpfs of 8 MiB;
// a loop-mounted ext4 image for the quota probe), filled and freed:
// the store refuses writes with kNoSpace (507) on a full disk, stays intact
// and takes writes again once space is freed; the free-space guard; the
// incremental usage walk against du; the workspace monitor's budget; the
// project-quota probe. Needs root (mount); fails loudly without it.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "common/time_format.h"
#include "store/sqlite_store.h"
#include "support/manual_clock.h"
#include "workspace/disk_space.h"
#include "workspace/project_quota.h"
#include "workspace/tree_usage.h"
#include "workspace/workspace_usage.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;

// A tmpfs of `size` mounted on a fresh temp dir, unmounted whatever happens.
class SmallFs {
 public:
  explicit SmallFs(const char* size) {
    char tmpl[] = "/tmp/sandman-smallfs-XXXXXX";
    dir_ = mkdtemp(tmpl);
    const std::string opts = std::string("size=") + size + ",mode=0755";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      error_ = std::string("mount tmpfs on ") + dir_ + ": " + std::strerror(errno) + " (this test needs root)";
    }
  }
  ~SmallFs() {
    if (error_.empty() && ::umount2(dir_.c_str(), 0) != 0) (void)::umount2(dir_.c_str(), MNT_DETACH);
    ::rmdir(dir_.c_str());
  }
  const std::string& dir() const { return dir_; }
  const std::string& error() const { return error_; }

  // Writes a filler file until the file system is full; returns its size.
  uint64_t fill(const std::string& name = "filler") {
    const std::string path = dir_ + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    std::string chunk(64 * 1024, 'x');
    uint64_t total = 0;
    for (;;) {
      ssize_t n = ::write(fd, chunk.data(), chunk.size());
      if (n <= 0) break;
      total += static_cast<uint64_t>(n);
    }
    ::close(fd);
    return total;
  }
  void unfill(const std::string& name = "filler") { ::unlink((dir_ + "/" + name).c_str()); }

 private:
  std::string dir_;
  std::string error_;
};

Session makeSession(int i) {
  Session s;
  s.id = "s-" + std::string(12, '0') + std::to_string(1000 + i);
  s.user_id = "user" + std::to_string(i);
  s.status = SessionStatus::kEnded;
  s.image = "sandman-workspace:test";
  s.ssh_port = 10000 + i;
  s.user_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUser";
  s.host_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost";
  s.created_at = fromUnixMillis(1700000000000 + i);
  s.expires_at = s.created_at + 1h;
  s.ended_at = s.created_at + 1s;
  s.end_reason = std::string(3000, 'r');  // rows big enough to fill pages quickly
  return s;
}

Status insert(Store& store, int i) {
  const Session s = makeSession(i);
  return store.transaction([&](StoreTx& tx) { return tx.insertSession(s); });
}

std::string integrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open";
  }
  std::string out;
  sqlite3_exec(
      db, "PRAGMA integrity_check",
      [](void* o, int, char** v, char**) {
        *static_cast<std::string*>(o) += v[0] ? v[0] : "";
        return 0;
      },
      &out, nullptr);
  sqlite3_close(db);
  return out;
}

TEST(StoreOnAFullDisk, WritesFailWithNoSpaceNothingIsLostAndWritesResumeOnceSpaceIsFreed) {
  SmallFs fs("8m");
  ASSERT_EQ(fs.error(), "");
  const std::string db = fs.dir() + "/state/sandman.db";
  auto opened = SqliteStore::open(db);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto store = std::move(opened).value();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(insert(*store, i).ok());

  const uint64_t filled = fs.fill();
  ASSERT_GT(filled, 1u << 20);
  // Pages free in the WAL may take a few more rows; then the disk says no.
  int committed = 20;
  Status failed;
  for (int i = 20; i < 2000 && failed.ok(); ++i) {
    failed = insert(*store, i);
    if (failed.ok()) ++committed;
  }
  ASSERT_FALSE(failed.ok()) << "2000 rows fitted on a full 8 MiB file system";
  EXPECT_EQ(failed.error().kind, ErrorKind::kNoSpace) << failed.error().message;
  EXPECT_EQ(httpStatus(failed.error().kind), 507);
  EXPECT_NE(failed.error().message.find("full"), std::string::npos) << failed.error().message;
  std::printf("[ figure ] full disk: first refused write after %d rows (%d on the full disk), error: %s\n", committed,
              committed - 20, failed.error().message.c_str());

  // Reads still work and show exactly what was committed.
  auto listed = store->listSessions({});
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(static_cast<int>(listed->size()), committed);
  EXPECT_FALSE(store->getSession(makeSession(committed).id).ok());  // the refused row is not there
  EXPECT_EQ(integrityCheck(db), "ok");

  fs.unfill();
  ASSERT_TRUE(insert(*store, 5000).ok());
  ASSERT_TRUE(store->addSessionEvent({0, makeSession(0).id, fromUnixMillis(1700000001000), "idle_warning", "ok"}).ok());
  store.reset();

  auto again = SqliteStore::open(db);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(static_cast<int>(again.value()->listSessions({}).value().size()), committed + 1);
  EXPECT_EQ(integrityCheck(db), "ok");
}

TEST(FreeSpaceGuard, RefusesBelowTheFloorNamingTheFileSystemAndAllowsOnceFreed) {
  SmallFs state("8m");
  SmallFs ws("8m");
  ASSERT_EQ(state.error(), "");
  ASSERT_EQ(ws.error(), "");
  FreeSpaceGuard guard(state.dir(), ws.dir() + "/not-made-yet", {2u << 20, 0});
  EXPECT_TRUE(guard.check().ok());
  ws.fill();
  Status st = guard.check();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kNoSpace);
  EXPECT_NE(st.error().message.find("the workspace file system (" + ws.dir() + "/not-made-yet)"), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("below --min-free-disk 2 MiB"), std::string::npos) << st.error().message;
  ws.unfill();
  EXPECT_TRUE(guard.check().ok());

  FreeSpaceGuard share(state.dir(), ws.dir(), {0, 50});
  EXPECT_TRUE(share.check().ok());
  {
    std::ofstream half(state.dir() + "/half");
    half << std::string(5u << 20, 'h');
  }
  st = share.check();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("the state file system"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("below --min-free-disk 50%"), std::string::npos) << st.error().message;
}

uint64_t duBytes(const std::string& dir) {
  std::string cmd = "du -s --block-size=1 '" + dir + "'";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return 0;
  unsigned long long v = 0;
  if (std::fscanf(p, "%llu", &v) != 1) v = 0;
  ::pclose(p);
  return v;
}

void writeFile(const std::string& path, size_t bytes) {
  std::ofstream f(path);
  f << std::string(bytes, 'd');
}

TEST(TreeUsageWalk, MatchesDuInBoundedStepsAndNeverFollowsASymlink) {
  SmallFs fs("8m");
  ASSERT_EQ(fs.error(), "");
  const std::string root = fs.dir() + "/alice";
  std::filesystem::create_directories(root + "/a/b/c");
  for (int i = 0; i < 30; ++i) writeFile(root + "/a/f" + std::to_string(i), 1000 + 5000 * i);
  writeFile(root + "/a/b/c/deep", 300000);
  std::filesystem::create_directory_symlink("/usr", root + "/escape");  // must not be walked

  TreeUsageWalk walk(root);
  int steps = 0;
  for (;;) {
    size_t budget = 10;
    auto r = walk.step(&budget);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ++steps;
    if (r.value()) break;
    EXPECT_EQ(budget, 0u);  // a step that is not the last spends its budget exactly
    ASSERT_LT(steps, 100);
  }
  EXPECT_EQ(walk.entries(), 36u);  // root, a, b, c, 30 files, deep, the symlink
  EXPECT_EQ(steps, 4);
  EXPECT_EQ(walk.bytes(), duBytes(root));
  EXPECT_LT(walk.bytes(), 8u << 20);  // /usr was not counted
  std::printf("[ figure ] walk of 36 entries: %d steps of 10, %llu bytes, du says %llu\n", steps,
              static_cast<unsigned long long>(walk.bytes()), static_cast<unsigned long long>(duBytes(root)));
}

TEST(WorkspaceUsageMonitor, MeasuresEachWorkspaceWithinItsBudgetPerCycleAndForgetsRemovedOnes) {
  SmallFs fs("8m");
  ASSERT_EQ(fs.error(), "");
  const std::string root = fs.dir() + "/ws";
  for (const char* u : {"alice", "bob"}) {
    std::filesystem::create_directories(root + "/" + u + "/data");
    for (int i = 0; i < 12; ++i) writeFile(root + "/" + u + "/data/f" + std::to_string(i), 20000);
  }
  writeFile(root + "/alice/big", 1u << 20);
  testing::ManualClock clock;
  WorkspaceUsageMonitor m({root, 1s, 5, 0, false}, clock);
  int cycles = 0;
  uint64_t walked_before = 0;
  while ((!m.get("alice") || !m.get("alice")->measured || !m.get("bob") || !m.get("bob")->measured) && cycles < 50) {
    m.runCycle();
    ++cycles;
    EXPECT_LE(m.walkedEntries() - walked_before, 5u);
    walked_before = m.walkedEntries();
  }
  ASSERT_LT(cycles, 50);
  EXPECT_GE(cycles, 5);  // 29 entries at 5 per cycle
  EXPECT_EQ(m.get("alice")->used_bytes, duBytes(root + "/alice"));
  EXPECT_EQ(m.get("bob")->used_bytes, duBytes(root + "/bob"));
  EXPECT_EQ(m.get("alice")->method, "walk");
  EXPECT_TRUE(m.get("alice")->overQuota(1u << 20));
  EXPECT_FALSE(m.get("bob")->overQuota(1u << 20));

  std::filesystem::remove_all(root + "/bob");
  m.runCycle();
  EXPECT_FALSE(m.get("bob").has_value());
  EXPECT_EQ(m.all().size(), 1u);
}

TEST(ProjectQuota, ProbeSaysWhyATmpfsCannotEnforceAQuota) {
  SmallFs fs("8m");
  ASSERT_EQ(fs.error(), "");
  QuotaSupport q = ProjectQuota::probe(fs.dir() + "/workspaces");
  EXPECT_FALSE(q.enforced);
  EXPECT_EQ(q.fs_type, "tmpfs");
  EXPECT_NE(q.reason.find("tmpfs, which has no project quotas"), std::string::npos) << q.reason;
}

TEST(ProjectQuota, ProbeOnExt4WithoutQuotaMountedSaysToMountWithPrjquota) {
  SmallFs fs("64m");
  ASSERT_EQ(fs.error(), "");
  const std::string img = fs.dir() + "/ext4.img";
  const std::string mnt = fs.dir() + "/mnt";
  std::filesystem::create_directory(mnt);
  ASSERT_EQ(std::system(("truncate -s 32M '" + img + "' && mkfs.ext4 -q -F '" + img + "'").c_str()), 0);
  ASSERT_EQ(std::system(("mount -o loop '" + img + "' '" + mnt + "'").c_str()), 0);
  QuotaSupport q = ProjectQuota::probe(mnt);
  (void)std::system(("umount '" + mnt + "'").c_str());
  EXPECT_FALSE(q.enforced);
  EXPECT_EQ(q.fs_type, "ext4");
  // Either way the reason names the fix; which one depends on the kernel
  // (this one, for instance, has no ext4 quota code at all).
  EXPECT_NE(q.reason.find("prjquota"), std::string::npos) << q.reason;
  EXPECT_EQ(q.reason.find("Linux 5.14"), std::string::npos) << q.reason;
  std::printf("[ figure ] quota probe on a loop-mounted ext4: %s\n", q.reason.c_str());
}

}  // namespace
}  // namespace sandman
