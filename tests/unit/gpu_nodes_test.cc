// The cluster's GPU nodes without an API server: a Node's view (GFD labels,
// GPU capacity, Ready, cordon, taints, MIG labels), what this daemon's pods
// hold per node, what fits now, the JSON of /gpu-nodes and the cluster /gpus,
// keeping a pod off held nodes, and MIG config names.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/gpu_node_routes.h"
#include "core/mig_layouts.h"
#include "runtime/kubernetes_runtime.h"
#include "runtime/node_cache.h"
#include "runtime/node_inventory.h"

namespace sandman {
namespace {

using json = nlohmann::json;

json gpuNode(const std::string& name, const std::string& product, json resources, bool ready = true) {
  json labels = {{"kubernetes.io/hostname", name},
                 {"nvidia.com/gpu.product", product},
                 {"nvidia.com/gpu.count", "1"},
                 {"nvidia.com/gpu.memory", "81559"},
                 {"nvidia.com/mig.strategy", "mixed"},
                 {"nvidia.com/mig.capable", "true"},
                 {"nvidia.com/mig.config", "all-balanced"},
                 {"nvidia.com/mig.config.state", "success"},
                 {"nvidia.com/mig-1g.10gb.count", "2"},
                 {"nvidia.com/mig-1g.10gb.memory", "9984"},
                 {"nvidia.com/mig-1g.10gb.multiprocessors", "16"},
                 {"nvidia.com/mig-1g.10gb.slices.gi", "1"},
                 {"nvidia.com/mig-3g.40gb.count", "1"}};
  json capacity = {{"cpu", "16"}, {"memory", "128Gi"}};
  for (const auto& [k, v] : resources.items()) capacity[k] = v;
  return {{"metadata", {{"name", name}, {"uid", "u-" + name}, {"resourceVersion", "7"}, {"labels", labels}}},
          {"spec", {{"taints", json::array({{{"key", "nvidia.com/gpu"}, {"value", "present"}, {"effect", "NoSchedule"}}})}}},
          {"status",
           {{"capacity", capacity},
            {"allocatable", capacity},
            {"conditions", json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"},
                                         {"reason", ready ? "KubeletReady" : "KubeletNotReady"}}})}}}};
}

PodView sessionPod(const std::string& session, const std::string& node, const std::string& resource,
                   const std::string& phase = "Running") {
  PodView p;
  p.name = "sess-" + session;
  p.node_name = node;
  p.phase = phase;
  p.labels["sandman.io/session"] = session;
  p.annotations["sandman.io/gpu-resource"] = resource;
  return p;
}

TEST(NodeView, ParsesGfdLabelsCapacityAndState) {
  json j = gpuNode("gpu-a", "NVIDIA-H100-80GB-HBM3", {{"nvidia.com/mig-1g.10gb", "2"}, {"nvidia.com/mig-3g.40gb", "1"}});
  j["spec"]["unschedulable"] = true;
  NodeView n = nodeViewFromJson(j);
  EXPECT_EQ(n.name, "gpu-a");
  EXPECT_EQ(n.product, "NVIDIA-H100-80GB-HBM3");
  EXPECT_EQ(n.gpu_count, 1);
  EXPECT_EQ(n.gpu_memory_mib, 81559);
  EXPECT_EQ(n.mig_strategy, "mixed");
  EXPECT_TRUE(n.mig_capable);
  EXPECT_EQ(n.mig_config, "all-balanced");
  EXPECT_EQ(n.mig_config_state, "success");
  ASSERT_EQ(n.mig_profiles.size(), 2u);
  EXPECT_EQ(n.mig_profiles["1g.10gb"].count, 2);
  EXPECT_EQ(n.mig_profiles["1g.10gb"].memory_mib, 9984);
  EXPECT_EQ(n.mig_profiles["1g.10gb"].multiprocessors, 16);
  EXPECT_EQ(n.mig_profiles["1g.10gb"].slices_gi, 1);
  EXPECT_EQ(n.mig_profiles["3g.40gb"].count, 1);
  // Only GPU resources are kept, and only nvidia.com/ labels.
  EXPECT_EQ(n.capacity.size(), 2u);
  EXPECT_EQ(n.allocatable.at("nvidia.com/mig-1g.10gb"), 2);
  EXPECT_EQ(n.gpu_labels.count("kubernetes.io/hostname"), 0u);
  EXPECT_TRUE(n.ready);
  EXPECT_TRUE(n.unschedulable);
  ASSERT_EQ(n.taints.size(), 1u);
  EXPECT_EQ(untoleratedTaint(n), "");  // sessions tolerate nvidia.com/gpu:NoSchedule
  EXPECT_TRUE(isGpuNode(n));
  EXPECT_GT(approximateBytes(n), sizeof(NodeView));
}

