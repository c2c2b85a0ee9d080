// The control daemon's merge of node agents (AgentFleet): one target per node
// from the agent pods, devices attributed to sessions through pod UIDs, a
// missing agent reported (and its sessions unobserved) while the rest keep
// working; the agent's wire format; the pid -> pod mapping from cgroups; and
// the sampler over a cluster source (no GPU declared lost for a silent node).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "agent/proc_pods.h"
#include "support/manual_clock.h"
#include "telemetry/agent_fleet.h"
#include "telemetry/agent_wire.h"
#include "telemetry/metrics_exporter.h"
#include "telemetry/sampler.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;

const std::string kUidA = "1b2c3d4e-0000-4000-8000-123456789abc";
const std::string kUidB = "2b2c3d4e-0000-4000-8000-123456789abc";

PodView agentPod(const std::string& name, const std::string& node, const std::string& ip, bool ready = true,
                 const std::string& port = "") {
  PodView p;
  p.name = name;
  p.node_name = node;
  p.pod_ip = ip;
  p.phase = "Running";
  p.ready = ready;
  if (!port.empty()) p.annotations["sandman.io/agent-port"] = port;
  return p;
}

DeviceReading mig(const std::string& uuid, int gpu, int gi, const std::string& pod_uid = "") {
  DeviceReading d;
  d.uuid = uuid;
  d.gpu_uuid = "GPU-" + std::to_string(gpu);
  d.gpu_index = gpu;
  d.is_mig = true;
  d.mig_enabled = true;
  d.gpu_instance_id = gi;
  d.profile = "1g.10gb";
  d.compute_slices = 1;
  d.pod_uid = pod_uid;
  if (!pod_uid.empty()) {
    d.pids = {4242};
    d.compute_processes = 1;
  }
  return d;
}

AgentPoll answer(const std::string& node, TimePoint taken, std::vector<DeviceReading> instances,
                 int gpus = 1) {
  AgentSnapshot s;
  s.node = node;
  s.telemetry.taken_at = taken;
  for (int i = 0; i < gpus; ++i) {
    DeviceReading g;
    g.uuid = node + "-GPU-" + std::to_string(i);
    g.gpu_uuid = g.uuid;
    g.gpu_index = i;
    g.mig_enabled = true;
    s.telemetry.gpus.push_back(g);
  }
  s.telemetry.instances = std::move(instances);
  return AgentPoll{s, ""};
}

AgentPoll failed(const std::string& why) { return AgentPoll{std::nullopt, why}; }

const NodeReading* nodeOf(const TelemetrySnapshot& s, const std::string& node) {
  for (const auto& n : s.nodes) {
    if (n.node == node) return &n;
  }
  return nullptr;
}

TEST(AgentTargets, OnePerNodeReadyFirstPortFromTheAnnotation) {
  std::vector<PodView> pods = {
      agentPod("agent-old", "gpu-0", "10.0.0.9", false),
      agentPod("agent-new", "gpu-0", "10.0.0.10", true, "9500"),
      agentPod("agent-b", "gpu-1", "fd00::7"),
      agentPod("agent-bad", "gpu-2", "10.0.0.12", true, "http"),
      agentPod("agent-unscheduled", "", ""),
  };
  pods.push_back(agentPod("agent-pending", "gpu-3", ""));
  pods.back().phase = "Pending";
  auto t = agentTargets(pods, "sandman.io/agent-port", 9410);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].node, "gpu-0");
  EXPECT_EQ(t[0].pod, "agent-new");
  EXPECT_EQ(t[0].address, "10.0.0.10:9500");
  EXPECT_EQ(t[1].address, "[fd00::7]:9410");
  EXPECT_EQ(t[2].address, "");
  EXPECT_NE(t[2].problem.find("bad sandman.io/agent-port annotation 'http'"), std::string::npos) << t[2].problem;
  EXPECT_EQ(t[3].address, "");
  EXPECT_NE(t[3].problem.find("is Pending"), std::string::npos) << t[3].problem;
}

