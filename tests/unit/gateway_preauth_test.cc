// PreauthLimits and the gateway's user-name check, under a manual clock.
#include <gtest/gtest.h>

#include "gateway/preauth_limits.h"
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
  EXPECT_TRUE(limits.userBlocked("alice"));
  EXPECT_FALSE(limits.userBlocked("bob"));
  std::string why;
  EXPECT_FALSE(limits.admit("10.0.0.1", &why));
  EXPECT_NE(why.find("blocked"), std::string::npos);
  clock.advance(61s);
  EXPECT_FALSE(limits.sourceBlocked("10.0.0.1"));
  EXPECT_FALSE(limits.userBlocked("alice"));
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

}  // namespace
}  // namespace sandman
