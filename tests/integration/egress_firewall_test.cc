// The session firewall against real iptables, a real dockerd and real
// containers: each egress rule proven both ways against services that live
// in a network namespace built here (a "LAN", a "public" host and a "metadata
// server"), with the host reaching each of them first as the control.
// Needs root. Everything made here is removed in TearDown, even on failure.
#include "runtime/session_firewall.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <sstream>

#include "runtime/docker_runtime.h"
#include "runtime/iptables.h"
#include "runtime/session_network.h"
#include "support/netns_lab.h"

namespace sandman {
namespace {

using testing::NetnsLab;
using testing::sh;

std::string image() {
  const char* v = std::getenv("SANDMAN_IMAGE");
  return v != nullptr && *v != '\0' ? v : "sandman-workspace:latest";
}

const std::string kMeta = std::string(NetnsLab::kMetadata) + ":80";
const std::string kLan = std::string(NetnsLab::kLan) + ":8080";
const std::string kLanOther = std::string(NetnsLab::kLan) + ":8081";
const std::string kPublic = std::string(NetnsLab::kPublic) + ":80";

class EgressFirewallTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    lab_ = new NetnsLab;
    lab_error_ = lab_->up();
  }
  static void TearDownTestSuite() {
    lab_->down();
    delete lab_;
  }

  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the egress tests need root (iptables, network namespaces)";
    ASSERT_EQ(lab_error_, "") << "could not build the network namespace lab";
    auto rt = DockerRuntime::open("unix:///var/run/docker.sock");
    ASSERT_TRUE(rt.ok());
    runtime_ = std::move(rt).value();
    ASSERT_TRUE(runtime_->ping().ok()) << "dockerd is not running";
    std::random_device rd;
    prefix_ = "sandman-egress-" + std::to_string(getpid()) + "-" + std::to_string(rd() % 100000);
    // The control: the host reaches every service, so "blocked" below means the rules.
    for (const auto& s : NetnsLab::services()) ASSERT_EQ(NetnsLab::fromHost(s), s) << "host control for " << s;
  }

  void TearDown() override {
    for (const auto& c : containers_) sh("docker rm -f " + c);
    for (auto& n : networks_) {
      if (!n->bridge().empty()) (void)removeSessionFirewall(n->bridge());
    }
    for (const auto& name : network_names_) sh("docker network rm " + name);
  }

  // A session network (created, firewalled) named after the test.
  SessionNetwork& network(const std::string& suffix, const std::string& egress, bool isolate_host = true) {
    auto policy = parseEgressPolicy(egress);
    EXPECT_TRUE(policy.ok()) << egress;
    network_names_.push_back(prefix_ + "-" + suffix);
    networks_.push_back(std::make_unique<SessionNetwork>(*runtime_, network_names_.back(),
                                                         FirewallPlan{isolate_host, policy.value()}));
    Status st = networks_.back()->setUp();
    EXPECT_TRUE(st.ok()) << st.error().message;
    return *networks_.back();
  }

  // A running container on `net` (65534, no capabilities, like a session).
  std::string container(const std::string& suffix, const std::string& net, std::vector<std::string> cmd = {}) {
    ContainerSpec spec;
    spec.name = prefix_ + "-" + suffix;
    spec.image = image();
    spec.user = "65534:65534";
    spec.cmd = cmd.empty() ? std::vector<std::string>{"sleep", "300"} : cmd;
    spec.network = net;
    containers_.push_back(spec.name);
    auto id = runtime_->createContainer(spec);
    EXPECT_TRUE(id.ok()) << id.error().message;
    EXPECT_TRUE(runtime_->startContainer(spec.name).ok());
    return spec.name;
  }

  // Probes every service from inside the container at once: service -> what it answered, or "blocked".
  std::map<std::string, std::string> probe(const std::string& c) {
    std::string targets;
    for (const auto& s : NetnsLab::services()) targets += " " + s;
    std::string script =
        "for t in" + targets + "; do ( r=$(timeout 3 bash -c \"exec 3<>/dev/tcp/${t%:*}/${t##*:} && head -1 <&3\" "
        "2>/dev/null); echo \"$t ${r:-blocked}\" ) & done; wait";
    auto r = sh("docker exec " + c + " bash -c '" + script + "'");
    std::map<std::string, std::string> out;
    std::istringstream lines(r.output);
    std::string target, answer;
    while (lines >> target >> answer) out[target] = answer;
    return out;
  }

  static std::string reached(const std::string& s) { return s; }
  static constexpr const char* kBlocked = "blocked";

  static NetnsLab* lab_;
  static std::string lab_error_;
  DockerRuntimePtr runtime_;
  std::string prefix_;
  std::vector<std::string> containers_;
  std::vector<std::string> network_names_;
  std::vector<std::unique_ptr<SessionNetwork>> networks_;
};