TEST(NodeView, PlainNodeIsNoGpuNode) {
  NodeView n = nodeViewFromJson(json::parse(
      R"({"metadata":{"name":"cpu-1","labels":{"kubernetes.io/os":"linux"}},
          "spec":{"taints":[{"key":"dedicated","value":"infra","effect":"NoExecute"}]},
          "status":{"capacity":{"cpu":"8"}}})"));
  EXPECT_FALSE(isGpuNode(n));
  EXPECT_EQ(untoleratedTaint(n), "dedicated=infra:NoExecute");
  EXPECT_FALSE(n.ready);
  // Garbage never throws.
  NodeView empty = nodeViewFromJson(json::parse(R"({"metadata":7,"status":{"conditions":"x"}})"));
  EXPECT_EQ(empty.name, "");
}

TEST(NodeView, ParseCount) {
  EXPECT_EQ(parseCount("7"), 7);
  EXPECT_EQ(parseCount("2k"), 2000);
  EXPECT_EQ(parseCount("500m"), -1);
  EXPECT_EQ(parseCount(""), -1);
  EXPECT_EQ(parseCount("-1"), -1);
  EXPECT_EQ(parseCount("x"), -1);
}

std::vector<NodeView> threeNodes() {
  return {nodeViewFromJson(gpuNode("gpu-a", "H100", {{"nvidia.com/mig-1g.10gb", "2"}, {"nvidia.com/mig-3g.40gb", "1"}})),
          nodeViewFromJson(gpuNode("gpu-b", "A100", {{"nvidia.com/mig-1g.10gb", "7"}})),
          nodeViewFromJson(gpuNode("gpu-c", "RTX", {{"nvidia.com/gpu", "1"}}, /*ready=*/false)),
          nodeViewFromJson(json::parse(R"({"metadata":{"name":"cpu-1"},"status":{"capacity":{"cpu":"8"}}})"))};
}

TEST(NodeInventory, CountsThisDaemonsPodsAndFitsNow) {
  std::vector<PodView> pods = {sessionPod("s-1", "gpu-a", "nvidia.com/mig-1g.10gb"),
                               sessionPod("s-2", "gpu-b", "nvidia.com/mig-1g.10gb", "Pending"),
                               sessionPod("s-3", "gpu-b", "nvidia.com/mig-1g.10gb", "Succeeded"),  // holds nothing
                               sessionPod("s-4", "", "nvidia.com/mig-1g.10gb", "Pending")};      // not bound yet
  auto nodes = clusterNodes(threeNodes(), pods, {});
  ASSERT_EQ(nodes.size(), 3u);  // GPU nodes only
  EXPECT_EQ(nodes[0].in_use.at("nvidia.com/mig-1g.10gb"), 1);
  EXPECT_EQ(nodes[0].sessions, std::vector<std::string>{"s-1"});
  EXPECT_EQ(nodes[1].in_use.at("nvidia.com/mig-1g.10gb"), 1);
  EXPECT_EQ(nodes[2].refusal, "not Ready (KubeletNotReady)");
  auto fits = fitsNow(nodes);
  ASSERT_EQ(fits.size(), 3u);  // gpu, mig-1g.10gb, mig-3g.40gb
  EXPECT_EQ(fits[0].resource, "nvidia.com/gpu");
  EXPECT_EQ(fits[0].fits, 0);  // only on the node that is not Ready
  EXPECT_EQ(fits[1].resource, "nvidia.com/mig-1g.10gb");
  EXPECT_EQ(fits[1].profile, "1g.10gb");
  EXPECT_EQ(fits[1].fits, 1 + 6);
  EXPECT_EQ(fits[1].nodes.at("gpu-a"), 1);
  EXPECT_EQ(fits[1].nodes.at("gpu-b"), 6);
  EXPECT_EQ(fits[1].products.at("gpu-b"), "A100");
  EXPECT_EQ(fits[2].fits, 1);
}

TEST(NodeInventory, CordonHoldsPendingLayoutsAndTaintsRefuse) {
  auto views = threeNodes();
  views[1].unschedulable = true;
  auto nodes = clusterNodes(views, {}, {{"gpu-a", "MIG layout all-1g.10gb being applied (proposal 3)"}});
  EXPECT_EQ(nodes[0].refusal, "MIG layout all-1g.10gb being applied (proposal 3)");
  EXPECT_EQ(nodes[1].refusal, "cordoned (spec.unschedulable)");
  auto fits = fitsNow(nodes);
  EXPECT_EQ(fits[1].fits, 0);
  EXPECT_TRUE(fits[1].nodes.empty());

  views = threeNodes();
  views[0].mig_config_state = "pending";
  views[1].taints.push_back({"maintenance", "", "NoSchedule"});
  nodes = clusterNodes(views, {}, {});
  EXPECT_EQ(nodes[0].refusal, "the GPU operator is applying MIG layout all-balanced");
  EXPECT_EQ(nodes[1].refusal, "tainted maintenance:NoSchedule");
}

