// DockerRuntime against the real dockerd and the real session image
// (images/workspace/build.sh). Everything created here carries a per-run name
// prefix and is removed in TearDown, by id or name, even when a test fails.
#include "runtime/docker_runtime.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace sandman {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string dockerHost() { return envOr("DOCKER_HOST", "unix:///var/run/docker.sock"); }
std::string workspaceImage() { return envOr("SANDMAN_IMAGE", "sandman-workspace:latest"); }

std::string uniquePrefix() {
  std::random_device rd;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", rd());
  return "sandman-test-" + std::to_string(getpid()) + "-" + suffix;
}

// A loopback port nobody listens on right now (Docker binds it soon after).
int freeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// The first line the server sends on 127.0.0.1:port, or "" if none within budget.
std::string readBanner(int port, std::chrono::milliseconds budget) {
  auto deadline = std::chrono::steady_clock::now() + budget;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    std::string line;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      pollfd p{fd, POLLIN, 0};
      char buf[256];
      // docker-proxy accepts before sshd is up and then closes: read() gives 0.
      if (poll(&p, 1, 1000) == 1) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) line.assign(buf, static_cast<size_t>(n));
      }
    }
    close(fd);
    if (!line.empty()) return line.substr(0, line.find('\r'));
    poll(nullptr, 0, 100);
  }
  return "";
}

class DockerRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto rt = DockerRuntime::open(dockerHost());
    ASSERT_TRUE(rt.ok()) << rt.error().message;
    runtime_ = std::move(rt).value();
    Status ping = runtime_->ping();
    ASSERT_TRUE(ping.ok()) << ping.error().message;
    auto has_image = runtime_->imageExists(workspaceImage());
    ASSERT_TRUE(has_image.ok()) << has_image.error().message;
    ASSERT_TRUE(*has_image) << workspaceImage() << " is missing: run images/workspace/build.sh";
    prefix_ = uniquePrefix();
  }

  void TearDown() override {
    for (const auto& c : containers_) {
      rawRequest("DELETE", "/containers/" + c + "?force=true&v=true");
    }
    for (const auto& n : networks_) rawRequest("DELETE", "/networks/" + n);
    std::error_code ec;
    if (!temp_dir_.empty()) fs::remove_all(temp_dir_, ec);
  }

  // Docker directly, bypassing the code under test: for checks and cleanup.
  HttpResponse rawRequest(const std::string& method, const std::string& path,
                          const std::string& body = "") {
    HttpClient http(dockerHost().substr(std::string("unix://").size()));
    HttpRequest req;
    req.method = method;
    req.url = "http://docker" + path;
    req.body = body;
    if (!body.empty()) req.headers.push_back("Content-Type: application/json");
    auto r = http.send(req);
    return r.ok() ? r.value() : HttpResponse{};
  }

  json inspectRaw(const std::string& path) {
    return json::parse(rawRequest("GET", path).body, nullptr, false);
  }

  std::string network(const std::string& suffix) {
    networks_.push_back(prefix_ + "-" + suffix);
    return networks_.back();
  }

  ContainerSpec sleeper(const std::string& suffix, const std::string& label_key) {
    ContainerSpec spec;
    spec.name = prefix_ + "-" + suffix;
    containers_.push_back(spec.name);
    spec.image = workspaceImage();
    spec.user = "65534:65534";
    spec.hostname = "sandbox";
    spec.working_dir = "/tmp";
    spec.cmd = {"sleep", "300"};
    spec.env = {"SANDMAN_TEST=1"};
    spec.labels = {{label_key, suffix}};
    return spec;
  }

  const fs::path& tempDir() {
    if (temp_dir_.empty()) {
      std::string tmpl = (fs::temp_directory_path() / (prefix_ + "-XXXXXX")).string();
      temp_dir_ = mkdtemp(tmpl.data());
      fs::permissions(temp_dir_, fs::perms::owner_all | fs::perms::group_exec |
                                     fs::perms::others_exec | fs::perms::group_read |
                                     fs::perms::others_read);
    }
    return temp_dir_;
  }

  DockerRuntimePtr runtime_;
  std::string prefix_;
  std::vector<std::string> containers_;
  std::vector<std::string> networks_;
  fs::path temp_dir_;
};