TEST(AgentFleet, MergesNodesAndAttributesDevicesToSessionsByPodUid) {
  AgentFleet fleet;
  const TimePoint now = TimePoint(1'800'000'000s);
  auto targets = agentTargets({agentPod("a0", "gpu-0", "10.0.0.1"), agentPod("a1", "gpu-1", "10.0.0.2")},
                              "sandman.io/agent-port", 9410);
  std::map<std::string, AgentPoll> polls;
  // gpu-1 answers with a device held by a pod that is not one of our sessions.
  polls["gpu-1"] = answer("gpu-1", now, {mig("MIG-c", 0, 1, "ffffffff-0000-4000-8000-123456789abc")});
  polls["gpu-0"] = answer("gpu-0", now, {mig("MIG-b", 0, 2), mig("MIG-a", 0, 1, kUidA)}, 2);
  std::vector<SessionPodRef> sessions = {{"s1", kUidA, "gpu-0"}, {"s2", kUidB, "gpu-1"}};
  TelemetrySnapshot s = fleet.merge(targets, polls, sessions, now);
  EXPECT_TRUE(s.cluster);
  EXPECT_TRUE(s.backend_ok);
  ASSERT_EQ(s.gpus.size(), 3u);
  EXPECT_EQ(s.gpus[0].node, "gpu-0");
  EXPECT_EQ(s.gpus[2].node, "gpu-1");
  ASSERT_EQ(s.instances.size(), 3u);
  EXPECT_EQ(s.instances[0].uuid, "MIG-a") << "by node, GPU, then GPU instance";
  EXPECT_EQ(s.instances[0].session_id, "s1");
  EXPECT_EQ(s.instances[1].session_id, "");
  EXPECT_EQ(s.instances[2].session_id, "") << "a pod that is not our session holds it";
  EXPECT_EQ(s.instances[2].pod_uid, "ffffffff-0000-4000-8000-123456789abc");
  ASSERT_EQ(s.nodes.size(), 2u);
  EXPECT_TRUE(s.nodes[0].up);
  EXPECT_EQ(s.nodes[0].gpus, 2);
  EXPECT_EQ(s.nodes[0].instances, 2);
  EXPECT_EQ(s.nodes[0].last_seen, now);
  EXPECT_TRUE(s.unobserved_sessions.empty());
}

TEST(AgentFleet, AMissingAgentIsReportedItsSessionsUnobservedTheRestKeepWorking) {
  AgentFleet fleet;
  TimePoint now = TimePoint(1'800'000'000s);
  auto targets = agentTargets({agentPod("a0", "gpu-0", "10.0.0.1"), agentPod("a1", "gpu-1", "10.0.0.2")},
                              "sandman.io/agent-port", 9410);
  std::vector<SessionPodRef> sessions = {{"s1", kUidA, "gpu-0"}, {"s2", kUidB, "gpu-1"}, {"s3", "u3", ""}};
  std::map<std::string, AgentPoll> polls = {{"gpu-0", answer("gpu-0", now, {mig("MIG-a", 0, 1, kUidA)})},
                                            {"gpu-1", answer("gpu-1", now, {mig("MIG-b", 0, 1, kUidB)})}};
  fleet.merge(targets, polls, sessions, now);
  const TimePoint seen = now;
  now += 5s;
  polls = {{"gpu-0", answer("gpu-0", now, {mig("MIG-a", 0, 1, kUidA)})},
           {"gpu-1", failed("connect to 10.0.0.2 port 9410 failed: Connection refused")}};
  TelemetrySnapshot s = fleet.merge(targets, polls, sessions, now);
  EXPECT_TRUE(s.backend_ok) << "one node still answers";
  ASSERT_EQ(s.instances.size(), 1u);
  EXPECT_EQ(s.instances[0].node, "gpu-0");
  EXPECT_EQ(s.instances[0].session_id, "s1");
  const NodeReading* down = nodeOf(s, "gpu-1");
  ASSERT_NE(down, nullptr);
  EXPECT_FALSE(down->up);
  EXPECT_EQ(down->last_seen, seen);
  EXPECT_NE(down->error.find("Connection refused"), std::string::npos);
  EXPECT_EQ(s.unobserved_sessions, std::vector<std::string>{"s2"});

  // Its pod deleted too (the DaemonSet rolls it): still reported, as having no agent.
  now += 5s;
  auto only0 = agentTargets({agentPod("a0", "gpu-0", "10.0.0.1")}, "sandman.io/agent-port", 9410);
  polls = {{"gpu-0", answer("gpu-0", now, {})}};
  s = fleet.merge(only0, polls, sessions, now);
  down = nodeOf(s, "gpu-1");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->error, "no agent pod on the node");
  EXPECT_EQ(s.unobserved_sessions, std::vector<std::string>{"s2"});

  // Back: up again, its devices return.
  now += 5s;
  polls = {{"gpu-0", answer("gpu-0", now, {})}, {"gpu-1", answer("gpu-1", now, {mig("MIG-b", 0, 1, kUidB)})}};
  s = fleet.merge(targets, polls, sessions, now);
  EXPECT_TRUE(nodeOf(s, "gpu-1")->up);
  ASSERT_EQ(s.instances.size(), 1u);
  EXPECT_EQ(s.instances[0].session_id, "s2");
  EXPECT_TRUE(s.unobserved_sessions.empty());
}

TEST(AgentFleet, NoAgentAnsweringIsABackendFailureNotAnIdleCluster) {
  AgentFleet fleet;
  const TimePoint now = TimePoint(1'800'000'000s);
  auto targets = agentTargets({agentPod("a0", "gpu-0", "10.0.0.1")}, "sandman.io/agent-port", 9410);
  TelemetrySnapshot s = fleet.merge(targets, {{"gpu-0", failed("timeout")}}, {}, now);
  EXPECT_FALSE(s.backend_ok);
  EXPECT_NE(s.backend_error.find("no node agent answered"), std::string::npos) << s.backend_error;
  // No nodes at all (no agents deployed yet) is simply an empty cluster.
  AgentFleet empty;
  EXPECT_TRUE(empty.merge({}, {}, {}, now).backend_ok);
}

TEST(AgentFleet, AnAgentRepeatingOneSampleIsStaleAndAWrongNodeIsRefused) {
  AgentFleet fleet({30s, 1h});
  TimePoint now = TimePoint(1'800'000'000s);
  const TimePoint taken = now;
  auto targets = agentTargets({agentPod("a0", "gpu-0", "10.0.0.1"), agentPod("a1", "gpu-1", "10.0.0.2")},
                              "sandman.io/agent-port", 9410);
  auto polls = [&] {
    // gpu-1's pod IP now answers as gpu-7's agent (an IP reused after a restart).
    return std::map<std::string, AgentPoll>{{"gpu-0", answer("gpu-0", taken, {})},
                                            {"gpu-1", answer("gpu-7", now, {})}};
  };
  TelemetrySnapshot s = fleet.merge(targets, polls(), {}, now);
  EXPECT_TRUE(nodeOf(s, "gpu-0")->up);
  EXPECT_FALSE(nodeOf(s, "gpu-1")->up);
  EXPECT_NE(nodeOf(s, "gpu-1")->error.find("speaks for node gpu-7"), std::string::npos);
  now += 31s;  // the agent's sampler is stuck: same sample for longer than stale_after
  s = fleet.merge(targets, polls(), {}, now);
  EXPECT_FALSE(nodeOf(s, "gpu-0")->up);
  EXPECT_NE(nodeOf(s, "gpu-0")->error.find("stale"), std::string::npos) << nodeOf(s, "gpu-0")->error;
}

TEST(AgentFleet, ANodeGoneForLongerThanForgetAfterIsForgotten) {
  AgentFleet fleet({30s, 10min});
  TimePoint now = TimePoint(1'800'000'000s);
  fleet.merge(agentTargets({agentPod("a0", "gpu-0", "10.0.0.1")}, "sandman.io/agent-port", 9410),
              {{"gpu-0", answer("gpu-0", now, {})}}, {}, now);
  now += 9min;
  EXPECT_EQ(fleet.merge({}, {}, {}, now).nodes.size(), 1u);
  now += 2min;
  EXPECT_TRUE(fleet.merge({}, {}, {}, now).nodes.empty());
}

TEST(SessionPodRefs, OnlyPodsNamedAfterASession) {
  PodView a;
  a.name = "sess-abc";
  a.uid = kUidA;
  a.node_name = "gpu-0";
  PodView other;
  other.name = "sandman-agent-x";
  auto refs = sessionPodRefs({a, other});
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].session_id, "abc");
  EXPECT_EQ(refs[0].uid, kUidA);
  EXPECT_EQ(refs[0].node, "gpu-0");
}

TEST(AgentWire, RoundTripsEveryReadingAndTakesTheNodeFromTheEnvelope) {
  AgentSnapshot s;
  s.node = "gpu-0";
  s.telemetry.taken_at = TimePoint(std::chrono::milliseconds(1'800'000'000'123));
  DeviceReading g;
  g.uuid = g.gpu_uuid = "GPU-1";
  g.model_name = "NVIDIA H100 80GB HBM3";
  g.temperature_c = 41.5;
  g.power_w = 61;
  g.memory_total_mib = 81559;
  g.node = "elsewhere";
  s.telemetry.gpus.push_back(g);
  s.telemetry.instances.push_back(mig("MIG-1", 0, 3, kUidA));
  s.telemetry.instances[0].utilization_pct = 80;
  auto back = parseAgentSnapshot(agentSnapshotJson(s).dump());
  ASSERT_TRUE(back.ok()) << back.error().message;
  const TelemetrySnapshot& t = back->telemetry;
  EXPECT_EQ(back->node, "gpu-0");
  EXPECT_EQ(t.taken_at, s.telemetry.taken_at);
  ASSERT_EQ(t.gpus.size(), 1u);
  EXPECT_EQ(t.gpus[0].node, "gpu-0");
  EXPECT_EQ(t.gpus[0].temperature_c, 41.5);
  EXPECT_FALSE(t.gpus[0].utilization_pct.has_value());
  EXPECT_EQ(t.gpus[0].memory_total_mib, 81559u);
  ASSERT_EQ(t.instances.size(), 1u);
  EXPECT_EQ(t.instances[0].pod_uid, kUidA);
  EXPECT_EQ(t.instances[0].pids, std::vector<unsigned>{4242});
  EXPECT_EQ(t.instances[0].gpu_instance_id, 3);
  EXPECT_EQ(t.instances[0].utilization_pct, 80);
  EXPECT_EQ(agentSnapshotJson(s)["holders"]["MIG-1"], kUidA);
}

TEST(AgentWire, RefusesAnotherVersionAndMalformedDevices) {
  EXPECT_FALSE(parseAgentSnapshot(std::string("{\"version\":2,\"node\":\"n\"}")).ok());
  EXPECT_FALSE(parseAgentSnapshot(std::string("not json")).ok());
  auto bad = parseAgentSnapshot(std::string(
      R"({"version":1,"node":"n","taken_at_ms":1,"backend_ok":true,"gpus":[{"uuid":7}],"instances":[]})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("bad gpus"), std::string::npos) << bad.error().message;
}

TEST(PodUidFromCgroup, KnowsTheKubeletsCgroupLayouts) {
  // cgroup v1, cgroupfs driver
  EXPECT_EQ(podUidFromCgroup("12:memory:/kubepods/burstable/pod" + kUidA + "/0123abcd\n4:cpu:/\n"), kUidA);
  // cgroup v2, systemd driver (underscores in the slice name)
  std::string systemd_uid = kUidA;
  for (auto& c : systemd_uid) c = c == '-' ? '_' : c;
  EXPECT_EQ(podUidFromCgroup("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + systemd_uid +
                             ".slice/cri-containerd-0123.scope\n"),
            kUidA);
  // Guaranteed QoS: no QoS level in the path
  EXPECT_EQ(podUidFromCgroup("0::/kubepods.slice/kubepods-pod" + systemd_uid + ".slice/cri-containerd-1.scope"), kUidA);
  EXPECT_EQ(podUidFromCgroup("0::/kubepods/pod" + kUidB + "/abc"), kUidB);
  // Not in a pod: a system service, or something that only looks like one
  EXPECT_EQ(podUidFromCgroup("0::/system.slice/nvidia-persistenced.service\n"), "");
  EXPECT_EQ(podUidFromCgroup("0::/user.slice/pod" + kUidA + "\n"), "");
  EXPECT_EQ(podUidFromCgroup("0::/kubepods/podnot-a-uid/x\n"), "");
  EXPECT_EQ(podUidFromCgroup(""), "");
}

TEST(ProcPods, AnnotatesDevicesFromAFakeProcTree) {
  const std::string root = ::testing::TempDir() + "/proc-pods-" + std::to_string(::getpid());
  std::filesystem::create_directories(root + "/4242");
  std::filesystem::create_directories(root + "/77");
  std::ofstream(root + "/4242/cgroup") << "0::/kubepods/besteffort/pod" << kUidA << "/ctr\n";
  std::ofstream(root + "/77/cgroup") << "0::/system.slice/x.service\n";
  ProcPods pods(root);
  TelemetrySnapshot snap;
  snap.instances.push_back(mig("MIG-a", 0, 1));
  snap.instances[0].pids = {9999, 77, 4242};  // gone, not a pod, the pod
  snap.instances.push_back(mig("MIG-b", 0, 2));
  pods.annotate(snap, "gpu-0");
  EXPECT_EQ(snap.instances[0].pod_uid, kUidA);
  EXPECT_EQ(snap.instances[0].node, "gpu-0");
  EXPECT_EQ(snap.instances[1].pod_uid, "");
  std::filesystem::remove_all(root);
}

TEST(ClusterSampler, ASilentNodesGpusAreNotLostAndSeriesCarryTheNode) {
  testing::ManualClock clock;
  TelemetrySampler sampler(SamplerOptions{}, nullptr, clock);
  bool node_up = true;
  bool gpu_present = true;
  sampler.setSource([&] {
    TelemetrySnapshot s;
    s.cluster = true;
    s.nodes.push_back(NodeReading{"gpu-0", "a0", "10.0.0.1:9410", node_up, std::nullopt, node_up ? "" : "timeout",
                                  gpu_present ? 1 : 0, 0});
    if (node_up && gpu_present) {
      DeviceReading g;
      g.uuid = g.gpu_uuid = "GPU-1";
      g.node = "gpu-0";
      g.model_name = "NVIDIA H100 80GB HBM3";
      g.temperature_c = 40;
      s.gpus.push_back(g);
    }
    return s;
  });
  EXPECT_TRUE(sampler.sampleOnce()->lost_gpus.empty());
  node_up = false;
  EXPECT_TRUE(sampler.sampleOnce()->lost_gpus.empty()) << "a missing agent says nothing about its GPUs";
  node_up = true;
  EXPECT_TRUE(sampler.sampleOnce()->lost_gpus.empty());
  gpu_present = false;
  EXPECT_EQ(sampler.sampleOnce()->lost_gpus, std::vector<std::string>{"GPU-1"}) << "the agent answered without it";

  gpu_present = true;
  node_up = true;
  sampler.sampleOnce();
  MetricsSources sources;
  sources.snapshot = [&sampler] { return sampler.latest(); };
  MetricsOptions mo;
  mo.hostname = "daemon-host";
  MetricsExporter exporter(mo, sources);
  const std::string text = exporter.render();
  EXPECT_NE(text.find(R"(gpu_temperature{gpu="0",UUID="GPU-1",model_name="NVIDIA H100 80GB HBM3",Hostname="gpu-0",node="gpu-0"} 40)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(sandman_agent_up{node="gpu-0"} 1)"), std::string::npos);
  node_up = false;
  sampler.sampleOnce();
  EXPECT_NE(exporter.render().find(R"(sandman_agent_up{node="gpu-0"} 0)"), std::string::npos);
}

}  // namespace
}  // namespace sandman
