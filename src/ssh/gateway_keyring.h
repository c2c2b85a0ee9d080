// GatewayKeyring: the private keys Sandman holds so that its gateway can log
// into each session's sshd (never the user's key). One 0600 file per
// session under a root-only directory, removed when the session ends; kept
// on disk so that sessions stay reachable through a daemon restart.
// Thread-safe (one file per session).
#pragma once

#include <string>

#include "common/result.h"

namespace sandman {

class GatewayKeyring {
 public:
  explicit GatewayKeyring(std::string dir) : dir_(std::move(dir)) {}
  Status put(const std::string& session_id, const std::string& private_key) const;
  Result<std::string> get(const std::string& session_id) const;  // kNotFound when absent
  void remove(const std::string& session_id) const;

 private:
  std::string dir_;
};

}  // namespace sandman