TEST(DockerRuntimeOpen, RejectsHostsThatAreNotUnixSockets) {
  for (const char* host : {"tcp://127.0.0.1:2375", "ssh://me@box", "unix://relative.sock",
                           "unix://", "/var/run/docker.sock"}) {
    auto rt = DockerRuntime::open(host);
    ASSERT_FALSE(rt.ok()) << host;
    EXPECT_EQ(rt.error().kind, ErrorKind::kInvalid) << host;
    EXPECT_NE(rt.error().message.find("unix:///var/run/docker.sock"), std::string::npos);
  }
}

TEST(DockerRuntimeOpen, UnreachableSocketIsUnavailable) {
  auto rt = DockerRuntime::open("unix:///nonexistent-" + uniquePrefix() + "/docker.sock");
  ASSERT_TRUE(rt.ok());
  Status ping = (*rt)->ping();
  ASSERT_FALSE(ping.ok());
  EXPECT_EQ(ping.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(ping.error().message.find("is dockerd running?"), std::string::npos)
      << ping.error().message;
  ContainerSpec spec;
  spec.image = "x";
  auto created = (*rt)->createContainer(spec);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().kind, ErrorKind::kUnavailable);
  auto listed = (*rt)->listContainers("sandman.session");
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().kind, ErrorKind::kUnavailable);
}

TEST_F(DockerRuntimeTest, ImageExistsTellsPresentFromAbsent) {
  auto present = runtime_->imageExists(workspaceImage());
  ASSERT_TRUE(present.ok()) << present.error().message;
  EXPECT_TRUE(*present);
  auto absent = runtime_->imageExists(prefix_ + "-no-such-image:latest");
  ASSERT_TRUE(absent.ok()) << absent.error().message;
  EXPECT_FALSE(*absent);
}

TEST_F(DockerRuntimeTest, EnsureNetworkIsIdempotentAndDisablesInterContainerTraffic) {
  std::string name = network("net");
  ASSERT_TRUE(runtime_->ensureNetwork(name).ok());
  Status again = runtime_->ensureNetwork(name);
  ASSERT_TRUE(again.ok()) << again.error().message;

  json net = inspectRaw("/networks/" + name);
  ASSERT_TRUE(net.is_object());
  EXPECT_EQ(net["Driver"], "bridge");
  EXPECT_EQ(net["Options"]["com.docker.network.bridge.enable_icc"], "false");

  ASSERT_TRUE(runtime_->removeNetwork(name).ok());
  EXPECT_EQ(rawRequest("GET", "/networks/" + name).status, 404);
  Status removed_again = runtime_->removeNetwork(name);
  EXPECT_TRUE(removed_again.ok()) << removed_again.error().message;
}

TEST_F(DockerRuntimeTest, EnsureNetworkRefusesANetworkThatAllowsInterContainerTraffic) {
  std::string name = network("open");
  json body = {{"Name", name}, {"Driver", "bridge"}};
  ASSERT_EQ(rawRequest("POST", "/networks/create", body.dump()).status, 201);
  Status s = runtime_->ensureNetwork(name);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kConflict);
  EXPECT_NE(s.error().message.find("docker network rm " + name), std::string::npos);
}

