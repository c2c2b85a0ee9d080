// UpstreamConnection: the gateway's libssh client session to a session
// container's sshd: non-blocking connect on the shared ssh_event, host key
// pinned to the one Sandman generated, public-key login with the session's
// own key. Used by the event-loop thread only (not thread-safe).
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <string>

#include "core/gateway_directory.h"

namespace sandman {

// What the session's sshd starts on its own (a forwarded agent's channel, a
// remote forward's connection): the connection that owns the upstream
// decides. Called from libssh callbacks: only record, accept and queue.
class UpstreamEvents {
 public:
  virtual ~UpstreamEvents() = default;
  // An "auth-agent@openssh.com" channel: a new channel of the upstream
  // session to accept it with, or nullptr to refuse.
  virtual ssh_channel onUpstreamAgentChannel() = 0;
  // Any other message (forwarded-tcpip opens): 1 for libssh's default reply
  // (refusal), 0 when handled, as for ssh_set_message_callback.
  virtual int onUpstreamMessage(ssh_message m) = 0;
};

class UpstreamConnection {
 public:
  enum class State { kConnecting, kAuthenticating, kReady, kFailed };

  UpstreamConnection(const GatewayRoute& route, ssh_event event, UpstreamEvents* events = nullptr);
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
  friend struct UpstreamTrampolines;
  State failWith(std::string user_line, std::string detail);
  bool verifyHostKey();

  ssh_event event_;
  UpstreamEvents* events_;  // nullptr once this is being destroyed
  ssh_callbacks_struct callbacks_{};
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
