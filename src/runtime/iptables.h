// Iptables: runs iptables / ip6tables / *-restore for the session firewall,
// by fork/exec (no shell), with the xtables lock (-w). Stateless; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace sandman {

enum class IpFamily { kV4, kV6 };

struct CommandOutput {
  int exit_code = -1;  // -1: could not run, or killed by a signal
  std::string output;  // stdout and stderr together
};

class Iptables {
 public:
  explicit Iptables(IpFamily family) : family_(family) {}

  IpFamily family() const { return family_; }
  const char* tool() const { return family_ == IpFamily::kV4 ? "iptables" : "ip6tables"; }
  // iptables -w ARGS.
  CommandOutput run(const std::vector<std::string>& args) const;
  // iptables-restore -w --noflush with `script` on stdin: all or nothing.
  CommandOutput restore(const std::string& script) const;
  // True when the filter table answers (the tool is installed and the kernel has it).
  bool available() const;
  bool chainExists(const std::string& chain) const;
  // `-S CHAIN` lines split into arguments ("-A", CHAIN, ...); empty when the chain is absent.
  std::vector<std::vector<std::string>> listRules(const std::string& chain) const;
  // Names of every user-defined chain in the filter table.
  std::vector<std::string> chains() const;

 private:
  IpFamily family_;
};

// Splits one `iptables -S` line into arguments, honouring its double quotes.
std::vector<std::string> splitRuleLine(const std::string& line);

}  // namespace sandman