TEST(GpuNodeJson, NodeAndClusterViews) {
  auto nodes = clusterNodes(threeNodes(), {sessionPod("s-1", "gpu-a", "nvidia.com/mig-1g.10gb")},
                            {{"gpu-b", "MIG layout x being applied (proposal 1)"}});
  json a = gpuNodeJson(nodes[0], false);
  EXPECT_EQ(a["product"], "H100");
  EXPECT_EQ(a["takes_sessions"], true);
  EXPECT_TRUE(a["held_by_sandman"].is_null());
  EXPECT_EQ(a["resources"][0]["resource"], "nvidia.com/mig-1g.10gb");
  EXPECT_EQ(a["resources"][0]["in_use"], 1);
  EXPECT_EQ(a["resources"][0]["free"], 1);
  EXPECT_FALSE(a.contains("gpu_labels"));
  EXPECT_TRUE(gpuNodeJson(nodes[0], true).contains("gpu_labels"));
  EXPECT_TRUE(a["labels"].empty());  // Sandman's own metadata: none set
  EXPECT_EQ(a["status"], "active");
  json b = gpuNodeJson(nodes[1], false);
  EXPECT_EQ(b["held_by_sandman"], "MIG layout x being applied (proposal 1)");
  EXPECT_EQ(b["resources"][0]["free"], 0);

  json inv = clusterGpusJson(nodes, "inventory");
  EXPECT_EQ(inv["count"], 3);  // one GPU per node (gpu.count)
  EXPECT_EQ(inv["gpus"][0]["node"], "gpu-a");
  EXPECT_EQ(inv["gpus"][0]["mig_enabled"], true);
  EXPECT_TRUE(inv["gpus"][0]["uuid"].is_null());
  EXPECT_EQ(inv["gpus"][2]["mig_enabled"], false);

  json prof = clusterGpusJson(nodes, "profiles");
  ASSERT_EQ(prof["count"], 2);
  EXPECT_EQ(prof["profiles"][0]["name"], "1g.10gb");
  EXPECT_EQ(prof["profiles"][0]["instance_count"], 9);
  EXPECT_EQ(prof["profiles"][0]["memory_mib"], 9984);

  json avail = clusterGpusJson(nodes, "available");
  EXPECT_EQ(avail["count"], 2);  // gpu-a: one 1g.10gb and one 3g.40gb free; gpu-b held; gpu-c not Ready
  EXPECT_EQ(avail["available_instances"].size(), 2u);
  EXPECT_EQ(avail["nodes_not_taking_sessions"].size(), 2u);
  EXPECT_EQ(avail["fits_now"][1]["fits"], 1);
}

TEST(ExcludeNodes, AddsARequiredNotInTermAndTheAnnotation) {
  json pod = {{"metadata", {{"name", "p"}, {"annotations", {{"a", "b"}}}}}, {"spec", {{"containers", json::array()}}}};
  excludeNodes(pod, {});
  EXPECT_FALSE(pod["spec"].contains("affinity"));
  excludeNodes(pod, {"gpu-a", "gpu-b"});
  const json& term =
      pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0];
  EXPECT_EQ(term["matchFields"][0]["key"], "metadata.name");
  EXPECT_EQ(term["matchFields"][0]["operator"], "NotIn");
  EXPECT_EQ(term["matchFields"][0]["values"], json::array({"gpu-a", "gpu-b"}));
  EXPECT_EQ(pod["metadata"]["annotations"]["sandman.io/refused-nodes"], "gpu-a,gpu-b");
  EXPECT_EQ(pod["metadata"]["annotations"]["a"], "b");

  PodView v;
  v.name = "sess-x";
  v.phase = "Pending";
  v.unschedulable_message = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.";
  v.annotations["sandman.io/refused-nodes"] = "gpu-a";
  WorkloadInfo w = workloadFromPod(v);
  EXPECT_NE(w.problem.find("outside the nodes Sandman holds (gpu-a)"), std::string::npos) << w.problem;
  EXPECT_EQ(w.problem_kind, ErrorKind::kConflict);
}

TEST(MigLayouts, ConfigNames) {
  EXPECT_TRUE(validMigConfigName("all-1g.10gb"));
  EXPECT_TRUE(validMigConfigName("all-balanced"));
  EXPECT_TRUE(validMigConfigName("custom_config.2"));
  EXPECT_FALSE(validMigConfigName(""));
  EXPECT_FALSE(validMigConfigName("-x"));
  EXPECT_FALSE(validMigConfigName("x-"));
  EXPECT_FALSE(validMigConfigName("a b"));
  EXPECT_FALSE(validMigConfigName("a/b"));
  EXPECT_FALSE(validMigConfigName(std::string(64, 'a')));
  EXPECT_TRUE(migProposalHoldsNode("failed"));
  EXPECT_TRUE(migProposalHoldsNode("pending"));
  EXPECT_FALSE(migProposalHoldsNode("proposed"));
  EXPECT_FALSE(migProposalInFlight("failed"));
}

}  // namespace
}  // namespace sandman
