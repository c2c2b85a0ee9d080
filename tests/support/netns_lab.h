// NetnsLab: a "LAN service", a "public" service and a "metadata server" that
// live in a network namespace this test creates, routed from the host through
// a veth pair (recipe: see the project's netns notes), so egress rules can be
// proven against real addresses without touching anything real. Root only.
// One per test suite; not thread-safe. Everything goes in down(), also on failure.
#pragma once

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace sandman::testing {

struct CommandResult {
  int code = -1;
  std::string output;
};

// Runs `cmd` with sh -c; stdout and stderr together.
inline CommandResult sh(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen((cmd + " 2>&1 </dev/null").c_str(), "r");
  if (p == nullptr) return r;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class NetnsLab {
 public:
  static constexpr const char* kMetadata = "169.254.169.254";
  static constexpr const char* kLan = "10.213.78.1";     // in 10/8: private
  static constexpr const char* kPublic = "198.51.100.7";  // TEST-NET-2: not private
  static constexpr const char* kHostSide = "10.213.77.1";  // the host's end of the veth
  static constexpr const char* kLabSide = "10.213.77.2";

  // Every service: address:port, each answering one line "address:port".
  static std::vector<std::string> services() {
    return {std::string(kMetadata) + ":80", std::string(kLan) + ":8080", std::string(kLan) + ":8081",
            std::string(kPublic) + ":80"};
  }

  // Empty string on success, else what went wrong.
  std::string up() {
    std::random_device rd;
    ns_ = "sm-egress-" + std::to_string(rd() % 100000);
    host_veth_ = ns_.substr(3) + "h";  // 15 chars at most
    lab_veth_ = ns_.substr(3) + "n";
    for (const char* route : {kMetadata, kLan, kPublic}) {
      if (sh(std::string("ip route show ") + route + "/32").output.size() > 0) {
        return std::string("a route to ") + route + " exists already (another run?)";
      }
    }
    const std::vector<std::string> steps = {
        "ip netns add " + ns_,
        "ip link add " + host_veth_ + " type veth peer name " + lab_veth_,
        "ip link set " + lab_veth_ + " netns " + ns_,
        "ip addr add " + std::string(kHostSide) + "/30 dev " + host_veth_,
        "ip link set " + host_veth_ + " up",
        "ip -n " + ns_ + " addr add " + kLabSide + "/30 dev " + lab_veth_,
        "ip -n " + ns_ + " link set " + lab_veth_ + " up",
        "ip -n " + ns_ + " link set lo up",
        "ip -n " + ns_ + " addr add " + kMetadata + "/32 dev lo",
        "ip -n " + ns_ + " addr add " + kLan + "/32 dev lo",
        "ip -n " + ns_ + " addr add " + kPublic + "/32 dev lo",
        "ip route add " + std::string(kMetadata) + "/32 via " + kLabSide + " dev " + host_veth_,
        "ip route add " + std::string(kLan) + "/32 via " + kLabSide + " dev " + host_veth_,
        "ip route add " + std::string(kPublic) + "/32 via " + kLabSide + " dev " + host_veth_,
    };
    for (const auto& s : steps) {
      auto r = sh(s);
      if (r.code != 0) return s + ": " + r.output;
    }
    // Never probe a real address: each route must lead into the lab.
    for (const char* a : {kMetadata, kLan, kPublic}) {
      if (sh(std::string("ip route get ") + a).output.find("dev " + host_veth_) == std::string::npos) {
        return std::string("route to ") + a + " does not lead into the lab";
      }
    }
    // socketserver, not http.server: no reverse DNS lookup when binding.
    std::string server =
        "import socketserver,sys,threading\n"
        "class H(socketserver.BaseRequestHandler):\n"
        "  def handle(self):\n"
        "    self.request.sendall(('%s:%d\\n' % self.server.server_address).encode())\n"
        "socketserver.ThreadingTCPServer.allow_reuse_address = True\n"
        "for spec in sys.argv[1:]:\n"
        "  h, p = spec.rsplit(':', 1)\n"
        "  s = socketserver.ThreadingTCPServer((h, int(p)), H)\n"
        "  threading.Thread(target=s.serve_forever, daemon=True).start()\n"
        "threading.Event().wait()\n";
    char script[] = "/tmp/sandman-netns-lab-XXXXXX";
    int fd = ::mkstemp(script);
    if (fd < 0 || ::write(fd, server.data(), server.size()) != static_cast<ssize_t>(server.size())) {
      return "cannot write the lab's server script";
    }
    ::close(fd);
    script_ = script;
    std::string args;
    for (const auto& s : services()) args += " " + s;
    // Its pid is kept (sh's $$, which exec turns into ip's, then python's):
    // down() stops it by pid, as the namespace may already be gone.
    sh("sh -c 'echo $$ > " + script_ + ".pid; exec ip netns exec " + ns_ + " /usr/bin/python3 " + script_ + args +
       "' >/dev/null 2>&1 </dev/null &");
    for (int i = 0; i < 100; ++i) {
      auto listening = sh("ip netns exec " + ns_ + " ss -Hltn");
      bool all = true;
      for (const auto& s : services()) all = all && listening.output.find(s) != std::string::npos;
      if (all) return "";
      ::usleep(100 * 1000);
    }
    return "the lab's servers did not start listening";
  }

  void down() {
    if (ns_.empty()) return;
    sh("ip netns pids " + ns_ + " | xargs -r kill");
    if (!script_.empty()) {
      std::ifstream pid_file(script_ + ".pid");
      pid_t pid = 0;
      if (pid_file >> pid && pid > 1) ::kill(pid, SIGTERM);
      ::unlink((script_ + ".pid").c_str());
    }
    for (const char* a : {kMetadata, kLan, kPublic}) {
      sh(std::string("ip route del ") + a + "/32 via " + kLabSide + " dev " + host_veth_);
    }
    sh("ip link del " + host_veth_);
    sh("ip netns del " + ns_);
    if (!script_.empty()) ::unlink(script_.c_str());
    ns_.clear();
  }

  // What the host itself gets from a service: its line, or "" (the control).
  static std::string fromHost(const std::string& service) {
    auto colon = service.rfind(':');
    return trim(sh("timeout 3 bash -c 'exec 3<>/dev/tcp/" + service.substr(0, colon) + "/" +
                   service.substr(colon + 1) + " && head -1 <&3'")
                    .output);
  }

  const std::string& ns() const { return ns_; }

  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
  }

 private:
  std::string ns_, host_veth_, lab_veth_, script_;
};

}  // namespace sandman::testing
