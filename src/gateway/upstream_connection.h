// UpstreamConnection: the gateway's libssh client session to a session
// container's sshd: non-blocking connect on the shared ssh_event, host key
// pinned to the one Sandman generated, public-key login with the session's
// own key. Used by the event-loop thread only (not thread-safe).
#pragma once

#include <libssh/libssh.h>

#include <string>

#include "gateway/gateway_directory.h"

namespace sandman {

class UpstreamConnection {
 public:
  enum class State { kConnecting, kAuthenticating, kReady, kFailed };

  UpstreamConnection(const GatewayRoute& route, ssh_event event);
  ~UpstreamConnection();  // leaves the event, disconnects, frees
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  // Advances connect / host-key check / auth; call after every poll until
  // the state is kReady or kFailed.
  State step();
  State state() const { return state_; }
  ssh_session session() const { return session_; }
  bool alive() const;  // kReady and the socket still up
  // For the user: one line. For the log: the detail.
  const std::string& error() const { return error_; }
  const std::string& detail() const { return detail_; }
  bool hostKeyMismatch() const { return host_key_mismatch_; }

 private:
  State failWith(std::string user_line, std::string detail);
  bool verifyHostKey();

  ssh_event event_;
  ssh_session session_ = nullptr;
  ssh_key pinned_ = nullptr;
  ssh_key identity_ = nullptr;
  bool in_event_ = false;
  bool host_key_mismatch_ = false;
  State state_ = State::kConnecting;
  std::string error_;
  std::string detail_;
};

}  // namespace sandman
