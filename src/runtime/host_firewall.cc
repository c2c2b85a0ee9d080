#include "runtime/host_firewall.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

namespace sandman {
namespace {

// Runs iptables with argv; returns its exit status (-1 when it cannot run).
int iptables(std::vector<std::string> args) {
  args.insert(args.begin(), {"iptables", "-w"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    ::execvp("iptables", argv.data());
    ::_exit(127);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Status ensureRule(const std::vector<std::string>& rule) {
  std::vector<std::string> check = {"-C", "INPUT"};
  check.insert(check.end(), rule.begin(), rule.end());
  if (iptables(check) == 0) return {};
  std::vector<std::string> insert = {"-I", "INPUT", "1"};
  insert.insert(insert.end(), rule.begin(), rule.end());
  int rc = iptables(insert);
  if (rc == 0) return {};
  return unavailable("iptables could not add an INPUT rule (exit " + std::to_string(rc) +
                     "): run as root with iptables installed, or start with --isolate-host=false");
}

}  // namespace

Status isolateBridgeFromHost(const std::string& iface) {
  // Inserted at position 1 in reverse order: ACCEPT established ends up first.
  if (auto st = ensureRule({"-i", iface, "-j", "DROP", "-m", "comment", "--comment", "sandman: sessions may not reach the host"});
      !st.ok()) {
    return st;
  }
  return ensureRule({"-i", iface, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT", "-m",
                     "comment", "--comment", "sandman: replies to host-opened connections"});
}

}  // namespace sandman
