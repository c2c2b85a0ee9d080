#include "core/validation.h"

#include <gtest/gtest.h>

namespace sandman {
namespace {

TEST(UserId, AcceptsPosixNames) {
  for (auto ok : {"alice", "_svc", "user123", "a", "bob-smith_2", "abcdefghijklmnopqrstuvwxyz012345"}) {
    EXPECT_TRUE(validateUserId(ok).ok()) << ok;
  }
}

TEST(UserId, RefusesTraversalAndOddNames) {
  for (auto bad : {"", "../etc", "..", ".", "a/b", "Alice", "1user", "-rf", "user name", "user\n",
                   "abcdefghijklmnopqrstuvwxyz0123456", "root;rm", "ü", "a\\b", "%2e%2e"}) {
    auto st = validateUserId(bad);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.error().kind, ErrorKind::kInvalid);
  }
}

TEST(Ttl, BoundsAreInclusiveOfMax) {
  using namespace std::chrono;
  EXPECT_TRUE(validateTtl(minutes(1440), minutes(1440)).ok());
  EXPECT_TRUE(validateTtl(seconds(1), minutes(1440)).ok());
  EXPECT_FALSE(validateTtl(minutes(1441), minutes(1440)).ok());
  EXPECT_FALSE(validateTtl(milliseconds(999), minutes(1440)).ok());
  EXPECT_NE(validateTtl(minutes(2000), minutes(1440)).error().message.find("1440"), std::string::npos);
}

TEST(Image, AcceptsReferencesRefusesInjection) {
  for (auto ok : {"sandman-workspace:latest", "nvidia/cuda:12.4.1-runtime-ubuntu22.04", "registry.local:5000/team/img:v1",
                  "busybox"}) {
    EXPECT_TRUE(validateImageName(ok).ok()) << ok;
  }
  for (auto bad : {"", "Upper:tag", "img; rm -rf /", "../img", "img:tag with space", "-img"}) {
    EXPECT_FALSE(validateImageName(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace sandman

namespace sandman {
namespace {

TEST(UserId, RefusesAccountsAndGroupsOfTheSessionImageWithAClearMessage) {
  for (auto name : {"root", "daemon", "sshd", "nobody", "_apt", "www-data", "systemd-network", "sudo", "staff"}) {
    auto st = validateUserId(name);
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_EQ(st.error().kind, ErrorKind::kInvalid);
    EXPECT_NE(st.error().message.find("system account"), std::string::npos) << st.error().message;
  }
  for (auto name : {"rooted", "alice", "nobody1", "systemd", "user123"}) EXPECT_TRUE(validateUserId(name).ok()) << name;
}

}  // namespace
}  // namespace sandman
