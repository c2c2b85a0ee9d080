// probeSshHandshake against a real OpenSSH sshd started for each test on a
// free loopback port, with a host key made by generateEd25519.
#include "ssh/handshake_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "ssh/keys.h"

namespace sandman {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

constexpr Millis kProbeTimeout{2000};

// A loopback socket bound to a port the kernel picked; listening or not.
class BoundSocket {
 public:
  explicit BoundSocket(bool listen_on) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    socklen_t len = sizeof addr;
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    if (listen_on && listen(fd_, 16) != 0) return;
    port_ = ntohs(addr.sin_port);
  }
  ~BoundSocket() {
    if (fd_ >= 0) close(fd_);
  }
  BoundSocket(const BoundSocket&) = delete;
  BoundSocket& operator=(const BoundSocket&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

int freeLoopbackPort() { return BoundSocket(false).port(); }

bool acceptsConnections(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class HandshakeProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-probe-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // sshd started as root insists on its privilege separation directory.
    if (geteuid() == 0) mkdir("/run/sshd", 0755);

    auto host = generateEd25519("sandman-test-host");
    ASSERT_TRUE(host.ok()) << host.error().message;
    host_public_ = host->public_line;
    std::string key_path = dir_ + "/ssh_host_ed25519_key";
    int fd = open(key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, host->private_openssh.data(), host->private_openssh.size()),
              static_cast<ssize_t>(host->private_openssh.size()));
    close(fd);

    port_ = freeLoopbackPort();
    ASSERT_GT(port_, 0);
    std::string config = dir_ + "/sshd_config";
    std::ofstream(config) << "ListenAddress 127.0.0.1\n"
                          << "Port " << port_ << "\n"
                          << "HostKey " << key_path << "\n"
                          << "PidFile none\n"
                          << "UsePAM no\n"
                          << "StrictModes no\n"
                          << "PasswordAuthentication no\n"
                          << "KbdInteractiveAuthentication no\n"
                          << "AuthorizedKeysFile none\n";
    log_ = dir_ + "/sshd.log";

    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      int log_fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (log_fd >= 0) {
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
      }
      execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", config.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    // Wait for the listener (sshd binds within milliseconds; 10 s is for slow CI).
    auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (!acceptsConnections(port_)) {
      int status = 0;
      ASSERT_EQ(waitpid(pid_, &status, WNOHANG), 0) << "sshd exited:\n" << readFile(log_);
      ASSERT_LT(steady_clock::now(), deadline) << "sshd did not listen:\n" << readFile(log_);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (HasFailure() && !log_.empty()) std::cerr << "sshd log:\n" << readFile(log_);
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::string dir_;
  std::string log_;
  std::string host_public_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(HandshakeProbeTest, SucceedsWhenServerPresentsTheExpectedKey) {
  Status st = probeSshHandshake("127.0.0.1", port_, host_public_, kProbeTimeout);
  EXPECT_TRUE(st.ok()) << st.error().message;
}

TEST_F(HandshakeProbeTest, IgnoresTheCommentOfTheExpectedKey) {
  std::istringstream in(host_public_);
  std::string type, blob;
  in >> type >> blob;
  EXPECT_TRUE(probeSshHandshake("127.0.0.1", port_, type + " " + blob, kProbeTimeout).ok());
  EXPECT_TRUE(probeSshHandshake("localhost", port_, type + " " + blob + " other", kProbeTimeout).ok());
}

TEST_F(HandshakeProbeTest, AnotherHostKeyIsConflict) {
  auto other = generateEd25519("impostor");
  ASSERT_TRUE(other.ok());
  Status st = probeSshHandshake("127.0.0.1", port_, other->public_line, kProbeTimeout);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kConflict) << st.error().message;
}

TEST_F(HandshakeProbeTest, RepeatedProbesStayFast) {
  // The readiness loop probes over and over; each probe must clean up.
  auto start = steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    Status st = probeSshHandshake("127.0.0.1", port_, host_public_, kProbeTimeout);
    ASSERT_TRUE(st.ok()) << "probe " << i << ": " << st.error().message;
  }
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(HandshakeProbeTest, NothingListeningIsUnavailableAtOnce) {
  int closed_port = freeLoopbackPort();
  ASSERT_GT(closed_port, 0);
  auto start = steady_clock::now();
  Status st = probeSshHandshake("127.0.0.1", closed_port, host_public_, kProbeTimeout);
  auto elapsed = steady_clock::now() - start;
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kUnavailable) << st.error().message;
  EXPECT_LT(elapsed, std::chrono::seconds(1));
}

TEST_F(HandshakeProbeTest, SilentListenerIsUnavailableAfterTheTimeout) {
  // Accepts TCP (kernel backlog) but never speaks SSH: a container whose sshd hangs.
  BoundSocket silent(true);
  ASSERT_GT(silent.port(), 0);
  auto start = steady_clock::now();
  Status st = probeSshHandshake("127.0.0.1", silent.port(), host_public_, Millis(300));
  auto elapsed = steady_clock::now() - start;
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kUnavailable) << st.error().message;
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST_F(HandshakeProbeTest, MalformedExpectedKeyIsInvalid) {
  Status st = probeSshHandshake("127.0.0.1", port_, "not a key", kProbeTimeout);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kInvalid);
}

}  // namespace
}  // namespace sandman