TEST_F(DockerRuntimeTest, ContainerLifecycleWithHardening) {
  std::string label_key = "sandman.test." + prefix_;
  std::string net = network("net");
  ASSERT_TRUE(runtime_->ensureNetwork(net).ok());
  fs::path shared = tempDir() / "shared";
  fs::create_directory(shared);

  ContainerSpec spec = sleeper("life", label_key);
  spec.network = net;
  spec.binds = {{shared.string(), "/mnt/shared", true}};
  spec.publish_host_ip = "127.0.0.1";
  spec.publish_host_port = freeLoopbackPort();
  spec.container_port = 2222;
  spec.memory_bytes = 256LL << 20;
  spec.nano_cpus = 500'000'000;
  spec.pids_limit = 64;

  auto id = runtime_->createContainer(spec);
  ASSERT_TRUE(id.ok()) << id.error().message;
  containers_.push_back(*id);
  Status started = runtime_->startContainer(*id);
  ASSERT_TRUE(started.ok()) << started.error().message;
  EXPECT_TRUE(runtime_->startContainer(*id).ok()) << "starting twice is harmless";

  auto listed = runtime_->listContainers(label_key);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, *id);
  EXPECT_EQ((*listed)[0].name, spec.name);
  EXPECT_TRUE((*listed)[0].running);
  EXPECT_EQ((*listed)[0].labels.at(label_key), "life");

  auto info = runtime_->inspectContainer(spec.name);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->id, *id);
  EXPECT_EQ(info->name, spec.name);
  EXPECT_TRUE(info->running);
  EXPECT_EQ(info->labels.at(label_key), "life");

  json raw = inspectRaw("/containers/" + *id + "/json");
  ASSERT_TRUE(raw.is_object());
  const json& host = raw["HostConfig"];
  EXPECT_EQ(host["CapDrop"], json::array({"ALL"}));
  EXPECT_EQ(host["SecurityOpt"], json::array({"no-new-privileges"}));
  EXPECT_EQ(host["Binds"], json::array({shared.string() + ":/mnt/shared:ro"}));
  EXPECT_EQ(host["NetworkMode"], net);
  EXPECT_EQ(host["Memory"], 256LL << 20);
  EXPECT_EQ(host["NanoCpus"], 500'000'000);
  EXPECT_EQ(host["PidsLimit"], 64);
  EXPECT_EQ(host["RestartPolicy"]["Name"], "no");
  json binding = host["PortBindings"]["2222/tcp"][0];
  EXPECT_EQ(binding["HostIp"], "127.0.0.1");
  EXPECT_EQ(binding["HostPort"], std::to_string(spec.publish_host_port));
  EXPECT_EQ(raw["Config"]["User"], "65534:65534");
  EXPECT_EQ(raw["Config"]["Hostname"], "sandbox");
  EXPECT_EQ(raw["Config"]["WorkingDir"], "/tmp");

  ASSERT_TRUE(runtime_->removeContainer(*id).ok());
  Status again = runtime_->removeContainer(*id);
  EXPECT_TRUE(again.ok()) << again.error().message;
  auto gone = runtime_->inspectContainer(*id);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().kind, ErrorKind::kNotFound);
  auto after = runtime_->listContainers(label_key);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

// A container that stopped says how: what reconcile writes into the end reason
// of a session whose container dockerd stopped (a restart without live-restore).
TEST_F(DockerRuntimeTest, AStoppedContainerReportsItsStateAndExitCode) {
  std::string label_key = "sandman.test." + prefix_;
  ContainerSpec spec = sleeper("exits", label_key);
  spec.cmd = {"sh", "-c", "exit 3"};
  auto id = runtime_->createContainer(spec);
  ASSERT_TRUE(id.ok()) << id.error().message;
  containers_.push_back(*id);
  auto created = runtime_->listContainers(label_key);
  ASSERT_TRUE(created.ok() && created->size() == 1u);
  EXPECT_EQ((*created)[0].state, "created");
  EXPECT_EQ((*created)[0].exit_code, -1) << "no exit code before it ever ran";
  ASSERT_TRUE(runtime_->startContainer(*id).ok());
  rawRequest("POST", "/containers/" + *id + "/wait");
  auto listed = runtime_->listContainers(label_key);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_FALSE((*listed)[0].running);
  EXPECT_EQ((*listed)[0].state, "exited");
  EXPECT_EQ((*listed)[0].exit_code, 3);
  auto info = runtime_->inspectContainer(*id);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->state, "exited");
  EXPECT_EQ(info->exit_code, 3);
}

