// MigLayouts: MIG layout changes on cluster nodes, made the GPU operator's way.
// Sandman proposes a layout for a node; an admin approves it; Sandman then
// holds the node (no new session is placed there), sets the node label
// nvidia.com/mig.config and follows nvidia.com/mig.config.state as the
// operator's MIG manager reports it: success lets the node go, failed keeps it
// held until an admin releases it. Sandman never drives NVML on such a node.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "runtime/kube_client.h"
#include "runtime/node_cache.h"
#include "runtime/node_inventory.h"
#include "runtime/pod_cache.h"
#include "store/mig_layout_store.h"

namespace sandman {

struct MigLayoutOptions {
  // How long an approval waits for this daemon's unscheduled session pods
  // (made before the node was held) to land somewhere, before it counts the
  // sessions on the node.
  Millis settle{std::chrono::seconds(10)};
  // An approved change the MIG manager has not finished by then is failed.
  Millis operator_timeout{std::chrono::minutes(15)};
};

// A label value Kubernetes accepts: 1-63 of [A-Za-z0-9-_.], alphanumeric at both ends.
bool validMigConfigName(const std::string& name);

class MigLayouts {
 public:
  MigLayouts(KubeClient& client, const NodeCache& nodes, const PodCache& pods, MigLayoutStore& store,
             const Clock& clock, MigLayoutOptions options = {});
  ~MigLayouts();
  MigLayouts(const MigLayouts&) = delete;
  MigLayouts& operator=(const MigLayouts&) = delete;

  // Loads the held nodes and in-flight changes from the store; starts the timeout thread.
  Status start();
  void stop();
  // Feed every node change here (the node cache's listener), in order.
  void onNode(const std::string& name, const std::optional<NodeView>& node);

  // Nodes held now and why (what launches exclude and the inventory shows).
  NodeHolds holds() const;
  std::vector<std::string> heldNodes() const;

  // A new proposal (a node's earlier unapproved one is superseded).
  Result<MigLayoutProposal> propose(const std::string& node, const std::string& config, const std::string& by);
  // Approves the node's open proposal: holds the node, refuses (kConflict, the
  // node let go again) while sessions of this daemon run there, else sets the label.
  Result<MigLayoutProposal> approve(const std::string& node, const std::string& by);
  // Withdraws an unapproved proposal, or lets go of a node whose change failed.
  Result<MigLayoutProposal> release(const std::string& node, const std::string& by);
  Result<std::vector<MigLayoutProposal>> list(const std::string& node, size_t limit = 100);

 private:
  Result<MigLayoutProposal> latest(const std::string& node);
  Status save(MigLayoutProposal& p, const std::string& state, const std::string& message);
  void finish(MigLayoutProposal p, const std::string& state, const std::string& message);
  void run();

  KubeClient& client_;
  const NodeCache& nodes_;
  const PodCache& pods_;
  MigLayoutStore& store_;
  const Clock& clock_;
  const MigLayoutOptions options_;

  std::mutex approve_mu_;  // one propose/approve/release at a time
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> holds_;        // guarded by mu_: node -> why
  std::map<std::string, MigLayoutProposal> flight_;  // guarded by mu_: node -> its applying/pending change
  bool stop_ = false;                               // guarded by mu_
  std::thread thread_;
};

}  // namespace sandman
