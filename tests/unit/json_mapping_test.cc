#include "api/json_mapping.h"

#include <gtest/gtest.h>

#include "common/time_format.h"

namespace sandman {
namespace {

TEST(CreateRequest, ParsesSeedFields) {
  auto r = parseCreateRequest(R"({"user_id":"alice","ttl_minutes":120,"image":"img:1"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->user_id, "alice");
  EXPECT_EQ(r->ttl, Millis(std::chrono::minutes(120)));
  EXPECT_EQ(r->image, "img:1");
  EXPECT_FALSE(r->ssh_public_key);
}

TEST(CreateRequest, TtlSecondsAndNotBoth) {
  auto r = parseCreateRequest(R"({"user_id":"a","ttl_seconds":5})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ttl, Millis(5000));
  EXPECT_FALSE(parseCreateRequest(R"({"user_id":"a","ttl_seconds":5,"ttl_minutes":1})").ok());
}

TEST(CreateRequest, RefusesMalformedBodies) {
  for (auto bad : {"", "{", "[]", "\"x\"", "null", R"({"user_id":5})", R"({"ttl_minutes":5})",
                   R"({"user_id":"a","ttl_minutes":"5"})", R"({"user_id":"a","ttl_minutes":1.5})",
                   R"({"user_id":"a","ttl_minutes":0})", R"({"user_id":"a","ttl_minutes":-3})",
                   R"({"user_id":"a","bogus":1})", R"({"user_id":"a","image":7})"}) {
    auto r = parseCreateRequest(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid) << bad;
  }
}

TEST(CreateRequest, UnknownFieldIsNamed) {
  auto r = parseCreateRequest(R"({"user_id":"a","pasword":"x"})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("pasword"), std::string::npos);
}

TEST(CreateRequest, GpuFieldsAreTypeCheckedAndCarried) {
  auto both = parseCreateRequest(R"({"user_id":"a","mig_profile":"3g.20gb","mig_instance_uuid":"MIG-x"})");
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.error().message.find("not both"), std::string::npos);
  auto one = parseCreateRequest(R"({"user_id":"a","mig_profile":"3g.20gb"})");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->gpu.mig_profile, "3g.20gb");
  EXPECT_FALSE(one->gpu.mig_instance_uuid);
  EXPECT_FALSE(parseCreateRequest(R"({"user_id":"a","mig_profile":3})").ok());
  EXPECT_TRUE(parseCreateRequest(R"({"user_id":"a","mig_profile":null})").ok());
}

TEST(TtlPatch, RequiresATtl) {
  EXPECT_EQ(parseTtlPatch(R"({"ttl_minutes":30})").value(), Millis(std::chrono::minutes(30)));
  EXPECT_FALSE(parseTtlPatch(R"({})").ok());
  EXPECT_FALSE(parseTtlPatch(R"({"user_id":"a"})").ok());
}

TEST(SessionJson, HasSeedFieldsAndNoSecrets) {
  Session s;
  s.id = "s-0123456789abcdef";
  s.user_id = "alice";
  s.status = SessionStatus::kRunning;
  s.ssh_port = 10007;
  s.container_id = "abc";
  s.user_public_key = "ssh-ed25519 AAAAuser alice";
  s.host_public_key = "ssh-ed25519 AAAAhost sandman-host";
  s.created_at = fromUnixMillis(1'700'000'000'000);
  s.expires_at = fromUnixMillis(1'700'003'600'000);
  auto j = sessionToJson(s, {"gw.example", "/srv/workspaces"});
  for (auto key : {"session_id", "container_id", "ssh_user", "ssh_host", "ssh_port", "gpu_uuid", "created_at",
                   "expires_at", "status", "ssh_command", "ssh_host_key"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_FALSE(j.contains("ssh_private_key"));
  EXPECT_FALSE(j.contains("ssh_password"));
  EXPECT_TRUE(j["gpu_uuid"].is_null());
  EXPECT_EQ(j["ssh_command"], "ssh -p 10007 alice@gw.example");
  EXPECT_EQ(j["ssh_host_key"], "[gw.example]:10007 ssh-ed25519 AAAAhost");
  EXPECT_EQ(j["created_at"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(j["workspace"], "/srv/workspaces/alice");
}

TEST(TimeFormat, RoundTripsRfc3339) {
  auto t = fromUnixMillis(1'700'000'000'250);
  EXPECT_EQ(formatRfc3339(t), "2023-11-14T22:13:20.250Z");
  EXPECT_EQ(parseRfc3339("2023-11-14T22:13:20.250Z"), t);
  EXPECT_EQ(parseRfc3339("2023-11-14T22:13:20Z"), fromUnixMillis(1'700'000'000'000));
  EXPECT_FALSE(parseRfc3339("2023-11-14 22:13:20"));
}

}  // namespace
}  // namespace sandman
