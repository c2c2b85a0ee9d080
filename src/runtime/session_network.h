// SessionNetwork: the Docker bridge that session containers join, with its
// firewall (host isolation, egress policy): set up at start-up, torn down with
// the network. Thread-compatible: used by serve's start-up and shutdown only.
#pragma once

#include <string>

#include "common/result.h"
#include "runtime/docker_runtime.h"
#include "runtime/session_firewall.h"

namespace sandman {

class SessionNetwork {
 public:
  SessionNetwork(DockerRuntime& runtime, std::string name, FirewallPlan plan);

  // Creates the network if absent, removes firewall leftovers of networks
  // that are gone, and puts this network's chains in place (replacing those a
  // previous run left, so a restart with other flags takes effect at once).
  Status setUp();
  // When no container is attached, the network goes and its chains with it;
  // while sessions run both stay, so they stay fenced with no daemon up.
  // True when removed.
  Result<bool> tearDownIfUnused();
  // The bridge interface, known after setUp().
  const std::string& bridge() const { return bridge_; }

 private:
  void warnAboutBlockedResolvers() const;

  DockerRuntime& runtime_;
  const std::string name_;
  const FirewallPlan plan_;
  std::string bridge_;
};

}  // namespace sandman
