#include "runtime/egress_policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <sstream>

namespace sandman {
namespace {

// Cloud metadata lives on link-local addresses (AWS, GCP, Azure: 169.254.169.254;
// AWS over IPv6: fd00:ec2::254); nothing a session needs is there.
const std::vector<std::string> kMetadataV4 = {"169.254.0.0/16"};
const std::vector<std::string> kMetadataV6 = {"fe80::/10", "fd00:ec2::254/128"};
// RFC 1918, carrier-grade NAT (RFC 6598), unique local IPv6 (RFC 4193).
const std::vector<std::string> kPrivateV4 = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"};
const std::vector<std::string> kPrivateV6 = {"fc00::/7"};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) {
    size_t a = part.find_first_not_of(" \t"), b = part.find_last_not_of(" \t");
    out.push_back(a == std::string::npos ? "" : part.substr(a, b - a + 1));
  }
  return out;
}

bool parseInt(const std::string& s, int lo, int hi, int* out) {
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  int v = std::stoi(s);
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

// The first `prefix` bits of two addresses of the same family are equal.
bool samePrefix(const unsigned char* a, const unsigned char* b, int prefix) {
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a, b, static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

// True when the networks `cidr` and `other` overlap (one contains the other).
bool overlaps(int af, const unsigned char* addr, int prefix, const std::string& other) {
  size_t slash = other.find('/');
  unsigned char net[16] = {};
  if (inet_pton(af, other.substr(0, slash).c_str(), net) != 1) return false;
  int other_prefix = std::stoi(other.substr(slash + 1));
  return samePrefix(addr, net, std::min(prefix, other_prefix));
}

Result<EgressAllow> parseAllow(const std::string& entry) {
  const std::string hint = "'" + entry + "' is not CIDR[:port] (e.g. 10.1.2.3/32:3142, 192.168.5.0/24, fd12::/64)";
  size_t slash = entry.find('/');
  if (slash == std::string::npos) return invalid("--session-egress: " + hint);
  std::string addr = entry.substr(0, slash);
  std::string rest = entry.substr(slash + 1);
  EgressAllow allow;
  std::string prefix_text = rest;
  if (size_t colon = rest.find(':'); colon != std::string::npos) {
    prefix_text = rest.substr(0, colon);
    if (!parseInt(rest.substr(colon + 1), 1, 65535, &allow.port)) {
      return invalid("--session-egress: port in '" + entry + "' must be 1-65535");
    }
  }
  unsigned char bytes[16] = {};
  int af = AF_INET;
  if (inet_pton(AF_INET, addr.c_str(), bytes) != 1) {
    af = AF_INET6;
    if (inet_pton(AF_INET6, addr.c_str(), bytes) != 1) return invalid("--session-egress: " + hint);
    allow.family = IpFamily::kV6;
  }
  int prefix = 0;
  if (!parseInt(prefix_text, 0, af == AF_INET ? 32 : 128, &prefix)) return invalid("--session-egress: " + hint);
  for (const auto& meta : af == AF_INET ? kMetadataV4 : kMetadataV6) {
    if (overlaps(af, bytes, prefix, meta)) {
      return invalid("--session-egress: '" + entry + "' overlaps " + meta +
                     " (link-local / cloud metadata), which sessions may never reach");
    }
  }
  allow.cidr = addr + "/" + prefix_text;
  return allow;
}

std::vector<std::string> comment(const std::string& text) { return {"-m", "comment", "--comment", "sandman: " + text}; }

std::vector<std::string> rule(std::vector<std::string> match, const std::string& target, const std::string& why) {
  auto c = comment(why);
  match.insert(match.end(), c.begin(), c.end());
  match.push_back("-j");
  match.push_back(target);
  return match;
}

bool inAny(int af, const unsigned char* addr, const std::vector<std::string>& nets) {
  for (const auto& n : nets) {
    if (overlaps(af, addr, af == AF_INET ? 32 : 128, n)) return true;
  }
  return false;
}

}  // namespace

Result<EgressPolicy> parseEgressPolicy(const std::string& text) {
  EgressPolicy policy;
  if (text.find_first_not_of(" \t") == std::string::npos) return policy;
  auto entries = split(text, ',');
  for (const auto& e : entries) {
    if (e == "off") {
      if (entries.size() != 1) return invalid("--session-egress: 'off' cannot be combined with other entries");
      policy.enabled = false;
    } else if (e == "none") {
      policy.deny_all = true;
    } else if (e.empty()) {
      return invalid("--session-egress: empty entry in '" + text + "'");
    } else {
      auto allow = parseAllow(e);
      if (!allow.ok()) return allow.error();
      policy.allow.push_back(std::move(allow).value());
    }
  }
  return policy;
}

std::string describeEgressPolicy(const EgressPolicy& policy) {
  if (!policy.enabled) return "off (no egress rules)";
  std::string out = policy.deny_all ? "none (all egress dropped)" : "default (metadata and private ranges dropped)";
  for (size_t i = 0; i < policy.allow.size(); ++i) {
    const auto& a = policy.allow[i];
    out += i == 0 ? " + allow " : ",";
    out += a.cidr;
    if (a.port != 0) out.append(":").append(std::to_string(a.port));
  }
  return out;
}

std::vector<std::vector<std::string>> egressRules(const EgressPolicy& policy, IpFamily family) {
  std::vector<std::vector<std::string>> rules;
  if (!policy.enabled) return rules;
  // Replies to connections opened towards the session (SSH through a published port).
  rules.push_back(rule({"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED"}, "RETURN", "replies"));
  for (const auto& net : family == IpFamily::kV4 ? kMetadataV4 : kMetadataV6) {
    rules.push_back(rule({"-d", net}, "DROP", "link-local and cloud metadata"));
  }
  for (const auto& a : policy.allow) {
    if (a.family != family) continue;
    if (a.port == 0) {
      rules.push_back(rule({"-d", a.cidr}, "RETURN", "--session-egress allow"));
      continue;
    }
    for (const char* proto : {"tcp", "udp"}) {
      rules.push_back(rule({"-d", a.cidr, "-p", proto, "--dport", std::to_string(a.port)}, "RETURN",
                           "--session-egress allow"));
    }
  }
  if (policy.deny_all) {
    rules.push_back(rule({}, "DROP", "--session-egress none"));
    return rules;
  }
  for (const auto& net : family == IpFamily::kV4 ? kPrivateV4 : kPrivateV6) {
    rules.push_back(rule({"-d", net}, "DROP", "private ranges"));
  }
  return rules;
}

}  // namespace sandman

namespace sandman {

bool egressAllows(const EgressPolicy& policy, const std::string& ip, int port) {
  unsigned char addr[16] = {};
  int af = AF_INET;
  if (inet_pton(AF_INET, ip.c_str(), addr) != 1) {
    af = AF_INET6;
    if (inet_pton(AF_INET6, ip.c_str(), addr) != 1) return false;
  }
  if (!policy.enabled) return true;
  // The same order as egressRules().
  if (inAny(af, addr, af == AF_INET ? kMetadataV4 : kMetadataV6)) return false;
  for (const auto& a : policy.allow) {
    if ((a.family == IpFamily::kV4) != (af == AF_INET)) continue;
    if ((a.port == 0 || a.port == port) && inAny(af, addr, {a.cidr})) return true;
  }
  if (policy.deny_all) return false;
  return !inAny(af, addr, af == AF_INET ? kPrivateV4 : kPrivateV6);
}

}  // namespace sandman
