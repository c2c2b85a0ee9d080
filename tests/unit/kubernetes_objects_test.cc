// The objects a session is made of on Kubernetes, and what pod states mean
// for it. The API server itself checks them in tests/k8s (Pod Security
// `restricted`, strict field validation, the real scheduler).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/kubernetes_runtime.h"

namespace sandman {
namespace {

using json = nlohmann::json;

SessionWorkload gpuWorkload() {
  SessionWorkload w;
  w.session_id = "s-0123456789abcdef";
  w.user_id = "alice";
  w.image = "sandman-workspace:latest";
  w.uid = 2001;
  w.gid = 2001;
  w.env = {"HOME=/workspace", "USER=alice"};
  w.gpu_resource = "nvidia.com/mig-1g.10gb";
  w.gpu_product = "NVIDIA-H100-80GB-HBM3";
  w.memory_bytes = 4LL << 30;
  w.nano_cpus = 2000000000;
  return w;
}

TEST(KubernetesObjects, PodIsNamedAfterTheSessionAndRestricted) {
  KubernetesOptions o;
  o.instance = "lab";
  json pod = sessionPodJson(gpuWorkload(), o);
  EXPECT_EQ(pod["metadata"]["name"], "sess-s-0123456789abcdef");
  EXPECT_EQ(pod["metadata"]["namespace"], "sandman-sessions");
  EXPECT_EQ(pod["metadata"]["labels"]["sandman.io/instance"], "lab");
  EXPECT_EQ(pod["metadata"]["labels"]["app.kubernetes.io/component"], "session");
  const json& spec = pod["spec"];
  EXPECT_EQ(spec["restartPolicy"], "Never");
  EXPECT_EQ(spec["enableServiceLinks"], false);
  EXPECT_EQ(spec["automountServiceAccountToken"], false);
  EXPECT_GT(spec["activeDeadlineSeconds"].get<int64_t>(), 24 * 3600);
  EXPECT_EQ(spec["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(spec["securityContext"]["runAsUser"], 2001);
  EXPECT_EQ(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  const json& c = spec["containers"][0];
  EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["ports"][0]["containerPort"], 2222);
  EXPECT_EQ(c["readinessProbe"]["tcpSocket"]["port"], 2222);
}

TEST(KubernetesObjects, GpuIsRequestedAtItsLimitOnTheChosenModelTolerantOfGpuNodes) {
  json spec = sessionPodJson(gpuWorkload(), KubernetesOptions{})["spec"];
  const json& res = spec["containers"][0]["resources"];
  EXPECT_EQ(res["requests"]["nvidia.com/mig-1g.10gb"], "1");
  EXPECT_EQ(res["limits"]["nvidia.com/mig-1g.10gb"], "1");
  EXPECT_EQ(res["limits"]["memory"], std::to_string(4LL << 30));
  EXPECT_EQ(res["limits"]["cpu"], "2000m");
  EXPECT_EQ(spec["nodeSelector"]["nvidia.com/gpu.product"], "NVIDIA-H100-80GB-HBM3");
  EXPECT_EQ(spec["tolerations"][0]["key"], "nvidia.com/gpu");

  SessionWorkload cpu = gpuWorkload();
  cpu.gpu_resource.clear();
  cpu.gpu_product.clear();
  json cpu_spec = sessionPodJson(cpu, KubernetesOptions{})["spec"];
  EXPECT_FALSE(cpu_spec.contains("tolerations")) << "CPU sessions stay off GPU nodes";
  EXPECT_FALSE(cpu_spec.contains("nodeSelector"));
}

TEST(KubernetesObjects, SecretIsImmutableOwnedByThePodAndCarriesTheFiles) {
  json secret = sessionSecretJson(gpuWorkload(), KubernetesOptions{}, {{"authorized_keys", "ssh-ed25519 AAAA"}},
                                  "uid-1");
  EXPECT_EQ(secret["metadata"]["name"], "sess-s-0123456789abcdef-ssh");
  EXPECT_EQ(secret["immutable"], true);
  const json& owner = secret["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["kind"], "Pod");
  EXPECT_EQ(owner["uid"], "uid-1");
  EXPECT_EQ(owner["blockOwnerDeletion"], false);
  EXPECT_EQ(secret["data"]["authorized_keys"], "c3NoLWVkMjU1MTkgQUFBQQ==");
}

TEST(KubernetesObjects, WorkspaceClaimNamesAreValidAndDistinctPerUser) {
  EXPECT_EQ(workspaceClaimName("alice"), "ws-alice");
  std::string a = workspaceClaimName("bob_x"), b = workspaceClaimName("bob-x");
  EXPECT_NE(a, b) << "'_' is not allowed in object names, and must not merge two users";
  EXPECT_EQ(a.find('_'), std::string::npos);
  json claim = workspaceClaimJson("alice", KubernetesOptions{});
  EXPECT_EQ(claim["spec"]["accessModes"], json::array({"ReadWriteOnce"}));
  EXPECT_EQ(claim["spec"]["resources"]["requests"]["storage"], "50Gi");
  EXPECT_FALSE(claim["metadata"].contains("ownerReferences")) << "the workspace outlives sessions";
}

PodView pod(const std::string& phase) {
  PodView p;
  p.name = "sess-s-0123456789abcdef";
  p.labels = {{"sandman.io/session", "s-0123456789abcdef"}};
  p.phase = phase;
  return p;
}

TEST(KubernetesObjects, ReadyPodAnswersOnItsIpAndPort2222) {
  PodView p = pod("Running");
  p.pod_ip = "10.244.1.7";
  WorkloadInfo notyet = workloadFromPod(p);
  EXPECT_TRUE(notyet.running);
  EXPECT_FALSE(notyet.endpoint) << "not Ready yet";
  p.ready = true;
  WorkloadInfo w = workloadFromPod(p);
  EXPECT_EQ(w.session_id, "s-0123456789abcdef");
  ASSERT_TRUE(w.endpoint);
  EXPECT_EQ(w.endpoint->host, "10.244.1.7");
  EXPECT_EQ(w.endpoint->port, 2222);
  EXPECT_TRUE(w.problem.empty());
}

TEST(KubernetesObjects, FailuresAreSaidInPlainWords) {
  PodView unschedulable = pod("Pending");
  unschedulable.unschedulable_message =
      "0/2 nodes are available: 2 Insufficient nvidia.com/mig-1g.10gb. preemption: 0/2 nodes are available: "
      "2 No preemption victims found for incoming pod.";
  WorkloadInfo u = workloadFromPod(unschedulable);
  EXPECT_EQ(u.problem.rfind("no node has a free nvidia.com/mig-1g.10gb (scheduler: 0/2", 0), 0u) << u.problem;
  EXPECT_EQ(u.problem_kind, ErrorKind::kConflict);

  PodView binding = pod("Pending");
  binding.unschedulable_message = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.";
  WorkloadInfo b = workloadFromPod(binding);
  EXPECT_TRUE(b.problem.empty()) << "a claim being bound is waited for: " << b.problem;
  EXPECT_NE(b.waiting_for.find("unbound immediate PersistentVolumeClaims"), std::string::npos);

  PodView model = pod("Pending");
  model.unschedulable_message = "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.";
  EXPECT_EQ(workloadFromPod(model).problem.rfind("no node has the GPU model asked for", 0), 0u);

  PodView pull = pod("Pending");
  pull.waiting_reason = "ImagePullBackOff";
  pull.waiting_message = "Back-off pulling image \"nosuch:1\"";
  WorkloadInfo p = workloadFromPod(pull);
  EXPECT_NE(p.problem.find("cannot be pulled (ImagePullBackOff)"), std::string::npos) << p.problem;
  EXPECT_EQ(p.problem_kind, ErrorKind::kInvalid);

  PodView deadline = pod("Failed");
  deadline.reason = "DeadlineExceeded";
  deadline.message = "Pod was active on the node longer than the specified deadline";
  WorkloadInfo d = workloadFromPod(deadline);
  EXPECT_FALSE(d.running);
  EXPECT_EQ(d.state, "Failed (DeadlineExceeded)");
  EXPECT_NE(d.problem.find("DeadlineExceeded"), std::string::npos);

  PodView deleting = pod("Running");
  deleting.deleting = true;
  EXPECT_FALSE(workloadFromPod(deleting).running);
}

}  // namespace
}  // namespace sandman