TEST_F(DockerRuntimeTest, ImageAnswersSshAsAnUnprivilegedUserWithNoCapabilities) {
  fs::path etc = tempDir() / "sandman";
  fs::create_directory(etc);
  fs::permissions(etc, fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
  std::string key = (etc / "host_key").string();
  ASSERT_EQ(std::system(("ssh-keygen -q -t ed25519 -N '' -f " + key).c_str()), 0);
  ASSERT_EQ(chown(key.c_str(), 65534, 65534), 0);
  std::ofstream(etc / "sshd_config") << "Port 2222\nHostKey /etc/sandman/host_key\n"
                                        "PidFile none\nUsePAM no\nPasswordAuthentication no\n";

  ContainerSpec spec = sleeper("sshd", "sandman.test");
  spec.cmd = {"/usr/sbin/sshd", "-D", "-e", "-f", "/etc/sandman/sshd_config"};
  spec.binds = {{etc.string(), "/etc/sandman", true}};
  spec.publish_host_ip = "127.0.0.1";
  spec.publish_host_port = freeLoopbackPort();
  spec.container_port = 2222;
  auto id = runtime_->createContainer(spec);
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(runtime_->startContainer(*id).ok());

  std::string banner = readBanner(spec.publish_host_port, std::chrono::seconds(10));
  EXPECT_EQ(banner.rfind("SSH-2.0-OpenSSH", 0), 0u)
      << "banner '" << banner << "'; logs: "
      << rawRequest("GET", "/containers/" + *id + "/logs?stdout=true&stderr=true").body;
}

TEST_F(DockerRuntimeTest, StartingOnATakenHostPortIsConflict) {
  ContainerSpec first = sleeper("first", "sandman.test");
  first.publish_host_ip = "127.0.0.1";
  first.publish_host_port = freeLoopbackPort();
  first.container_port = 2222;
  ContainerSpec second = sleeper("second", "sandman.test");
  second.publish_host_ip = first.publish_host_ip;
  second.publish_host_port = first.publish_host_port;
  second.container_port = 2222;

  auto a = runtime_->createContainer(first);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(runtime_->startContainer(*a).ok());
  auto b = runtime_->createContainer(second);
  ASSERT_TRUE(b.ok()) << b.error().message;
  Status s = runtime_->startContainer(*b);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kConflict) << s.error().message;
  EXPECT_NE(s.error().message.find(std::to_string(first.publish_host_port)), std::string::npos)
      << s.error().message;
}

TEST_F(DockerRuntimeTest, CreateWithAMissingImageIsInvalidAndSaysHowToBuildIt) {
  ContainerSpec spec = sleeper("noimage", "sandman.test");
  spec.image = prefix_ + "-no-such-image:latest";
  auto r = runtime_->createContainer(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find(spec.image), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("images/workspace/build.sh"), std::string::npos);
}

TEST_F(DockerRuntimeTest, CreateWithTheSameNameTwiceIsConflict) {
  ContainerSpec spec = sleeper("twice", "sandman.test");
  auto a = runtime_->createContainer(spec);
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = runtime_->createContainer(spec);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().kind, ErrorKind::kConflict) << b.error().message;
}

TEST_F(DockerRuntimeTest, BindPathWithAColonIsInvalid) {
  ContainerSpec spec = sleeper("colon", "sandman.test");
  spec.binds = {{"/tmp/a:b", "/mnt", false}};
  auto r = runtime_->createContainer(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
}

TEST_F(DockerRuntimeTest, StartingAMissingContainerIsNotFound) {
  Status s = runtime_->startContainer(prefix_ + "-missing");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kNotFound);
}

// sandman-init, built beside this test binary.
std::string initBinary() {
  std::error_code ec;
  return (fs::read_symlink("/proc/self/exe", ec).parent_path() / "sandman-init").string();
}