NetnsLab* EgressFirewallTest::lab_ = nullptr;
std::string EgressFirewallTest::lab_error_;

TEST_F(EgressFirewallTest, WithoutRulesASessionReachesEverything) {
  // The measured starting point (and the proof that the probe can succeed).
  auto& net = network("off", "off", /*isolate_host=*/false);
  auto got = probe(container("off", network_names_.back()));
  EXPECT_EQ(got[kMeta], kMeta);
  EXPECT_EQ(got[kLan], kLan);
  EXPECT_EQ(got[kPublic], kPublic);
  EXPECT_FALSE(Iptables(IpFamily::kV4).chainExists(egressChainName(net.bridge())));
}

TEST_F(EgressFirewallTest, DefaultDropsMetadataAndPrivateRangesButNotPublicAddresses) {
  network("default", "");
  auto got = probe(container("default", network_names_.back()));
  EXPECT_EQ(got[kMeta], kBlocked);
  EXPECT_EQ(got[kLan], kBlocked);
  EXPECT_EQ(got[kLanOther], kBlocked);
  EXPECT_EQ(got[kPublic], kPublic);
}

TEST_F(EgressFirewallTest, AllowListOpensExactlyTheAddressAndPortItNames) {
  network("allow", std::string(NetnsLab::kLan) + "/32:8080");
  auto got = probe(container("allow", network_names_.back()));
  EXPECT_EQ(got[kLan], kLan);
  EXPECT_EQ(got[kLanOther], kBlocked) << "another port of the same address";
  EXPECT_EQ(got[kMeta], kBlocked);
  EXPECT_EQ(got[kPublic], kPublic);
}

TEST_F(EgressFirewallTest, MetadataStaysDroppedWhateverElseIsAllowed) {
  network("wide", "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,198.51.100.0/24");
  auto got = probe(container("wide", network_names_.back()));
  EXPECT_EQ(got[kLan], kLan);
  EXPECT_EQ(got[kPublic], kPublic);
  EXPECT_EQ(got[kMeta], kBlocked);
}

TEST_F(EgressFirewallTest, NoneCutsSessionsOffExceptTheAllowList) {
  network("none", "none");
  auto got = probe(container("none", network_names_.back()));
  EXPECT_EQ(got[kPublic], kBlocked);
  EXPECT_EQ(got[kLan], kBlocked);
  EXPECT_EQ(got[kMeta], kBlocked);

  network("none-allow", "none," + std::string(NetnsLab::kLan) + "/32:8080");
  got = probe(container("none-allow", network_names_.back()));
  EXPECT_EQ(got[kLan], kLan);
  EXPECT_EQ(got[kLanOther], kBlocked);
  EXPECT_EQ(got[kPublic], kBlocked);
  EXPECT_EQ(got[kMeta], kBlocked);
}

TEST_F(EgressFirewallTest, RepliesToConnectionsIntoASessionStillFlowUnderNone) {
  auto& net = network("reply", "none");
  // A service in the container, published on the host's end of the veth: the lab
  // connects to it from "outside" (DNAT, FORWARD), and the replies go to 10.213.77.2,
  // a private address that "none" would otherwise drop.
  std::string port = std::to_string(20000 + std::random_device()() % 9000);
  ContainerSpec spec;
  spec.name = prefix_ + "-replier";
  spec.image = image();
  spec.user = "65534:65534";
  spec.network = network_names_.back();
  spec.cmd = {"python3", "-c",
              "import socketserver\n"
              "class H(socketserver.BaseRequestHandler):\n"
              "  def handle(self): self.request.sendall(b'inside\\n')\n"
              "socketserver.TCPServer(('0.0.0.0', 2222), H).serve_forever()\n"};
  spec.publish_host_ip = NetnsLab::kHostSide;
  spec.publish_host_port = std::stoi(port);
  spec.container_port = 2222;
  containers_.push_back(spec.name);
  ASSERT_TRUE(runtime_->createContainer(spec).ok());
  ASSERT_TRUE(runtime_->startContainer(spec.name).ok());
  std::string got;
  for (int i = 0; i < 50 && got != "inside"; ++i) {
    got = NetnsLab::trim(sh("ip netns exec " + lab_->ns() + " timeout 2 bash -c 'exec 3<>/dev/tcp/" +
                            NetnsLab::kHostSide + "/" + port + " && head -1 <&3'")
                             .output);
    if (got != "inside") ::usleep(100 * 1000);
  }
  EXPECT_EQ(got, "inside") << "a client outside reaching the session through its published port";
  EXPECT_TRUE(Iptables(IpFamily::kV4).chainExists(egressChainName(net.bridge())));
}

