// SshGateway end to end: a real OpenSSH sshd as the "session", the gateway on
// port 0 in front of it, and the real ssh / scp / sftp clients as children.
// The directory is a recording fake; everything runs on loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <algorithm>
#include <atomic>
#include <functional>
#include <vector>

#include "gateway/ssh_gateway.h"
#include "ssh/keys.h"

namespace sandman {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

class RecordingDirectory final : public GatewayDirectory {
 public:
  Result<GatewayRoute> route(const std::string& user) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = routes.find(user);
    if (it == routes.end()) return notFound("no session for " + user);
    return it->second;
  }
  Result<std::vector<std::string>> authorizedKeys(const std::string& user) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++key_lookups[user];
    return keys[user];
  }
  // Writes take write_delay, about what an fsync'd SQLite write takes, and
  // note whether they ran on the gateway's event loop.
  Result<int64_t> connectionStarted(const ConnectionRecord& c) override {
    std::this_thread::sleep_for(write_delay.load());
    std::lock_guard<std::mutex> lock(mu_);
    started.push_back(c);
    return static_cast<int64_t>(started.size());
  }
  Status connectionEnded(int64_t id, const ConnectionRecord& c) override {
    std::this_thread::sleep_for(write_delay.load());
    std::lock_guard<std::mutex> lock(mu_);
    ConnectionRecord r = c;
    r.id = id;
    ended.push_back(r);
    return Status();
  }
  Result<int64_t> pruneConnections(TimePoint, int) override { return int64_t{0}; }
  size_t writes() {
    std::lock_guard<std::mutex> lock(mu_);
    return started.size() + ended.size();
  }
  int keyLookups(const std::string& user) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = key_lookups.find(user);
    return it == key_lookups.end() ? 0 : it->second;
  }
  std::vector<ConnectionRecord> endedCopy() {
    std::lock_guard<std::mutex> lock(mu_);
    return ended;
  }
  std::vector<ConnectionRecord> startedCopy() {
    std::lock_guard<std::mutex> lock(mu_);
    return started;
  }
  void setRoute(const std::string& user, GatewayRoute r) {
    std::lock_guard<std::mutex> lock(mu_);
    routes[user] = std::move(r);
  }

  std::map<std::string, GatewayRoute> routes;  // set before start
  std::map<std::string, std::vector<std::string>> keys;
  std::map<std::string, int> key_lookups;
  std::atomic<std::chrono::milliseconds> write_delay{std::chrono::milliseconds(0)};  // set by the test, read by the journal thread

 private:
  std::mutex mu_;
  std::vector<ConnectionRecord> started;
  std::vector<ConnectionRecord> ended;
};

int freeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

int connectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void writeFile(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
  chmod(p.c_str(), 0600);
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct CmdResult {
  int rc = -1;
  std::string out, err;
  double seconds = 0;
};

class GatewayRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sandman-gw-" + std::to_string(getpid()) + "-" +
                                        std::to_string(steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir_);
    user_ = getpwuid(getuid())->pw_name;
    auto host = generateEd25519("sshd-host");
    auto upstream = generateEd25519("gateway-upstream");
    auto client = generateEd25519("client");
    auto wrong = generateEd25519("wrong");
    ASSERT_TRUE(host.ok() && upstream.ok() && client.ok() && wrong.ok());
    host_pub_ = host->public_line;
    writeFile(dir_ / "sshd_host_key", host->private_openssh);
    writeFile(dir_ / "authorized_keys", upstream->public_line + "\n");
    writeFile(dir_ / "client_key", client->private_openssh);
    writeFile(dir_ / "wrong_key", wrong->private_openssh);
    writeFile(dir_ / "upstream_key", upstream->private_openssh);
    startSshd();
    if (HasFatalFailure()) return;

    GatewayRoute r;
    r.session_id = "s-1";
    r.upstream_port = sshd_port_;
    r.upstream_host_key = host->public_line;
    r.upstream_private_key = upstream->private_openssh;
    r.upstream_user = user_;
    r.expires_at = std::chrono::system_clock::now() + 2h;
    directory_.routes["alice"] = r;
    GatewayRoute bad = r;
    bad.session_id = "s-2";
    bad.upstream_host_key = wrong->public_line;
    directory_.routes["carol"] = bad;
    for (const char* u : {"alice", "bob", "carol", "mallory"}) directory_.keys[u] = {client->public_line};

    SshGateway::Options o;
    o.bind = "127.0.0.1";
    o.port = 0;
    o.host_key_path = (dir_ / "gateway_host_key").string();
    o.login_grace = 3s;
    o.block_after_failures = 10;
    o.block_for = 60s;
    options_ = o;
    gateway_ = std::make_unique<SshGateway>(o, directory_, clock_);
    Status s = gateway_->start();
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_GT(gateway_->boundPort(), 0);
  }

  void TearDown() override {
    if (gateway_) gateway_->stop();
    if (sshd_pid_ > 0) {
      kill(sshd_pid_, SIGTERM);
      waitpid(sshd_pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void startSshd() {
    fs::create_directories("/run/sshd");
    sshd_port_ = freeLoopbackPort();
    std::ostringstream cfg;
    cfg << "ListenAddress 127.0.0.1\nPort " << sshd_port_ << "\nHostKey " << (dir_ / "sshd_host_key").string()
        << "\nAuthorizedKeysFile " << (dir_ / "authorized_keys").string()
        << "\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no"
        << "\nUsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\nPidFile none\nAllowTcpForwarding yes\n";
    cfg << sshd_extra_;
    writeFile(dir_ / "sshd_config", cfg.str());
    sshd_pid_ = fork();
    if (sshd_pid_ == 0) {
      std::string log = (dir_ / "sshd.log").string();
      freopen(log.c_str(), "w", stderr);
      execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", (dir_ / "sshd_config").c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      int fd = connectLoopback(sshd_port_);
      if (fd >= 0) {
        close(fd);
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "sshd did not start: " << readFile(dir_ / "sshd.log");
  }

  std::string sshOpts(const std::string& key = "client_key") const {
    return "-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -F /dev/null "
           "-o LogLevel=ERROR -i " + (dir_ / key).string();
  }
  std::string ssh(const std::string& user, const std::string& extra = "", const std::string& key = "client_key") {
    return "ssh " + sshOpts(key) + " -p " + std::to_string(gateway_->boundPort()) + " " + extra + " " + user +
           "@127.0.0.1";
  }

  // Runs `cmd` through sh with stdout/stderr captured in files.
  CmdResult run(const std::string& cmd, int timeout_s = 60) {
    static int n = 0;
    std::string tag = std::to_string(++n);
    fs::path out = dir_ / ("out" + tag), err = dir_ / ("err" + tag);
    std::string full = "timeout " + std::to_string(timeout_s) + " sh -c '" + cmd + "' >" + out.string() +
                       " 2>" + err.string() + " </dev/null";
    auto t0 = steady_clock::now();
    int st = std::system(full.c_str());
    CmdResult r;
    r.seconds = std::chrono::duration<double>(steady_clock::now() - t0).count();
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = readFile(out);
    r.err = readFile(err);
    return r;
  }

  fs::path dir_;
  std::string user_;
  std::string host_pub_;
  int sshd_port_ = 0;
  pid_t sshd_pid_ = -1;
  std::string sshd_extra_;  // more sshd_config lines, for startSshd
  RecordingDirectory directory_;
  SystemClock clock_;
  std::unique_ptr<SshGateway> gateway_;
  SshGateway::Options options_;

  // The same gateway (host key, directory) with --allow-agent-forwarding /
  // --allow-remote-forwarding as given.
  void restartGateway(bool agent, bool remote,
                      const std::function<void(SshGateway::Options&)>& tweak = nullptr) {
    gateway_->stop();
    SshGateway::Options o = options_;
    o.allow_agent_forwarding = agent;
    o.allow_remote_forwarding = remote;
    if (tweak) tweak(o);
    options_ = o;
    gateway_ = std::make_unique<SshGateway>(o, directory_, clock_);
    Status s = gateway_->start();
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
};

TEST_F(GatewayRelayTest, ExecKeepsExitStatusAndSeparatesStderr) {
  CmdResult r = run(ssh("alice") + " \"echo out; echo err >&2; exit 7\"");
  EXPECT_EQ(r.rc, 7) << r.err;
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n") << "exec stderr passes through unchanged, with no banner";
  // The login and its end are recorded with the bytes relayed.
  std::this_thread::sleep_for(500ms);
  auto ended = directory_.endedCopy();
  ASSERT_FALSE(ended.empty());
  EXPECT_EQ(ended.back().user_id, "alice");
  EXPECT_EQ(ended.back().session_id, "s-1");
  EXPECT_EQ(ended.back().outcome, "closed");
  EXPECT_GE(ended.back().bytes_out, 4u);
  EXPECT_TRUE(ended.back().ended_at.has_value());
}

TEST_F(GatewayRelayTest, EightMegabytesOfStdoutArriveIntact) {
  CmdResult mk = run("head -c 8388608 /dev/urandom > " + (dir_ / "big").string());
  ASSERT_EQ(mk.rc, 0);
  CmdResult r = run(ssh("alice") + " cat " + (dir_ / "big").string() + " > " + (dir_ / "big.copy").string());
  EXPECT_EQ(r.rc, 0) << r.err;
  CmdResult cmp = run("cmp " + (dir_ / "big").string() + " " + (dir_ / "big.copy").string());
  EXPECT_EQ(cmp.rc, 0) << cmp.out << cmp.err;
}

TEST_F(GatewayRelayTest, ForcedTtyGetsAPseudoTerminal) {
  CmdResult r = run(ssh("alice", "-tt") + " tty");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("/dev/pts/"), std::string::npos) << r.out;
}

TEST_F(GatewayRelayTest, ShellLoginShowsTheBannerOnce) {
  CmdResult r = run("echo \"echo in-shell; exit 3\" | " + ssh("alice", "-tt"));
  EXPECT_EQ(r.rc, 3) << r.err;
  std::string both = r.out + r.err;
  EXPECT_NE(both.find("sandman: session s-1, GPU none, 120 min left"), std::string::npos) << both;
  EXPECT_NE(both.find("in-shell"), std::string::npos) << both;
}

TEST_F(GatewayRelayTest, ScpBothWaysAndSftpGetKeepChecksums) {
  std::string src = (dir_ / "file16").string();
  ASSERT_EQ(run("head -c 16777216 /dev/urandom > " + src).rc, 0);
  std::string port = std::to_string(gateway_->boundPort());
  std::string base = sshOpts() + " -P " + port;
  CmdResult up = run("scp " + base + " " + src + " alice@127.0.0.1:" + (dir_ / "up").string());
  EXPECT_EQ(up.rc, 0) << up.err;
  CmdResult down = run("scp " + base + " alice@127.0.0.1:" + src + " " + (dir_ / "down").string());
  EXPECT_EQ(down.rc, 0) << down.err;
  CmdResult legacy = run("scp -O " + base + " alice@127.0.0.1:" + src + " " + (dir_ / "legacy").string());
  EXPECT_EQ(legacy.rc, 0) << legacy.err;
  writeFile(dir_ / "batch", "get " + src + " " + (dir_ / "sftp").string() + "\n");
  CmdResult sftp = run("sftp " + base + " -b " + (dir_ / "batch").string() + " alice@127.0.0.1");
  EXPECT_EQ(sftp.rc, 0) << sftp.err;
  for (const char* copy : {"up", "down", "legacy", "sftp"}) {
    EXPECT_EQ(run("cmp " + src + " " + (dir_ / copy).string()).rc, 0) << copy;
  }
}

// A relay direction whose destination window is shut keeps the rest in
// libssh and drains it from the pump. A write the destination refused there
// (a key re-exchange in progress, or a window a re-entered data callback had
// used up) used to drop the bytes already read: scp -O stalled short of its
// size, and uploads came out with another checksum, with exit status 0.
// Slow readers keep the windows shut; rekeying every 256 KB on the client's
// leg (download) and on the session's leg (upload) refuses writes often.
TEST_F(GatewayRelayTest, SlowReaderDuringRekeysGetsEveryByte) {
  kill(sshd_pid_, SIGTERM);
  waitpid(sshd_pid_, nullptr, 0);
  sshd_extra_ = "RekeyLimit 256K\n";
  startSshd();
  if (HasFatalFailure()) return;
  GatewayRoute r = directory_.routes["alice"];
  r.upstream_port = sshd_port_;
  directory_.setRoute("alice", r);

  std::string src = (dir_ / "file16").string();
  ASSERT_EQ(run("head -c 16777216 /dev/urandom > " + src).rc, 0);
  std::string slow = "/usr/bin/python3 " + (dir_ / "slow_reader.py").string();
  writeFile(dir_ / "slow_reader.py",
            "import os, time\n"
            "n = 0\n"
            "while True:\n"
            "    d = os.read(0, 16384)\n"
            "    if not d: break\n"
            "    while d: d = d[os.write(1, d):]\n"
            "    n += 1\n"
            "    if n % 8 == 0: time.sleep(0.001)\n");
  for (int round = 0; round < 2; ++round) {
    std::string down = (dir_ / ("down" + std::to_string(round))).string();
    CmdResult d = run(ssh("alice", "-o RekeyLimit=256K") + " cat " + src + " | " + slow + " > " + down, 120);
    EXPECT_EQ(d.rc, 0) << d.err;
    EXPECT_EQ(run("cmp " + src + " " + down).rc, 0) << "download, round " << round;
    std::string up = (dir_ / ("up" + std::to_string(round))).string();
    CmdResult u = run(ssh("alice") + " \"" + slow + " > " + up + "\" < " + src, 120);
    EXPECT_EQ(u.rc, 0) << u.err;
    EXPECT_EQ(run("cmp " + src + " " + up).rc, 0) << "upload, round " << round;
  }
}

TEST_F(GatewayRelayTest, LocalForwardReachesALoopbackEchoServer) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  listen(lfd, 4);
  int echo_port = ntohs(a.sin_port);
  std::thread echo([lfd] {
    int c = accept(lfd, nullptr, nullptr);
    char buf[4096];
    ssize_t n;
    while (c >= 0 && (n = read(c, buf, sizeof buf)) > 0) (void)!write(c, buf, static_cast<size_t>(n));
    if (c >= 0) close(c);
  });
  int local = freeLoopbackPort();
  std::string fwd = "-L " + std::to_string(local) + ":127.0.0.1:" + std::to_string(echo_port);
  std::thread client([&] { run(ssh("alice", fwd) + " sleep 4", 20); });
  int fd = -1;
  for (int i = 0; i < 60 && fd < 0; ++i) {
    std::this_thread::sleep_for(100ms);
    fd = connectLoopback(local);
  }
  ASSERT_GE(fd, 0);
  const std::string msg = "hello through the gateway";
  ASSERT_EQ(write(fd, msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
  std::string got;
  char buf[256];
  while (got.size() < msg.size()) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  EXPECT_EQ(got, msg);
  client.join();
  shutdown(lfd, SHUT_RDWR);
  close(lfd);
  echo.join();
}

TEST_F(GatewayRelayTest, UserWithoutSessionGetsMessageAndStatusOne) {
  CmdResult r = run(ssh("bob") + " true", 10);
  EXPECT_EQ(r.rc, 1);
  EXPECT_LT(r.seconds, 5.0);
  EXPECT_NE(r.err.find("sandman: no active session for bob; ask your admin or run: "
                       "sandman sessions create --user bob"),
            std::string::npos)
      << r.err;
  bool recorded = false;
  for (int i = 0; i < 100 && !recorded; ++i) {
    gateway_->flushRecords();
    for (const auto& c : directory_.endedCopy()) recorded |= c.user_id == "bob" && c.outcome == "refused";
    if (!recorded) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(recorded);
}

TEST_F(GatewayRelayTest, WrongKeyAndInvalidUserNameAreRefused) {
  CmdResult wrong = run(ssh("alice", "", "wrong_key") + " true", 10);
  EXPECT_EQ(wrong.rc, 255);
  EXPECT_NE(wrong.err.find("Permission denied"), std::string::npos) << wrong.err;
  CmdResult invalid = run(ssh("Robert.Tables") + " true", 10);
  EXPECT_EQ(invalid.rc, 255);
  EXPECT_EQ(directory_.keyLookups("Robert.Tables"), 0);
}

TEST_F(GatewayRelayTest, UpstreamHostKeyMismatchIsRefused) {
  CmdResult r = run(ssh("carol") + " echo should-not-run", 10);
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("host key does not match"), std::string::npos) << r.err;
}

TEST_F(GatewayRelayTest, EndSessionClosesAnOpenConnectionWithTheReason) {
  CmdResult r;
  std::thread client([&] { r = run(ssh("alice") + " sleep 30", 40); });
  auto deadline = steady_clock::now() + 10s;
  while (directory_.startedCopy().empty() && steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  std::this_thread::sleep_for(500ms);  // the upstream login and exec
  auto t0 = steady_clock::now();
  gateway_->endSession("s-1", "session deleted by admin");
  client.join();
  double took = std::chrono::duration<double>(steady_clock::now() - t0).count();
  EXPECT_LT(took, 2.0);
  EXPECT_NE(r.err.find("session deleted by admin"), std::string::npos) << r.err;
}

TEST_F(GatewayRelayTest, GarbageAndTruncatedBannersDoNotStallOthers) {
  int garbage = connectLoopback(gateway_->boundPort());
  ASSERT_GE(garbage, 0);
  std::string junk(8192, '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919u) ^ 0x5a);
  (void)!write(garbage, junk.data(), junk.size());
  int truncated = connectLoopback(gateway_->boundPort());
  ASSERT_GE(truncated, 0);
  (void)!write(truncated, "SSH-2.0-Trunc", 13);
  int bad_packet = connectLoopback(gateway_->boundPort());
  std::string hello = "SSH-2.0-OpenSSH_9.2\r\n";
  hello += std::string("\x00\x00\xff\xff\x10", 5) + junk.substr(0, 100);
  (void)!write(bad_packet, hello.data(), hello.size());
  CmdResult r = run(ssh("alice") + " echo still-serving", 10);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "still-serving\n");
  close(garbage);
  close(truncated);
  close(bad_packet);
}

TEST_F(GatewayRelayTest, BruteForceBurstBlocksTheSourceAndOthersAreServed) {
  // A user name of its own: failures also block the name they target.
  std::string cmd = "for i in $(seq 30); do " + ssh("mallory", "-b 127.0.0.2", "wrong_key") +
                    " true; done; exit 0";
  CmdResult burst = run(cmd, 120);
  EXPECT_EQ(burst.rc, 0);
  // Counted, all of them, without a record each.
  std::this_thread::sleep_for(300ms);
  EXPECT_GE(gateway_->stats().refusals_total["blocked"], 15u);
  // The source is blocked, even for a user it never named.
  CmdResult same_source = run(ssh("alice", "-b 127.0.0.2") + " true", 10);
  EXPECT_EQ(same_source.rc, 255);
  // The named user is not blocked from elsewhere (issue 10: anyone could
  // lock anyone out).
  CmdResult named = run(ssh("mallory") + " echo mine", 10);
  EXPECT_EQ(named.rc, 1) << named.err;  // logged in; mallory has no session
  EXPECT_NE(named.err.find("no active session for mallory"), std::string::npos) << named.err;
  CmdResult ok = run(ssh("alice") + " echo served", 10);
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(ok.out, "served\n");
}

TEST_F(GatewayRelayTest, HostKeyIsKeptAcrossRestarts) {
  std::string before = gateway_->hostPublicKey();
  struct stat st{};
  ASSERT_EQ(stat((dir_ / "gateway_host_key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  gateway_->stop();
  SshGateway::Options o;
  o.bind = "127.0.0.1";
  o.port = 0;
  o.host_key_path = (dir_ / "gateway_host_key").string();
  gateway_ = std::make_unique<SshGateway>(o, directory_, clock_);
  ASSERT_TRUE(gateway_->start().ok());
  EXPECT_EQ(gateway_->hostPublicKey(), before);
  EXPECT_EQ(before.rfind("ssh-ed25519 ", 0), 0u);
}

// ---- ssh -A and ssh -R (--allow-agent-forwarding, --allow-remote-forwarding) ----

// `ssh-agent -D` on a socket of the test dir, stopped (by pid) on scope exit.
class TestAgent {
 public:
  explicit TestAgent(const fs::path& dir) : sock_((dir / "agent.sock").string()) {
    pid_ = fork();
    if (pid_ == 0) {
      freopen("/dev/null", "w", stdout);
      execlp("ssh-agent", "ssh-agent", "-D", "-a", sock_.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 100 && !fs::exists(sock_); ++i) std::this_thread::sleep_for(20ms);
  }
  ~TestAgent() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  const std::string& sock() const { return sock_; }

 private:
  std::string sock_;
  pid_t pid_ = -1;
};

// A loopback echo server for any number of sequential connections.
class EchoServer {
 public:
  EchoServer() {
    lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    listen(lfd_, 8);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept(lfd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[16384];
        ssize_t n;
        while ((n = read(c, buf, sizeof buf)) > 0) {
          for (ssize_t off = 0; off < n;) {
            ssize_t w = write(c, buf + off, static_cast<size_t>(n - off));
            if (w <= 0) break;
            off += w;
          }
        }
        close(c);
      }
    });
  }
  ~EchoServer() {
    shutdown(lfd_, SHUT_RDWR);
    close(lfd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  int lfd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// Connects to 127.0.0.1:port (retrying up to 10 s while the forward comes
// up), sends `bytes` of a pattern and returns whether all of it came back.
bool echoesThrough(int port, size_t bytes) {
  int fd = -1;
  for (int i = 0; i < 100 && fd < 0; ++i) {
    fd = connectLoopback(port);
    if (fd < 0) std::this_thread::sleep_for(100ms);
  }
  if (fd < 0) return false;
  std::string msg(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) msg[i] = static_cast<char>('a' + (i * 7) % 26);
  std::thread writer([fd, &msg] {
    for (size_t off = 0; off < msg.size();) {
      ssize_t w = write(fd, msg.data() + off, msg.size() - off);
      if (w <= 0) return;
      off += static_cast<size_t>(w);
    }
  });
  std::string got;
  char buf[16384];
  while (got.size() < msg.size()) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  shutdown(fd, SHUT_RDWR);
  writer.join();
  close(fd);
  return got == msg;
}

TEST_F(GatewayRelayTest, AgentForwardingReachesTheClientsAgentWhenEnabled) {
  restartGateway(true, false);
  TestAgent agent(dir_);
  auto key = generateEd25519("e2e-agent-key");
  ASSERT_TRUE(key.ok());
  writeFile(dir_ / "agent_key", key->private_openssh);
  std::string env = "SSH_AUTH_SOCK=" + agent.sock() + " ";
  ASSERT_EQ(run(env + "ssh-add -q " + (dir_ / "agent_key").string()).rc, 0);
  CmdResult local = run(env + "ssh-add -l");
  ASSERT_EQ(local.rc, 0) << local.err;
  ASSERT_NE(local.out.find("(ED25519)"), std::string::npos) << local.out;
  // Twice in one command: two agent channels, one after the other.
  CmdResult r = run(env + ssh("alice", "-A -o IdentitiesOnly=yes") + " \"ssh-add -l && ssh-add -l\"", 30);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, local.out + local.out);
  // A signature made in the session by the client's agent (only the public
  // key is there), checked here.
  writeFile(dir_ / "agent_key.pub", key->public_line + "\n");
  writeFile(dir_ / "signed", "data\n");
  CmdResult sig = run(env + ssh("alice", "-A -o IdentitiesOnly=yes") + " ssh-keygen -q -Y sign -n file -f " +
                      (dir_ / "agent_key.pub").string() + " " + (dir_ / "signed").string(), 30);
  EXPECT_EQ(sig.rc, 0) << sig.err;
  CmdResult check = run("ssh-keygen -q -Y check-novalidate -n file -f " + (dir_ / "agent_key.pub").string() +
                        " -s " + (dir_ / "signed.sig").string() + " < " + (dir_ / "signed").string());
  EXPECT_EQ(check.rc, 0) << check.out << check.err;
}

TEST_F(GatewayRelayTest, AgentForwardingIsRefusedWithTheFlagNamedWhenOff) {
  TestAgent agent(dir_);
  std::string env = "SSH_AUTH_SOCK=" + agent.sock() + " ";
  CmdResult r = run(env + ssh("alice", "-A -o IdentitiesOnly=yes") + " ssh-add -l", 30);
  EXPECT_EQ(r.rc, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("Could not open a connection to your authentication agent"), std::string::npos) << r.err;
  CmdResult shell = run("echo exit | " + env + ssh("alice", "-A -tt -o IdentitiesOnly=yes"), 30);
  EXPECT_EQ(shell.rc, 0) << shell.err;
  EXPECT_NE(shell.err.find("sandman: agent forwarding (-A) is not available through this gateway; ask your "
                           "admin to enable --allow-agent-forwarding"),
            std::string::npos)
      << shell.err;
}

TEST_F(GatewayRelayTest, RemoteForwardOfAFixedPortReachesALocalServer) {
  restartGateway(false, true);
  EchoServer echo;
  int remote = freeLoopbackPort();
  std::string fwd = "-o ExitOnForwardFailure=yes -R " + std::to_string(remote) + ":127.0.0.1:" +
                    std::to_string(echo.port());
  CmdResult r;
  std::thread client([&] { r = run(ssh("alice", fwd) + " sleep 5", 30); });
  // Two connections, one of 1 MB: windows and short writes on the
  // channels the gateway opens to the client.
  EXPECT_TRUE(echoesThrough(remote, 64));
  EXPECT_TRUE(echoesThrough(remote, 1 << 20));
  client.join();
  EXPECT_EQ(r.rc, 0) << r.err;
}

TEST_F(GatewayRelayTest, RemoteForwardOfPortZeroReportsTheListeningPort) {
  restartGateway(false, true);
  EchoServer echo;
  fs::path err = dir_ / "rzero.err";
  std::string fwd = "-v -o ExitOnForwardFailure=yes -R 0:127.0.0.1:" + std::to_string(echo.port());
  CmdResult r;
  // Held for 10 s: under a loaded CI machine the echo can take seconds.
  std::thread client([&] { r = run(ssh("alice", fwd) + " sleep 10 2>" + err.string(), 30); });
  int port = 0;
  for (int i = 0; i < 100 && port == 0; ++i) {
    std::this_thread::sleep_for(50ms);
    std::string text = readFile(err);
    auto at = text.find("Allocated port ");
    if (at != std::string::npos) port = std::atoi(text.c_str() + at + 15);
  }
  ASSERT_GT(port, 0) << readFile(err);
  EXPECT_TRUE(echoesThrough(port, 4096));
  client.join();
  EXPECT_EQ(r.rc, 0) << readFile(err);
}

// -O forward / -O cancel through a ControlMaster: tcpip-forward and
// cancel-tcpip-forward on a connection that already moved data, while the
// gateway's post-traffic keepalives share libssh's one global-request slot.
TEST_F(GatewayRelayTest, RemoteForwardAddedAndCancelledOnALiveConnection) {
  restartGateway(false, true);
  EchoServer echo;
  std::string ctl = "-S " + (dir_ / "ctl").string();
  CmdResult master = run(ssh("alice", ctl + " -M -f -N"), 20);
  ASSERT_EQ(master.rc, 0) << master.err;
  CmdResult bulk = run(ssh("alice", ctl) + " head -c 4000000 /dev/zero | wc -c", 30);
  EXPECT_EQ(bulk.out, "4000000\n") << bulk.err;
  std::this_thread::sleep_for(700ms);  // inside the 2 s of keepalives after traffic (nudgeAfterTraffic)
  int remote = freeLoopbackPort();
  std::string spec = " -R " + std::to_string(remote) + ":127.0.0.1:" + std::to_string(echo.port());
  for (int round = 0; round < 2; ++round) {  // the second round reuses the port after the cancel
    CmdResult add = run(ssh("alice", ctl + " -O forward" + spec), 20);
    EXPECT_EQ(add.rc, 0) << add.err;
    EXPECT_TRUE(echoesThrough(remote, 100000)) << "round " << round;
    CmdResult cancel = run(ssh("alice", ctl + " -O cancel" + spec), 20);
    EXPECT_EQ(cancel.rc, 0) << cancel.err;
    bool closed = false;
    for (int i = 0; i < 50 && !closed; ++i) {
      int fd = connectLoopback(remote);
      closed = fd < 0;
      if (fd >= 0) close(fd);
      if (!closed) std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(closed) << "the session still listens on " << remote << " after -O cancel";
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_EQ(run(ssh("alice", ctl) + " echo alive", 20).out, "alive\n");
  run(ssh("alice", ctl + " -O exit"), 10);
}

// The client refuses the forwarded-tcpip channel (nothing listens on its
// side): the connection in the session is closed, the login goes on.
TEST_F(GatewayRelayTest, RemoteForwardToAClosedLocalPortClosesOnlyThatConnection) {
  restartGateway(false, true);
  int remote = freeLoopbackPort();
  int closed_local = freeLoopbackPort();
  std::string fwd = "-R " + std::to_string(remote) + ":127.0.0.1:" + std::to_string(closed_local);
  CmdResult r;
  std::thread client([&] { r = run(ssh("alice", fwd) + " \"sleep 3; echo still-here\"", 30); });
  int fd = -1;
  for (int i = 0; i < 100 && fd < 0; ++i) {
    fd = connectLoopback(remote);
    if (fd < 0) std::this_thread::sleep_for(50ms);
  }
  ASSERT_GE(fd, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[16];
  EXPECT_EQ(read(fd, buf, sizeof buf), 0);  // EOF, not a 5 s timeout
  close(fd);
  client.join();
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "still-here\n");
}

TEST_F(GatewayRelayTest, RemoteForwardIsRefusedWithTheFlagNamedWhenOff) {
  CmdResult r = run(ssh("alice", "-o ExitOnForwardFailure=yes -R 0:127.0.0.1:9") + " echo ran", 30);
  EXPECT_EQ(r.rc, 255) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  CmdResult shell = run("echo exit | " + ssh("alice", "-tt -R 0:127.0.0.1:9"), 30);
  EXPECT_EQ(shell.rc, 0) << shell.err;
  EXPECT_NE(shell.err.find("sandman: remote port forwarding (-R) is not available through this gateway; ask "
                           "your admin to enable --allow-remote-forwarding"),
            std::string::npos)
      << shell.err;
}


// Issue 10: a name with no session and no key was "authorized" with any key,
// then counted as authenticated, left the pre-auth accounting and its login
// deadline, and stayed open for ever (154 held from one address).
TEST_F(GatewayRelayTest, UserWithoutSessionCannotHoldAConnection) {
  directory_.keys.erase("nobody");  // no session, no key: any key "logs in" to the message
  restartGateway(false, false, [](SshGateway::Options& o) { o.unrouted_grace = 2s; });
  // -N: no channel, so the message is never asked for; the connection just sits.
  std::vector<pid_t> held;
  for (int i = 0; i < 12; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      std::string cmd = ssh("nobody", "-N -o ServerAliveInterval=0") + " >/dev/null 2>&1";
      execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      _exit(127);
    }
    held.push_back(pid);
  }
  // While open they count as pre-auth, never as logged in.
  std::this_thread::sleep_for(1s);
  GatewayStats st = gateway_->stats();
  EXPECT_EQ(st.open_connections, 0);
  EXPECT_LE(st.preauth_connections, options_.max_unauth_per_source);
  // All closed by the gateway within the unrouted deadline (+ sweep slack).
  auto deadline = steady_clock::now() + 8s;
  size_t alive = held.size();
  while (alive > 0 && steady_clock::now() < deadline) {
    alive = 0;
    for (pid_t& p : held) {
      if (p > 0 && waitpid(p, nullptr, WNOHANG) == p) p = -1;
      if (p > 0) ++alive;
    }
    std::this_thread::sleep_for(100ms);
  }
  for (pid_t p : held) {
    if (p > 0) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  }
  EXPECT_EQ(alive, 0u) << "connections of a user without a session were still open after 8 s";
  std::this_thread::sleep_for(500ms);
  st = gateway_->stats();
  EXPECT_EQ(st.preauth_connections, 0);
  EXPECT_GE(st.refusals_total["no_session"], 1u);
}

// Issue 10: ten failures naming alice from any address blocked alice for
// five minutes even with her right key.
TEST_F(GatewayRelayTest, LockOutAttemptFromAnotherAddressLeavesAliceAbleToLogIn) {
  std::string cmd = "for i in $(seq 25); do " + ssh("alice", "-b 127.0.0.3", "wrong_key") + " true; done; exit 0";
  CmdResult burst = run(cmd, 120);
  EXPECT_EQ(burst.rc, 0);
  // Stats are published by the sweep, which an idle loop runs only when its
  // poll times out: the last refusal may be newer than the last snapshot.
  auto deadline = steady_clock::now() + 5s;
  while (gateway_->stats().refusals_total["blocked"] < 1u && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(gateway_->stats().refusals_total["blocked"], 1u) << "the attacker's address was not blocked";
  CmdResult ok = run(ssh("alice") + " echo still-mine", 10);
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(ok.out, "still-mine\n");
}

// Issue 10: every refusal cost two fsync'd store writes and a log line on the
// event loop that relays everyone's traffic. Here each store write takes 5 ms
// (an fsync); a flood of refused connections runs while alice downloads.
TEST_F(GatewayRelayTest, RefusalFloodLeavesRelayThroughputAndTheStoreAlone) {
  const std::string download = ssh("alice", "-c aes128-gcm@openssh.com") + " \"head -c 48000000 /dev/zero\" | wc -c";
  CmdResult quiet = run(download, 60);
  ASSERT_EQ(quiet.rc, 0) << quiet.err;
  ASSERT_EQ(quiet.out, "48000000\n");
  directory_.write_delay = 5ms;
  const size_t writes_before = directory_.writes();
  // The flood: hold the per-source unauthenticated cap from 127.0.0.4 with
  // silent sockets, then connect and drop (each one is refused at accept).
  std::atomic<bool> flooding{true};
  std::atomic<int> attempts{0};
  std::thread flood([&] {
    std::vector<int> holders;
    auto connectFrom = [&](const char* ip) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      inet_pton(AF_INET, ip, &src.sin_addr);
      bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(gateway_->boundPort()));
      if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
      }
      return fd;
    };
    for (int i = 0; i < options_.max_unauth_per_source; ++i) holders.push_back(connectFrom("127.0.0.4"));
    while (flooding) {
      int fd = connectFrom("127.0.0.4");
      if (fd >= 0) close(fd);
      ++attempts;
      // About 1000 a second: far more than one fsync'd write per refusal on
      // the event loop could absorb, without the flooder itself taking the
      // CPUs the relay needs (the machine may have two).
      std::this_thread::sleep_for(1ms);
    }
    for (int fd : holders) close(fd);
  });
  CmdResult busy = run(download, 60);
  flooding = false;
  flood.join();
  ASSERT_EQ(busy.rc, 0) << busy.err;
  EXPECT_EQ(busy.out, "48000000\n");
  GatewayStats st = gateway_->stats();
  const uint64_t refused = st.refusals_total["limit"];
  EXPECT_GE(refused, 200u) << "the flood did not reach the gateway (" << attempts << " attempts)";
  // The store saw a sample (a budget per minute, plus the download's login), not one write per refusal.
  const size_t writes = directory_.writes() - writes_before;
  EXPECT_LE(writes, static_cast<size_t>(2 * options_.refusal_records_per_minute + 4))
      << refused << " refusals";
  const double ratio = quiet.seconds / busy.seconds;
  std::printf("refusal flood: %llu refused; relay %.2f s quiet, %.2f s under the flood, ratio %.2f; %zu store writes\n",
              static_cast<unsigned long long>(refused), quiet.seconds, busy.seconds, ratio, writes);
  EXPECT_GE(ratio, 0.5) << "the flood slowed the relay from " << quiet.seconds << " s to " << busy.seconds << " s";
}

// Issue 10: ssh-audit reported failing key exchanges (ecdh-sha2-nistp*).
// The offer must pass Debian's ssh-audit with no failing item (kex, host
// key, ciphers, MACs).
TEST_F(GatewayRelayTest, OfferPassesSshAuditWithNoFailingItem) {
  CmdResult audit = run("ssh-audit -n -p " + std::to_string(gateway_->boundPort()) + " 127.0.0.1", 60);
  // It saw our offer (not a connection error)...
  ASSERT_NE(audit.out.find("curve25519-sha256"), std::string::npos) << audit.out << audit.err;
  // ...and failed nothing: no "(fail)" item; exit 2 means a failure, 3 no answer.
  EXPECT_EQ(audit.out.find("fail"), std::string::npos) << audit.out;
  // ssh-audit's exit status: 0 all good, 2 warnings only (2.5.0 does not know
  // kex-strict-s-v00@openssh.com, OpenSSH's Terrapin counter-measure), 3 a
  // failure, 1 no connection.
  EXPECT_TRUE(audit.rc == 0 || audit.rc == 2) << "ssh-audit rc " << audit.rc << "\n" << audit.out;
  EXPECT_EQ(audit.out.find("ecdh-sha2-nistp"), std::string::npos) << audit.out;
}

// The same offer still meets every client a user may hold: OpenSSH (the
// other tests), PuTTY's plink, Paramiko (no GCM: AES-CTR + EtM) and AsyncSSH.
TEST_F(GatewayRelayTest, PuttyParamikoAndAsyncsshClientsLogIn) {
  const std::string port = std::to_string(gateway_->boundPort());
  const std::string key = (dir_ / "client_key").string();
  CmdResult ppk = run("puttygen " + key + " -O private -o " + (dir_ / "client.ppk").string(), 20);
  ASSERT_EQ(ppk.rc, 0) << ppk.err;
  writeFile(dir_ / "gw.pub", gateway_->hostPublicKey() + "\n");
  CmdResult fp = run("ssh-keygen -l -E sha256 -f " + (dir_ / "gw.pub").string() + " | cut -d\" \" -f2", 10);
  ASSERT_EQ(fp.rc, 0) << fp.err;
  std::string fingerprint = fp.out.substr(0, fp.out.find('\n'));
  CmdResult plink = run("plink -batch -ssh -P " + port + " -hostkey " + fingerprint + " -i " +
                            (dir_ / "client.ppk").string() + " alice@127.0.0.1 echo via-putty",
                        30);
  EXPECT_EQ(plink.rc, 0) << plink.err;
  EXPECT_EQ(plink.out, "via-putty\n");

  // Debian's python3 carries python3-paramiko and python3-asyncssh.
  writeFile(dir_ / "paramiko_client.py",
            "import sys, paramiko\n"
            "c = paramiko.SSHClient()\n"
            "c.set_missing_host_key_policy(paramiko.AutoAddPolicy())\n"
            "c.connect('127.0.0.1', port=int(sys.argv[1]), username='alice', key_filename=sys.argv[2],\n"
            "          allow_agent=False, look_for_keys=False, timeout=20)\n"
            "_, out, _ = c.exec_command('echo via-paramiko')\n"
            "sys.stdout.write(out.read().decode())\n"
            "print(c.get_transport().remote_cipher, file=sys.stderr)\n"
            "c.close()\n");
  CmdResult paramiko =
      run("/usr/bin/python3 " + (dir_ / "paramiko_client.py").string() + " " + port + " " + key, 30);
  EXPECT_EQ(paramiko.rc, 0) << paramiko.err;
  EXPECT_EQ(paramiko.out, "via-paramiko\n");

  writeFile(dir_ / "asyncssh_client.py",
            "import sys, asyncio, asyncssh\n"
            "async def main():\n"
            "    async with asyncssh.connect('127.0.0.1', port=int(sys.argv[1]), username='alice',\n"
            "                                client_keys=[sys.argv[2]], known_hosts=None, agent_path=None) as c:\n"
            "        r = await c.run('echo via-asyncssh', check=True)\n"
            "        sys.stdout.write(r.stdout)\n"
            "asyncio.run(main())\n");
  CmdResult asyncssh =
      run("/usr/bin/python3 " + (dir_ / "asyncssh_client.py").string() + " " + port + " " + key, 30);
  EXPECT_EQ(asyncssh.rc, 0) << asyncssh.err;
  EXPECT_EQ(asyncssh.out, "via-asyncssh\n");
}

// Issue 10: at the descriptor limit the accept loop spun at 100 % CPU on
// EMFILE. Now accepting pauses with a back-off, and resumes once fds are free.
TEST_F(GatewayRelayTest, AcceptLoopBacksOffWhenOutOfDescriptors) {
  // A child holds 30 connections (its own descriptors) once told to.
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  pid_t child = fork();
  if (child == 0) {
    char c;
    (void)!read(go[0], &c, 1);
    std::vector<int> held;
    for (int i = 0; i < 30; ++i) held.push_back(connectLoopback(gateway_->boundPort()));
    pause();
    _exit(0);
  }
  close(go[0]);
  int open_fds = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) (void)e, ++open_fds;
  rlimit saved{};
  getrlimit(RLIMIT_NOFILE, &saved);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(open_fds + 4);  // room for about two accepts
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  (void)!write(go[1], "x", 1);
  std::this_thread::sleep_for(500ms);  // the gateway runs into EMFILE
  rusage r0{}, r1{};
  getrusage(RUSAGE_SELF, &r0);
  std::this_thread::sleep_for(1s);
  getrusage(RUSAGE_SELF, &r1);
  setrlimit(RLIMIT_NOFILE, &saved);
  auto cpu = [](const rusage& r) {
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  const double busy = cpu(r1) - cpu(r0);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(go[1]);
  EXPECT_LT(busy, 0.3) << "the gateway burnt " << busy << " s of CPU in 1 s at EMFILE";
  std::this_thread::sleep_for(1500ms);  // longest back-off, then accepting resumes
  EXPECT_GE(gateway_->stats().accept_pauses_total, 1u);
  CmdResult ok = run(ssh("alice") + " echo back", 10);
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(ok.out, "back\n");
}

}  // namespace
}  // namespace sandman

