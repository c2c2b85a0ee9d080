// The create path's disk checks: a file system below --min-free-disk refuses
// the session with 507 before anything is reserved, and the login banner a
// session gets carries the quota notice. Flag parsing of the disk flags.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/serve_config.h"
#include "support/session_harness.h"

namespace sandman {
namespace {

using testing::SessionHarness;

class SessionDiskTest : public SessionHarness {};

TEST_F(SessionDiskTest, CreateBelowTheFreeSpaceFloorIs507AndReservesNothing) {
  sessions_->setSpaceCheck([] { return Status(noSpace("the state file system (/x) has 1 MiB free")); });
  auto r = sessions_->create({"alice", std::chrono::minutes(10), std::nullopt, std::nullopt, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNoSpace);
  EXPECT_EQ(httpStatus(r.error().kind), 507);
  EXPECT_NE(r.error().message.find("1 MiB free"), std::string::npos);
  EXPECT_TRUE(store_->listSessions({}).value().empty());
  EXPECT_TRUE(runtime_.calls.empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/ws/alice"));

  sessions_->setSpaceCheck([] { return Status(); });  // space freed
  Session s = create("alice");
  EXPECT_EQ(s.status, SessionStatus::kRunning);
}

TEST_F(SessionDiskTest, TheSessionsBannerFileCarriesTheQuotaNoticeAndSshdShowsIt) {
  sessions_->setLoginBanner([](const std::string& user) { return "Sandman: quota note for " + user + "\n"; });
  Session s = create("bob");
  std::ifstream banner(files_->dirFor(s.id) + "/banner");
  std::stringstream text;
  text << banner.rdbuf();
  EXPECT_EQ(text.str(), "Sandman: quota note for bob\n");
  std::ifstream config(files_->dirFor(s.id) + "/sshd_config");
  std::stringstream conf;
  conf << config.rdbuf();
  EXPECT_NE(conf.str().find("Banner /etc/sandman/banner\n"), std::string::npos);

  // Rewritten for a running session, and removed when there is nothing to say.
  auto account = store_->getUser("bob").value();
  ASSERT_TRUE(files_->writeBanner(s.id, account, "new\n").ok());
  std::ifstream again(files_->dirFor(s.id) + "/banner");
  std::stringstream t2;
  t2 << again.rdbuf();
  EXPECT_EQ(t2.str(), "new\n");
  ASSERT_TRUE(files_->writeBanner(s.id, account, "").ok());
  EXPECT_FALSE(std::filesystem::exists(files_->dirFor(s.id) + "/banner"));
}

Result<ServeConfig> parse(std::vector<std::string> args) {
  CLI::App app;
  ServeConfig cfg;
  addServeFlags(app, cfg);
  std::vector<const char*> argv{"serve"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  if (auto st = finalizeServeConfig(app, cfg); !st.ok()) return st.error();
  return cfg;
}

TEST(DiskFlags, SizesSharesAndMistakes) {
  auto d = parse({});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->min_free_disk_bytes, 1ull << 30);
  EXPECT_EQ(d->workspace_quota_bytes, 0u);
  auto c = parse({"--min-free-disk", "5%", "--workspace-quota", "20g", "--workspace-usage-interval", "2m"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_DOUBLE_EQ(c->min_free_disk_percent, 5);
  EXPECT_EQ(c->min_free_disk_bytes, 0u);
  EXPECT_EQ(c->workspace_quota_bytes, 20ull << 30);
  EXPECT_EQ(c->workspace_usage_interval_ms, std::chrono::minutes(2));
  for (const char* bad : {"5%%", "100%", "x%", "-1g", "1t"}) {
    auto r = parse({"--min-free-disk", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("--min-free-disk"), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(parse({"--workspace-quota", "lots"}).ok());
}

}  // namespace
}  // namespace sandman
