// What every session container is created with (log rotation, writable layer
// limit, init as PID 1, explicit ENTRYPOINT) and the image allow-list.
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "runtime/docker_runtime.h"

namespace sandman {
namespace {

using json = nlohmann::json;

ContainerSpec sshdSpec() {
  ContainerSpec spec;
  spec.image = "sandman-workspace:latest";
  spec.cmd = {"/usr/sbin/sshd", "-D", "-e"};
  spec.binds = {{"/srv/ws/alice", "/workspace", false}};
  return spec;
}

TEST(DockerCreateBody, InitRunsTheCommandAsPid1FromAReadOnlyMount) {
  DockerOptions o;
  o.init_path = "/usr/lib/sandman/sandman-init";
  json body = json::parse(dockerCreateBody(sshdSpec(), o).value());
  EXPECT_EQ(body["Entrypoint"], json::array({"/.sandman/init", "--"}));
  EXPECT_EQ(body["Cmd"], json::array({"/usr/sbin/sshd", "-D", "-e"}));
  EXPECT_EQ(body["HostConfig"]["Binds"],
            json::array({"/srv/ws/alice:/workspace", "/usr/lib/sandman/sandman-init:/.sandman/init:ro"}));
  EXPECT_EQ(body["HostConfig"]["Init"], false);
}

TEST(DockerCreateBody, EntrypointIsExplicitlyEmptyWithoutInit) {
  json body = json::parse(dockerCreateBody(sshdSpec(), DockerOptions{}).value());
  ASSERT_TRUE(body.contains("Entrypoint"));
  EXPECT_EQ(body["Entrypoint"], json::array());
}

TEST(DockerCreateBody, LogRotationAndWritableLayerLimit) {
  DockerOptions o;
  o.log_max_size = "20m";
  o.log_max_files = 5;
  o.writable_layer_bytes = 10LL << 30;
  json host = json::parse(dockerCreateBody(sshdSpec(), o).value())["HostConfig"];
  EXPECT_EQ(host["LogConfig"], (json{{"Type", "json-file"}, {"Config", {{"max-size", "20m"}, {"max-file", "5"}}}}));
  EXPECT_EQ(host["StorageOpt"], (json{{"size", std::to_string(10LL << 30)}}));

  o.writable_layer_bytes = 0;
  o.log_max_size = "";
  host = json::parse(dockerCreateBody(sshdSpec(), o).value())["HostConfig"];
  EXPECT_FALSE(host.contains("StorageOpt"));
  EXPECT_FALSE(host.contains("LogConfig"));
}

TEST(DockerCreateBody, InitPathWithAColonIsInvalid) {
  DockerOptions o;
  o.init_path = "/opt/a:b/sandman-init";
  EXPECT_FALSE(dockerCreateBody(sshdSpec(), o).ok());
}

TEST(ImageAllowList, BareNamesMeanLatest) {
  EXPECT_EQ(normalizeImageName("sandman-workspace"), "sandman-workspace:latest");
  EXPECT_EQ(normalizeImageName("registry:5000/team/img"), "registry:5000/team/img:latest");
  EXPECT_EQ(normalizeImageName("registry:5000/team/img:v2"), "registry:5000/team/img:v2");
  EXPECT_EQ(normalizeImageName("img@sha256:abcd"), "img@sha256:abcd");
  std::vector<std::string> allowed = {"sandman-workspace", "gpu:cuda12"};
  EXPECT_TRUE(checkImageAllowed("sandman-workspace:latest", allowed).ok());
  EXPECT_TRUE(checkImageAllowed("gpu:cuda12", allowed).ok());
  EXPECT_TRUE(checkImageAllowed("anything", {}).ok()) << "no list: any image";
}

TEST(ImageAllowList, RefusalIsInvalidAndNamesTheAllowedImages) {
  Status st = checkImageAllowed("debian:bookworm", {"sandman-workspace:latest"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(st.error().message.find("debian:bookworm is not allowed"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("sandman-workspace:latest"), std::string::npos);
  EXPECT_NE(st.error().message.find("--allowed-images"), std::string::npos);
  EXPECT_FALSE(checkImageAllowed("gpu:cuda11", {"gpu:cuda12"}).ok());
}

SessionWorkload aliceWorkload() {
  SessionWorkload w;
  w.session_id = "s-0123456789abcdef";
  w.user_id = "alice";
  w.image = "sandman-workspace:latest";
  w.uid = 2001;
  w.gid = 2001;
  w.sshd_files_dir = "/var/lib/sandman/session-files/s-0123456789abcdef";
  w.workspace_dir = "/srv/ws/alice";
  w.direct_port = 10022;
  return w;
}

TEST(SessionContainerSpec, IsTheUsersSshdWithItsFilesReadOnlyAndItsWorkspaceWritable) {
  DockerOptions o;
  o.instance = "test";
  o.publish_ip = "127.0.0.1";
  ContainerSpec spec = sessionContainerSpec(aliceWorkload(), o);
  EXPECT_EQ(spec.user, "2001:2001");
  EXPECT_EQ(spec.labels.at("sandman.session"), "s-0123456789abcdef");
  EXPECT_EQ(spec.labels.at("sandman.instance"), "test");
  EXPECT_EQ(spec.publish_host_port, 10022);
  EXPECT_EQ(spec.publish_host_ip, "127.0.0.1");
  EXPECT_EQ(spec.container_port, 2222);
  EXPECT_EQ(spec.network, "sandman-sessions");
  bool workspace_rw = false, etc_ro = true;
  for (const auto& b : spec.binds) {
    if (b.container_path == "/workspace") workspace_rw = !b.read_only && b.host_path == "/srv/ws/alice";
    if (b.container_path.rfind("/etc", 0) == 0) etc_ro = etc_ro && b.read_only;
  }
  EXPECT_TRUE(workspace_rw);
  EXPECT_TRUE(etc_ro);
}

TEST(SessionContainerSpec, GpuIsInTheEnvironmentAndOnlyRequestedWithTheNvidiaRuntime) {
  SessionWorkload w = aliceWorkload();
  w.gpu_uuid = "MIG-x";
  ContainerSpec env_only = sessionContainerSpec(w, DockerOptions{});
  EXPECT_NE(std::find(env_only.env.begin(), env_only.env.end(), "NVIDIA_VISIBLE_DEVICES=MIG-x"), env_only.env.end());
  EXPECT_EQ(env_only.labels["sandman.gpu"], "MIG-x");
  EXPECT_TRUE(env_only.gpu_device_ids.empty());
  DockerOptions nvidia_options;
  nvidia_options.gpu_device_requests = true;
  EXPECT_EQ(sessionContainerSpec(w, nvidia_options).gpu_device_ids, std::vector<std::string>{"MIG-x"});
  ContainerSpec cpu = sessionContainerSpec(aliceWorkload(), nvidia_options);
  EXPECT_TRUE(cpu.gpu_device_ids.empty());
  EXPECT_FALSE(cpu.labels.count("sandman.gpu"));
}

}  // namespace
}  // namespace sandman
