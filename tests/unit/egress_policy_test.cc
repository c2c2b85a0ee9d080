// --session-egress parsing and the rules of the egress chain (order matters:
// replies, metadata, allow-list, then private ranges or everything).
#include "runtime/egress_policy.h"

#include <gtest/gtest.h>

#include "runtime/iptables.h"

namespace sandman {
namespace {

using Rules = std::vector<std::vector<std::string>>;

// "-d X ... -j T" reduced to "X>T" (or "*>T" without -d, "ctstate>T" for replies).
std::vector<std::string> summary(const Rules& rules) {
  std::vector<std::string> out;
  for (const auto& r : rules) {
    std::string dst = "*", port, target;
    for (size_t i = 0; i + 1 < r.size(); ++i) {
      if (r[i] == "-d") dst = r[i + 1];
      if (r[i] == "--ctstate") dst = "ctstate";
      if (r[i] == "-p") port = ":" + r[i + 1];
      if (r[i] == "--dport") port += "/" + r[i + 1];
      if (r[i] == "-j") target = r[i + 1];
    }
    out.push_back(dst + port + ">" + target);
  }
  return out;
}

TEST(EgressPolicy, EmptyDropsMetadataThenPrivateRanges) {
  auto p = parseEgressPolicy("");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->enabled);
  EXPECT_FALSE(p->deny_all);
  EXPECT_EQ(summary(egressRules(*p, IpFamily::kV4)),
            (std::vector<std::string>{"ctstate>RETURN", "169.254.0.0/16>DROP", "10.0.0.0/8>DROP",
                                      "172.16.0.0/12>DROP", "192.168.0.0/16>DROP", "100.64.0.0/10>DROP"}));
  EXPECT_EQ(summary(egressRules(*p, IpFamily::kV6)),
            (std::vector<std::string>{"ctstate>RETURN", "fe80::/10>DROP", "fd00:ec2::254/128>DROP", "fc00::/7>DROP"}));
}

TEST(EgressPolicy, AllowListGoesAfterMetadataAndBeforePrivateRanges) {
  auto p = parseEgressPolicy("10.1.2.3/32:3142, 192.168.5.0/24,fd12::/64:443");
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->allow.size(), 3u);
  EXPECT_EQ(p->allow[0].port, 3142);
  EXPECT_EQ(p->allow[1].port, 0);
  EXPECT_EQ(p->allow[2].family, IpFamily::kV6);
  auto v4 = summary(egressRules(*p, IpFamily::kV4));
  EXPECT_EQ(std::vector<std::string>(v4.begin(), v4.begin() + 5),
            (std::vector<std::string>{"ctstate>RETURN", "169.254.0.0/16>DROP", "10.1.2.3/32:tcp/3142>RETURN",
                                      "10.1.2.3/32:udp/3142>RETURN", "192.168.5.0/24>RETURN"}));
  EXPECT_EQ(v4[5], "10.0.0.0/8>DROP");
  auto v6 = summary(egressRules(*p, IpFamily::kV6));
  EXPECT_EQ(v6[3], "fd12::/64:tcp/443>RETURN");
  EXPECT_EQ(v6.back(), "fc00::/7>DROP");
}

TEST(EgressPolicy, NoneDropsEverythingButRepliesAndTheAllowList) {
  auto none = parseEgressPolicy("none");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(summary(egressRules(*none, IpFamily::kV4)),
            (std::vector<std::string>{"ctstate>RETURN", "169.254.0.0/16>DROP", "*>DROP"}));
  auto some = parseEgressPolicy("none,10.9.0.0/16");
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(summary(egressRules(*some, IpFamily::kV4)),
            (std::vector<std::string>{"ctstate>RETURN", "169.254.0.0/16>DROP", "10.9.0.0/16>RETURN", "*>DROP"}));
}

TEST(EgressPolicy, OffHasNoRules) {
  auto p = parseEgressPolicy("off");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->enabled);
  EXPECT_TRUE(egressRules(*p, IpFamily::kV4).empty());
  EXPECT_FALSE(parseEgressPolicy("off,10.0.0.0/8").ok());
}