// Runs a shell command; its output (stdout and stderr).
std::string shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1 </dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class HardenedDockerRuntimeTest : public DockerRuntimeTest {
 protected:
  void SetUp() override {
    DockerRuntimeTest::SetUp();
    ASSERT_TRUE(fs::exists(initBinary())) << "build sandman-init: " << initBinary();
    options_.init_path = initBinary();
    options_.allowed_images = {workspaceImage()};
    auto rt = DockerRuntime::open(dockerHost(), options_);
    ASSERT_TRUE(rt.ok());
    runtime_ = std::move(rt).value();
  }
  void TearDown() override {
    DockerRuntimeTest::TearDown();
    for (const auto& i : images_) shell("docker rmi -f " + i);
  }

  // An sshd container as a session has it: user 65534, sshd_config from a bind mount.
  ContainerSpec sshdSpec(const std::string& suffix) {
    fs::path etc = tempDir() / ("sandman-" + suffix);
    fs::create_directory(etc);
    fs::permissions(etc, fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
    std::string key = (etc / "host_key").string();
    EXPECT_EQ(std::system(("ssh-keygen -q -t ed25519 -N '' -f " + key).c_str()), 0);
    EXPECT_EQ(chown(key.c_str(), 65534, 65534), 0);
    std::ofstream(etc / "sshd_config") << "Port 2222\nHostKey /etc/sandman/host_key\n"
                                          "PidFile none\nUsePAM no\nPasswordAuthentication no\n";
    ContainerSpec spec = sleeper(suffix, "sandman.test");
    spec.cmd = {"/usr/sbin/sshd", "-D", "-e", "-f", "/etc/sandman/sshd_config"};
    spec.binds = {{etc.string(), "/etc/sandman", true}};
    spec.publish_host_ip = "127.0.0.1";
    spec.publish_host_port = freeLoopbackPort();
    spec.container_port = 2222;
    return spec;
  }

  std::string execAs65534(const std::string& container, const std::string& cmd) {
    return shell("docker exec -u 65534:65534 " + container + " bash -c '" + cmd + "'");
  }

  DockerOptions options_;
  std::vector<std::string> images_;
};

TEST_F(HardenedDockerRuntimeTest, InitIsPid1AndBringsSshdBackWhenTheUserKillsIt) {
  ContainerSpec spec = sshdSpec("init");
  auto id = runtime_->createContainer(spec);
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(runtime_->startContainer(*id).ok());
  ASSERT_EQ(readBanner(spec.publish_host_port, std::chrono::seconds(10)).rfind("SSH-2.0-OpenSSH", 0), 0u);

  json raw = inspectRaw("/containers/" + *id + "/json");
  EXPECT_EQ(raw["Config"]["Entrypoint"], json::array({"/.sandman/init", "--"}));
  EXPECT_EQ(raw["HostConfig"]["CapDrop"], json::array({"ALL"}));
  EXPECT_EQ(raw["HostConfig"]["SecurityOpt"], json::array({"no-new-privileges"}));
  EXPECT_EQ(execAs65534(spec.name, "xargs -0 </proc/1/cmdline"),
            "/.sandman/init -- /usr/sbin/sshd -D -e -f /etc/sandman/sshd_config");
  EXPECT_EQ(execAs65534(spec.name, "ps -o user= -p 1"), "nobody") << "PID 1 runs as the session user";
  std::string sshd = execAs65534(spec.name, "ps -o pid= --ppid 1 | tr -d \" \"");
  ASSERT_FALSE(sshd.empty());

  // As the session user: kill sshd, then try to end PID 1 every way a same-uid process can.
  execAs65534(spec.name, "kill -KILL " + sshd + "; for s in TERM INT HUP QUIT USR1 KILL; do kill -$s 1; done; true");
  std::string banner = readBanner(spec.publish_host_port, std::chrono::seconds(10));
  EXPECT_EQ(banner.rfind("SSH-2.0-OpenSSH", 0), 0u) << "sshd answers again; banner '" << banner << "'";
  auto info = runtime_->inspectContainer(*id);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->running) << "the container survived";
  std::string again = execAs65534(spec.name, "ps -o pid= --ppid 1 | tr -d \" \"");
  EXPECT_FALSE(again.empty());
  EXPECT_NE(again, sshd) << "a new sshd";
  // Not dumpable: the user cannot attach to PID 1 or read its memory.
  EXPECT_NE(execAs65534(spec.name, "cat /proc/1/environ >/dev/null 2>&1 && echo readable"), "readable");
  std::string logs = shell("docker logs " + *id);
  EXPECT_NE(logs.find("ignored signal 15"), std::string::npos) << logs;

  // Docker's stop comes from outside the container and is obeyed at once.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(shell("docker stop -t 20 " + *id), *id);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10)) << "stopped by SIGTERM, not SIGKILL";
}