TEST_F(EgressFirewallTest, RulesAreReplacedWholeAndGoWithTheirNetwork) {
  auto& net = network("life", "");
  std::string c = container("life", network_names_.back());
  EXPECT_EQ(probe(c)[kLan], kBlocked);
  // Applied again with another policy (a restart with other flags): replaced, not stacked.
  auto allow = parseEgressPolicy(std::string(NetnsLab::kLan) + "/32:8080").value();
  ASSERT_TRUE(applySessionFirewall(net.bridge(), {true, allow}).ok());
  ASSERT_TRUE(applySessionFirewall(net.bridge(), {true, allow}).ok());
  Iptables v4(IpFamily::kV4);
  int jumps = 0;
  for (const auto& r : v4.listRules("DOCKER-USER")) {
    for (const auto& a : r) jumps += a == egressChainName(net.bridge());
  }
  EXPECT_EQ(jumps, 1);
  EXPECT_EQ(v4.listRules(egressChainName(net.bridge())).size(), egressRules(allow, IpFamily::kV4).size());
  EXPECT_EQ(probe(c)[kLan], kLan);

  // While a container is attached, shutdown keeps network and rules.
  auto kept = net.tearDownIfUnused();
  ASSERT_TRUE(kept.ok()) << kept.error().message;
  EXPECT_FALSE(kept.value());
  EXPECT_TRUE(v4.chainExists(egressChainName(net.bridge())));
  EXPECT_EQ(probe(c)[kLanOther], kBlocked);

  sh("docker rm -f " + c);
  auto gone = net.tearDownIfUnused();
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_TRUE(gone.value());
  for (IpFamily f : {IpFamily::kV4, IpFamily::kV6}) {
    Iptables ipt(f);
    if (!ipt.available()) continue;
    EXPECT_FALSE(ipt.chainExists(egressChainName(net.bridge()))) << ipt.tool();
    EXPECT_FALSE(ipt.chainExists(hostChainName(net.bridge()))) << ipt.tool();
    for (const char* parent : {"INPUT", "FORWARD", "DOCKER-USER"}) {
      for (const auto& r : ipt.listRules(parent)) {
        for (const auto& a : r) EXPECT_EQ(a.find(net.bridge()), std::string::npos) << ipt.tool() << " " << parent;
      }
    }
  }
}

TEST_F(EgressFirewallTest, StartUpSweepsChainsOfNetworksRemovedBehindSandmansBack) {
  auto& net = network("stale", "none");
  std::string bridge = net.bridge();
  ASSERT_TRUE(Iptables(IpFamily::kV4).chainExists(egressChainName(bridge)));
  ASSERT_EQ(sh("docker network rm " + network_names_.back()).code, 0);
  auto swept = sweepStaleSessionFirewalls();
  EXPECT_NE(std::find(swept.begin(), swept.end(), bridge), swept.end());
  EXPECT_FALSE(Iptables(IpFamily::kV4).chainExists(egressChainName(bridge)));
  EXPECT_FALSE(Iptables(IpFamily::kV4).chainExists(hostChainName(bridge)));
}

TEST_F(EgressFirewallTest, Ipv6ChainsDropTheMetadataAddressWhereIp6tablesWorks) {
  Iptables v6(IpFamily::kV6);
  ASSERT_TRUE(v6.available()) << "ip6tables does not work on this host (install iptables)";
  auto& net = network("v6", "");
  auto rules = v6.listRules(egressChainName(net.bridge()));
  bool metadata = false, ula = false;
  for (const auto& r : rules) {
    std::string line;
    for (const auto& a : r) line += a + " ";
    metadata |= line.find("fd00:ec2::254/128") != std::string::npos && line.find("DROP") != std::string::npos;
    ula |= line.find("fc00::/7") != std::string::npos && line.find("DROP") != std::string::npos;
  }
  EXPECT_TRUE(metadata);
  EXPECT_TRUE(ula);
  // Jumped to from DOCKER-USER where Docker manages ip6tables, else from FORWARD.
  bool jumped = false;
  for (const char* parent : {"DOCKER-USER", "FORWARD"}) {
    for (const auto& r : v6.listRules(parent)) {
      for (const auto& a : r) jumped |= a == egressChainName(net.bridge());
    }
  }
  EXPECT_TRUE(jumped);
}

}  // namespace
}  // namespace sandman
