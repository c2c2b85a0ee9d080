#include "runtime/iptables.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

namespace sandman {
namespace {

// Writes all of `data` to fd; the child may stop reading early (EPIPE is ignored by caller).
void writeAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Runs argv[0] (looked up in PATH) with `input` on stdin; collects stdout+stderr.
// Inputs here are a few KiB, below a pipe's buffer, so writing before reading cannot deadlock.
CommandOutput runCommand(std::vector<std::string> args, const std::string& input) {
  CommandOutput out;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return out;
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    ::close(in_pipe[0]);
    ::close(in_pipe[1]);
    return out;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(out_pipe[1], 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  if (pid > 0) writeAll(in_pipe[1], input);
  ::close(in_pipe[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out_pipe[0], buf, sizeof buf)) > 0) out.output.append(buf, static_cast<size_t>(n));
  ::close(out_pipe[0]);
  if (pid < 0) return out;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return out;
  }
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace

CommandOutput Iptables::run(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {tool(), "-w"};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(std::move(argv), "");
}

CommandOutput Iptables::restore(const std::string& script) const {
  std::string restore_tool = std::string(tool()) + "-restore";
  return runCommand({restore_tool, "-w", "--noflush"}, script);
}

bool Iptables::available() const { return run({"-S", "INPUT"}).exit_code == 0; }

bool Iptables::chainExists(const std::string& chain) const { return run({"-S", chain, "1"}).exit_code == 0; }

std::vector<std::vector<std::string>> Iptables::listRules(const std::string& chain) const {
  std::vector<std::vector<std::string>> rules;
  CommandOutput r = run({"-S", chain});
  if (r.exit_code != 0) return rules;
  std::istringstream lines(r.output);
  std::string line;
  while (std::getline(lines, line)) {
    auto args = splitRuleLine(line);
    if (args.size() > 2 && args[0] == "-A") rules.push_back(std::move(args));
  }
  return rules;
}

std::vector<std::string> Iptables::chains() const {
  std::vector<std::string> names;
  CommandOutput r = run({"-S"});
  if (r.exit_code != 0) return names;
  std::istringstream lines(r.output);
  std::string line;
  while (std::getline(lines, line)) {
    auto args = splitRuleLine(line);
    if (args.size() == 2 && args[0] == "-N") names.push_back(args[1]);
  }
  return names;
}

std::vector<std::string> splitRuleLine(const std::string& line) {
  std::vector<std::string> args;
  std::string cur;
  bool quoted = false, have = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted && c == '\\' && i + 1 < line.size()) {
      cur += line[++i];
    } else if (c == '"') {
      quoted = !quoted;
      have = true;
    } else if (!quoted && (c == ' ' || c == '\t')) {
      if (have) args.push_back(cur);
      cur.clear();
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) args.push_back(cur);
  return args;
}

}  // namespace sandman