TEST_F(HardenedDockerRuntimeTest, WithoutTheCommandInTheImageTheContainerExits) {
  ContainerSpec spec = sleeper("nocmd", "sandman.test");
  spec.cmd = {"/usr/sbin/no-such-sshd"};
  auto id = runtime_->createContainer(spec);
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(runtime_->startContainer(*id).ok());
  bool running = true;
  for (int i = 0; i < 50 && running; ++i) {
    auto info = runtime_->inspectContainer(*id);
    running = info.ok() && info->running;
    if (running) poll(nullptr, 0, 100);
  }
  EXPECT_FALSE(running) << "init must not spin on a command the image lacks";
}

TEST_F(HardenedDockerRuntimeTest, TheImagesEntrypointIsNeverRun) {
  std::string tag = prefix_ + "-entrypoint:latest";
  images_.push_back(tag);
  fs::path ctx = tempDir() / "ctx";
  fs::create_directory(ctx);
  std::ofstream(ctx / "Dockerfile") << "FROM " << workspaceImage() << "\nENTRYPOINT [\"/bin/false\"]\n";
  ASSERT_EQ(std::system(("docker build -q -t " + tag + " " + ctx.string() + " >/dev/null").c_str()), 0);
  for (bool with_init : {true, false}) {
    DockerOptions o = options_;
    o.allowed_images = {tag};
    if (!with_init) o.init_path.clear();
    auto rt = DockerRuntime::open(dockerHost(), o);
    ContainerSpec spec = sleeper(with_init ? "ep-init" : "ep-bare", "sandman.test");
    spec.image = tag;
    auto id = rt.value()->createContainer(spec);
    ASSERT_TRUE(id.ok()) << id.error().message;
    ASSERT_TRUE(rt.value()->startContainer(*id).ok());
    poll(nullptr, 0, 500);
    auto info = rt.value()->inspectContainer(*id);
    ASSERT_TRUE(info.ok());
    EXPECT_TRUE(info->running) << "with_init=" << with_init << ": the image's /bin/false ran instead of the command";
  }
}

TEST_F(HardenedDockerRuntimeTest, ImagesOutsideTheAllowListAreRefused) {
  ContainerSpec spec = sleeper("refused", "sandman.test");
  spec.image = "debian:bookworm";
  auto r = runtime_->createContainer(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("not allowed"), std::string::npos) << r.error().message;
  EXPECT_EQ(rawRequest("GET", "/containers/" + spec.name + "/json").status, 404) << "Docker never saw it";
}

TEST_F(HardenedDockerRuntimeTest, LogRotationReachesDocker) {
  ContainerSpec spec = sleeper("logs", "sandman.test");
  auto id = runtime_->createContainer(spec);
  ASSERT_TRUE(id.ok()) << id.error().message;
  json log = inspectRaw("/containers/" + *id + "/json")["HostConfig"]["LogConfig"];
  EXPECT_EQ(log, (json{{"Type", "json-file"}, {"Config", {{"max-size", "10m"}, {"max-file", "3"}}}}));
}

TEST_F(HardenedDockerRuntimeTest, WritableLayerProbeSaysWhetherTheStorageDriverCanLimit) {
  json info = inspectRaw("/info");
  std::string backing;
  for (const auto& kv : info["DriverStatus"]) {
    if (kv.is_array() && kv.size() == 2 && kv[0] == "Backing Filesystem") backing = kv[1];
  }
  DockerOptions o = options_;
  o.writable_layer_bytes = 1LL << 30;
  auto rt = DockerRuntime::open(dockerHost(), o);
  Status probe = rt.value()->probeWritableLayerLimit(workspaceImage());
  if (info["Driver"] == "overlay2" && backing != "xfs") {
    ASSERT_FALSE(probe.ok()) << "overlay2 on " << backing << " cannot limit a writable layer";
    EXPECT_EQ(probe.error().kind, ErrorKind::kInvalid) << probe.error().message;
    EXPECT_NE(probe.error().message.find("xfs"), std::string::npos) << probe.error().message;
  } else if (probe.ok()) {
    ContainerSpec spec = sleeper("sized", "sandman.test");
    auto id = rt.value()->createContainer(spec);
    ASSERT_TRUE(id.ok()) << id.error().message;
    EXPECT_EQ(inspectRaw("/containers/" + *id + "/json")["HostConfig"]["StorageOpt"]["size"],
              std::to_string(1LL << 30));
  }
}

}  // namespace
}  // namespace sandman
