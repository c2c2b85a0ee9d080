// KubernetesRuntime: the Runtime over a Kubernetes API server: a session is a
// Pod `sess-<id>` with its Secret `sess-<id>-ssh` and the user's PVC `ws-<user>`,
// scheduled by Kubernetes onto a node with the GPU resource it asks for.
// Thread-safe: the client is, and pod state is read from the watch cache.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/kube_client.h"
#include "runtime/pod_cache.h"
#include "runtime/runtime.h"

namespace sandman {

struct KubernetesOptions {
  std::string ns = "sandman-sessions";  // where session pods, secrets and workspaces live
  std::string instance = "default";     // the sandman.io/instance label: this daemon's objects
  std::string service_account = "sandman-session";  // no RBAC, no token mounted
  std::string workspace_size = "50Gi";  // a new ws-<user> claim's request
  std::string storage_class;            // empty: the cluster's default class
  std::vector<std::string> allowed_images;
  // activeDeadlineSeconds: a backstop that ends a pod the daemon forgot (it
  // died, or lost its store). Kubernetes never lets a pod's deadline grow, so
  // it is the longest a session may live (--ttl-max) plus this much.
  Millis deadline_backstop{std::chrono::minutes(1440 + 60)};
};

// Object names, derived from the session id or user id so a retried create
// finds what the first attempt made.
std::string sessionPodName(const std::string& session_id);
std::string sessionSecretName(const std::string& session_id);
// The gateway's private key for the session, in a Secret the pod does not mount.
std::string gatewaySecretName(const std::string& session_id);
std::string workspaceClaimName(const std::string& user_id);
// The label selector of this daemon's session pods.
std::string sessionPodSelector(const std::string& instance);

// The objects a session is made of (exposed for unit tests and for the
// manifests test, which checks them against Pod Security `restricted`).
nlohmann::json sessionPodJson(const SessionWorkload& w, const KubernetesOptions& o);
// files: name -> content of the generated sshd files; owner_uid: the pod's uid.
nlohmann::json sessionSecretJson(const SessionWorkload& w, const KubernetesOptions& o,
                                 const std::vector<std::pair<std::string, std::string>>& files,
                                 const std::string& owner_uid);
nlohmann::json gatewaySecretJson(const SessionWorkload& w, const KubernetesOptions& o, const std::string& owner_uid);
// What a session pod records of its session (nullopt: not a session pod this version can adopt).
std::optional<RecordedSession> recordedSessionFromPod(const PodView& pod);
nlohmann::json workspaceClaimJson(const std::string& user_id, const KubernetesOptions& o);
// Keeps the pod off these nodes (a required nodeAffinity term on metadata.name
// NotIn), and says so in the annotation sandman.io/refused-nodes (and why, when
// given, in sandman.io/refused-why).
void excludeNodes(nlohmann::json& pod, const std::vector<std::string>& nodes, const std::string& why = "");
// What a pod's state means for the session, in plain words.
WorkloadInfo workloadFromPod(const PodView& pod);

class KubernetesRuntime final : public Runtime {
 public:
  KubernetesRuntime(std::unique_ptr<KubeClient> client, KubernetesOptions options);
  ~KubernetesRuntime() override;
  // Starts the watch cache and waits for its first list.
  Status start(Millis sync_timeout);

  std::string engineName() const override { return "Kubernetes"; }
  Status ping() override;
  bool directPorts() const override { return false; }
  bool schedulesGpus() const override { return true; }
  bool hostWorkspaces() const override { return false; }
  Result<std::string> launch(const SessionWorkload& w) override;
  Result<WorkloadInfo> inspect(const std::string& id) override;
  Result<WorkloadEndpoint> endpoint(const std::string& id, int direct_port) override;
  Status stop(const std::string& id) override;
  Result<std::vector<WorkloadInfo>> listOurs() override;
  Result<std::vector<RecordedSession>> recordedSessions() override;
  Result<std::string> gatewayKey(const std::string& session_id) override;
  Status recordExpiry(const std::string& workload_id, TimePoint expires_at) override;

  const PodCache& cache() const { return *cache_; }
  KubeClient& client() { return *client_; }
  // Nodes Sandman places no new session on (a MIG layout change in progress);
  // asked at every launch. Set before serving.
  // Nodes new session pods stay off, each with why (a MIG layout change, maintenance).
  void setNodeRefusals(std::function<std::map<std::string, std::string>()> fn) { node_refusals_ = std::move(fn); }
  // The GPU model of a node (GFD's product label; "" unknown), so a pod
  // placed on any node of a model learns which one. Set before serving.
  void setNodeModels(std::function<std::string(const std::string& node)> fn) { node_model_ = std::move(fn); }
  const KubernetesOptions& options() const { return options_; }

 private:
  std::string nsPath(const std::string& resource) const;
  Status ensureWorkspaceClaim(const std::string& user_id);
  Result<std::string> createPod(const SessionWorkload& w);
  Status createSecret(const SessionWorkload& w, const std::string& pod_uid);
  Status createGatewaySecret(const SessionWorkload& w, const std::string& pod_uid);

  std::unique_ptr<KubeClient> client_;
  KubernetesOptions options_;
  std::unique_ptr<PodCache> cache_;
  std::function<std::map<std::string, std::string>()> node_refusals_;
  std::function<std::string(const std::string&)> node_model_;
};

}  // namespace sandman