TEST(EgressPolicy, MetadataCanNeverBeAllowed) {
  for (const char* e : {"169.254.169.254/32", "169.254.0.0/16:80", "169.0.0.0/8", "0.0.0.0/0", "fd00:ec2::254/128",
                        "fd00::/8", "::/0", "fe80::1/128"}) {
    auto p = parseEgressPolicy(e);
    ASSERT_FALSE(p.ok()) << e;
    EXPECT_EQ(p.error().kind, ErrorKind::kInvalid);
    EXPECT_NE(p.error().message.find("metadata"), std::string::npos) << p.error().message;
  }
  EXPECT_TRUE(parseEgressPolicy("169.253.0.0/16").ok());
  EXPECT_TRUE(parseEgressPolicy("fd00:ec3::/32").ok());
}

TEST(EgressPolicy, BadEntriesNameThemselves) {
  for (const char* e : {"10.1.2.3", "10.1.2.3/33", "10.1.2.3/32:0", "10.1.2.3/32:65536", "10.1.2/24", "host/32",
                        "10.0.0.0/8,,10.1.0.0/16", "10.0.0.0/x", "10.0.0.0/8:80:90"}) {
    auto p = parseEgressPolicy(e);
    ASSERT_FALSE(p.ok()) << e;
    EXPECT_EQ(p.error().kind, ErrorKind::kInvalid) << e;
    EXPECT_NE(p.error().message.find("--session-egress"), std::string::npos) << p.error().message;
  }
}

TEST(EgressPolicy, DescribeSaysWhatIsLetThrough) {
  EXPECT_EQ(describeEgressPolicy(parseEgressPolicy("none,10.1.2.3/32:3142").value()),
            "none (all egress dropped) + allow 10.1.2.3/32:3142");
  EXPECT_EQ(describeEgressPolicy(parseEgressPolicy("off").value()), "off (no egress rules)");
}

TEST(EgressPolicy, AllowsAnswersLikeTheRules) {
  auto def = parseEgressPolicy("").value();
  EXPECT_FALSE(egressAllows(def, "169.254.169.254", 80));
  EXPECT_FALSE(egressAllows(def, "10.0.0.2", 53));
  EXPECT_FALSE(egressAllows(def, "fd00:ec2::254", 80));
  EXPECT_TRUE(egressAllows(def, "198.51.100.7", 80));
  EXPECT_TRUE(egressAllows(def, "2001:db8::1", 443));
  auto dns = parseEgressPolicy("10.0.0.2/32:53").value();
  EXPECT_TRUE(egressAllows(dns, "10.0.0.2", 53));
  EXPECT_FALSE(egressAllows(dns, "10.0.0.2", 54));
  auto none = parseEgressPolicy("none,192.168.5.0/24").value();
  EXPECT_TRUE(egressAllows(none, "192.168.5.9", 22));
  EXPECT_FALSE(egressAllows(none, "198.51.100.7", 80));
  EXPECT_TRUE(egressAllows(parseEgressPolicy("off").value(), "169.254.169.254", 80));
  EXPECT_FALSE(egressAllows(def, "not-an-address", 80));
}

TEST(IptablesRuleLine, SplitsQuotedComments) {
  EXPECT_EQ(splitRuleLine(R"(-A SANDMAN-EG-br-1 -d 10.0.0.0/8 -m comment --comment "sandman: private ranges" -j DROP)"),
            (std::vector<std::string>{"-A", "SANDMAN-EG-br-1", "-d", "10.0.0.0/8", "-m", "comment", "--comment",
                                      "sandman: private ranges", "-j", "DROP"}));
  EXPECT_EQ(splitRuleLine(R"(-A X --comment "a \"b\"")"), (std::vector<std::string>{"-A", "X", "--comment", "a \"b\""}));
}

}  // namespace
}  // namespace sandman
