#include "runtime/session_firewall.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>

#include "common/log.h"
#include "runtime/iptables.h"

namespace sandman {
namespace {

constexpr const char* kHostPrefix = "SANDMAN-IN-";
constexpr const char* kEgressPrefix = "SANDMAN-EG-";
// Chains other rules of ours may jump from.
const std::vector<std::string> kParents = {"INPUT", "FORWARD", "DOCKER-USER"};

bool validBridgeName(const std::string& name) {
  if (name.empty() || name.size() > 15) return false;  // IFNAMSIZ - 1
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

bool interfaceExists(const std::string& name) {
  struct stat st;
  return ::stat(("/sys/class/net/" + name).c_str(), &st) == 0;
}

std::string quoted(const std::string& arg) {
  if (arg.find_first_of(" \t\"") == std::string::npos && !arg.empty()) return arg;
  std::string out = "\"";
  for (char c : arg) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

Error iptablesError(const Iptables& ipt, const std::string& what, const CommandOutput& r) {
  return unavailable(std::string(ipt.tool()) + " could not " + what + " (exit " + std::to_string(r.exit_code) +
                     "): " + r.output.substr(0, 300) +
                     "; run sandman serve as root with iptables installed, or start it with "
                     "--isolate-host=false --session-egress off (no session firewall)");
}

// Replaces the whole chain in one iptables-restore transaction.
Status replaceChain(const Iptables& ipt, const std::string& chain, const std::vector<std::vector<std::string>>& rules) {
  // Appended piece by piece: g++ 12 warns falsely (-Wrestrict) on "literal" + std::string&&.
  std::string script = "*filter\n:";
  script.append(chain).append(" - [0:0]\n");
  for (const auto& r : rules) {
    script.append("-A ").append(chain);
    for (const auto& a : r) script.append(" ").append(quoted(a));
    script.append("\n");
  }
  script += "COMMIT\n";
  CommandOutput out = ipt.restore(script);
  if (out.exit_code != 0) return iptablesError(ipt, "load chain " + chain, out);
  return {};
}

Status ensureJump(const Iptables& ipt, const std::string& parent, const std::string& bridge, const std::string& chain) {
  if (ipt.run({"-C", parent, "-i", bridge, "-j", chain}).exit_code == 0) return {};
  CommandOutput out = ipt.run({"-I", parent, "1", "-i", bridge, "-j", chain});
  if (out.exit_code != 0) return iptablesError(ipt, "add a jump from " + parent + " to " + chain, out);
  return {};
}

// Deletes rules of `parent` selected by `match` (exactly as -S printed them).
template <typename Match>
void deleteRules(const Iptables& ipt, const std::string& parent, Match match) {
  for (auto& r : ipt.listRules(parent)) {
    if (!match(r)) continue;
    r[0] = "-D";
    (void)ipt.run(r);
  }
}

bool jumpsTo(const std::vector<std::string>& rule, const std::string& chain) {
  for (size_t i = 0; i + 1 < rule.size(); ++i) {
    if (rule[i] == "-j" && rule[i + 1] == chain) return true;
  }
  return false;
}

void removeChain(const Iptables& ipt, const std::string& chain) {
  if (!ipt.chainExists(chain)) return;
  for (const auto& parent : kParents) {
    deleteRules(ipt, parent, [&](const std::vector<std::string>& r) { return jumpsTo(r, chain); });
  }
  (void)ipt.run({"-F", chain});
  (void)ipt.run({"-X", chain});
}

// Earlier versions put two rules per bridge straight into INPUT, commented "sandman: ...".
std::string legacyInputRuleBridge(const std::vector<std::string>& rule) {
  std::string bridge;
  bool ours = false;
  for (size_t i = 0; i + 1 < rule.size(); ++i) {
    if (rule[i] == "-i") bridge = rule[i + 1];
    if (rule[i] == "--comment" && rule[i + 1].rfind("sandman:", 0) == 0) ours = true;
  }
  return ours ? bridge : "";
}

std::vector<std::vector<std::string>> hostRules(IpFamily family) {
  std::vector<std::vector<std::string>> rules = {
      {"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-m", "comment", "--comment",
       "sandman: replies to host-opened connections", "-j", "ACCEPT"}};
  if (family == IpFamily::kV6) {
    // IPv6 finds its router through the host (neighbour discovery): without it
    // an IPv6 session network could not route at all.
    for (const char* type : {"neighbour-solicitation", "neighbour-advertisement", "router-solicitation"}) {
      rules.push_back({"-p", "ipv6-icmp", "--icmpv6-type", type, "-m", "comment", "--comment",
                       "sandman: neighbour discovery", "-j", "ACCEPT"});
    }
  }
  rules.push_back({"-m", "comment", "--comment", "sandman: sessions may not reach the host", "-j", "DROP"});
  return rules;
}

Status applyFamily(const Iptables& ipt, const std::string& bridge, const FirewallPlan& plan) {
  deleteRules(ipt, "INPUT", [&](const std::vector<std::string>& r) { return legacyInputRuleBridge(r) == bridge; });
  const std::string in_chain = hostChainName(bridge), eg_chain = egressChainName(bridge);
  if (plan.isolate_host) {
    if (auto st = replaceChain(ipt, in_chain, hostRules(ipt.family())); !st.ok()) return st;
    if (auto st = ensureJump(ipt, "INPUT", bridge, in_chain); !st.ok()) return st;
  } else {
    removeChain(ipt, in_chain);
  }
  if (!plan.egress.enabled) {
    removeChain(ipt, eg_chain);
    return {};
  }
  if (auto st = replaceChain(ipt, eg_chain, egressRules(plan.egress, ipt.family())); !st.ok()) return st;
  // DOCKER-USER is Docker's place for rules that must run before its own.
  const std::string parent = ipt.chainExists("DOCKER-USER") ? "DOCKER-USER" : "FORWARD";
  return ensureJump(ipt, parent, bridge, eg_chain);
}

}  // namespace

std::string hostChainName(const std::string& bridge) { return kHostPrefix + bridge; }
std::string egressChainName(const std::string& bridge) { return kEgressPrefix + bridge; }

Status applySessionFirewall(const std::string& bridge, const FirewallPlan& plan) {
  if (!validBridgeName(bridge)) return invalid("'" + bridge + "' is not a network interface name");
  Iptables v4(IpFamily::kV4), v6(IpFamily::kV6);
  if (plan.isolate_host || plan.egress.enabled) {
    if (!v4.available()) return iptablesError(v4, "read the filter table", v4.run({"-S", "INPUT"}));
  }
  if (auto st = applyFamily(v4, bridge, plan); !st.ok()) return st;
  if (!plan.isolate_host && !plan.egress.enabled) return applyFamily(v6, bridge, plan);  // removals only
  if (!v6.available()) {
    logInfo("ip6tables unavailable: session firewall is IPv4 only (Docker networks here have no IPv6)",
            {{"bridge", bridge}});
    return {};
  }
  return applyFamily(v6, bridge, plan);
}

Status removeSessionFirewall(const std::string& bridge) {
  if (!validBridgeName(bridge)) return invalid("'" + bridge + "' is not a network interface name");
  for (IpFamily f : {IpFamily::kV4, IpFamily::kV6}) {
    Iptables ipt(f);
    if (!ipt.available()) continue;
    deleteRules(ipt, "INPUT", [&](const std::vector<std::string>& r) { return legacyInputRuleBridge(r) == bridge; });
    removeChain(ipt, hostChainName(bridge));
    removeChain(ipt, egressChainName(bridge));
  }
  return {};
}

std::vector<std::string> sweepStaleSessionFirewalls() {
  std::vector<std::string> swept;
  for (IpFamily f : {IpFamily::kV4, IpFamily::kV6}) {
    Iptables ipt(f);
    if (!ipt.available()) continue;
    for (const auto& chain : ipt.chains()) {
      for (const std::string prefix : {kHostPrefix, kEgressPrefix}) {
        if (chain.rfind(prefix, 0) != 0) continue;
        std::string bridge = chain.substr(prefix.size());
        if (interfaceExists(bridge)) continue;
        removeChain(ipt, chain);
        if (std::find(swept.begin(), swept.end(), bridge) == swept.end()) swept.push_back(bridge);
      }
    }
    deleteRules(ipt, "INPUT", [&](const std::vector<std::string>& r) {
      std::string bridge = legacyInputRuleBridge(r);
      return !bridge.empty() && !interfaceExists(bridge);
    });
  }
  return swept;
}

}  // namespace sandman
