#include "runtime/session_network.h"

#include <fstream>
#include <sstream>

#include "common/log.h"

namespace sandman {

SessionNetwork::SessionNetwork(DockerRuntime& runtime, std::string name, FirewallPlan plan)
    : runtime_(runtime), name_(std::move(name)), plan_(std::move(plan)) {}

Status SessionNetwork::setUp() {
  if (auto st = runtime_.ensureNetwork(name_); !st.ok()) return st;
  auto iface = runtime_.networkInterface(name_);
  if (!iface.ok()) return iface.error();
  bridge_ = iface.value();
  if (plan_.isolate_host || plan_.egress.enabled) {
    for (const auto& gone : sweepStaleSessionFirewalls()) {
      logInfo("removed the firewall chains of a session network that is gone", {{"bridge", gone}});
    }
  }
  if (auto st = applySessionFirewall(bridge_, plan_); !st.ok()) return st;
  warnAboutBlockedResolvers();
  logInfo("session network ready", {{"network", name_}, {"bridge", bridge_},
                                    {"isolate_host", plan_.isolate_host ? "on" : "off"},
                                    {"egress", describeEgressPolicy(plan_.egress)}});
  return {};
}

// Docker's embedded DNS asks the host's resolvers from inside the session's
// network, so a resolver in a dropped range means sessions cannot resolve names.
void SessionNetwork::warnAboutBlockedResolvers() const {
  std::ifstream conf("/etc/resolv.conf");
  std::string line;
  while (std::getline(conf, line)) {
    std::istringstream words(line);
    std::string key, ip;
    if (!(words >> key >> ip) || key != "nameserver") continue;
    if (ip.rfind("127.", 0) == 0 || ip == "::1") continue;  // Docker substitutes these
    if (egressAllows(plan_.egress, ip, 53)) continue;
    logWarn("the host's DNS resolver is outside the egress policy: sessions cannot resolve names; "
            "allow it, e.g. --session-egress " + ip + (ip.find(':') == std::string::npos ? "/32" : "/128") + ":53",
            {{"resolver", ip}});
  }
}

Result<bool> SessionNetwork::tearDownIfUnused() {
  if (bridge_.empty()) return false;
  // Docker refuses while containers are attached: that refusal is the check,
  // so a session started meanwhile can never lose its rules.
  Status removed = runtime_.removeNetwork(name_);
  if (!removed.ok()) {
    if (removed.error().kind == ErrorKind::kConflict) return false;
    return removed.error();
  }
  if (auto st = removeSessionFirewall(bridge_); !st.ok()) return st.error();
  return true;
}

}  // namespace sandman
