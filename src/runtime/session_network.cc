#include "runtime/session_network.h"

#include "common/log.h"

namespace sandman {

SessionNetwork::SessionNetwork(Runtime& runtime, std::string name, FirewallPlan plan)
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
  logInfo("session network ready", {{"network", name_}, {"bridge", bridge_},
                                    {"isolate_host", plan_.isolate_host ? "on" : "off"},
                                    {"egress", describeEgressPolicy(plan_.egress)}});
  return {};
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
