#include "gateway/upstream_connection.h"

#include <libssh/server.h>  // ssh_set_message_callback
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "ssh/libssh_keys.h"

#include <utility>

namespace sandman {
namespace {


// Host key algorithms that make the sshd present the pinned key's type.
const char* hostKeyAlgorithms(ssh_key pinned) {
  switch (ssh_key_type(pinned)) {
    case SSH_KEYTYPE_RSA: return "rsa-sha2-512,rsa-sha2-256,ssh-rsa";
    case SSH_KEYTYPE_ECDSA_P256: return "ecdsa-sha2-nistp256";
    case SSH_KEYTYPE_ECDSA_P384: return "ecdsa-sha2-nistp384";
    case SSH_KEYTYPE_ECDSA_P521: return "ecdsa-sha2-nistp521";
    default: return "ssh-ed25519";
  }
}

}  // namespace

struct UpstreamTrampolines {
  static ssh_channel agent(ssh_session, void* u) {
    auto* self = static_cast<UpstreamConnection*>(u);
    return self->events_ ? self->events_->onUpstreamAgentChannel() : nullptr;
  }
  static int message(ssh_session, ssh_message m, void* u) {
    auto* self = static_cast<UpstreamConnection*>(u);
    return self->events_ ? self->events_->onUpstreamMessage(m) : 1;
  }
};

UpstreamConnection::UpstreamConnection(const GatewayRoute& route, ssh_event event, UpstreamEvents* events)
    : event_(event), events_(events) {
  pinned_ = importPublicKeyLine(route.upstream_host_key);
  if (pinned_ == nullptr) {
    failWith("sandman: the session's host key is not known", "bad pinned host key");
    return;
  }
  if (ssh_pki_import_privkey_base64(route.upstream_private_key.c_str(), nullptr, nullptr, nullptr,
                                    &identity_) != SSH_OK) {
    failWith("sandman: the session's login key is not usable", "bad upstream private key");
    return;
  }
  session_ = ssh_new();
  if (session_ == nullptr) {
    failWith("sandman: out of memory", "ssh_new failed");
    return;
  }
  int port = route.upstream_port;
  int off = 0, on = 1;
  if (ssh_options_set(session_, SSH_OPTIONS_PROCESS_CONFIG, &off) != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_HOST, route.upstream_host.c_str()) != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_PORT, &port) != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_USER, route.upstream_user.c_str()) != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_NODELAY, &on) != SSH_OK ||
      // The loopback leg to the session: the cheapest cipher with AES-NI.
      ssh_options_set(session_, SSH_OPTIONS_CIPHERS_C_S, "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com") != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_CIPHERS_S_C, "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com") != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_HOSTKEYS, hostKeyAlgorithms(pinned_)) != SSH_OK) {
    failWith("sandman: cannot reach the session", std::string("options: ") + ssh_get_error(session_));
    return;
  }
  ssh_set_blocking(session_, 0);
  if (events_ != nullptr) {
    // Without a message callback libssh would queue the sshd's channel
    // opens unanswered for ever; with it they are answered (default: refused).
    callbacks_.userdata = this;
    callbacks_.channel_open_request_auth_agent_function = UpstreamTrampolines::agent;
    ssh_callbacks_init(&callbacks_);
    ssh_set_callbacks(session_, &callbacks_);
    ssh_set_message_callback(session_, UpstreamTrampolines::message, this);
  }
}

UpstreamConnection::~UpstreamConnection() {
  events_ = nullptr;  // the owner is going away: refuse whatever arrives now
  if (session_ != nullptr) {
    if (in_event_) ssh_event_remove_session(event_, session_);
    ssh_disconnect(session_);
    ssh_free(session_);
  }
  ssh_key_free(pinned_);
  ssh_key_free(identity_);
}

UpstreamConnection::State UpstreamConnection::failWith(std::string user_line, std::string detail) {
  state_ = State::kFailed;
  error_ = std::move(user_line);
  detail_ = std::move(detail);
  return state_;
}

bool UpstreamConnection::verifyHostKey() {
  ssh_key presented = nullptr;
  if (ssh_get_server_publickey(session_, &presented) != SSH_OK) return false;
  bool same = ssh_key_cmp(presented, pinned_, SSH_KEY_CMP_PUBLIC) == 0;
  ssh_key_free(presented);
  return same;
}

UpstreamConnection::State UpstreamConnection::step() {
  if (state_ == State::kConnecting) {
    int rc = ssh_connect(session_);
    if (!in_event_ && ssh_get_fd(session_) != SSH_INVALID_SOCKET) {
      ssh_event_add_session(event_, session_);
      in_event_ = true;
      int on = 1;
      setsockopt(ssh_get_fd(session_), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    if (rc == SSH_AGAIN) return state_;
    if (rc != SSH_OK) {
      return failWith("sandman: cannot reach the session's ssh server",
                      std::string("connect: ") + ssh_get_error(session_));
    }
    if (!verifyHostKey()) {
      host_key_mismatch_ = true;
      return failWith("sandman: the session's host key does not match; refusing to connect",
                      "upstream host key mismatch");
    }
    state_ = State::kAuthenticating;
  }
  if (state_ == State::kAuthenticating) {
    int rc = ssh_userauth_publickey(session_, nullptr, identity_);
    if (rc == SSH_AUTH_AGAIN) return state_;
    if (rc != SSH_AUTH_SUCCESS) {
      return failWith("sandman: the session's ssh server refused the gateway's login",
                      std::string("upstream auth: ") + ssh_get_error(session_));
    }
    state_ = State::kReady;
  }
  return state_;
}

bool UpstreamConnection::alive() const {
  if (state_ != State::kReady) return false;
  int st = ssh_get_status(session_);
  return (st & (SSH_CLOSED | SSH_CLOSED_ERROR)) == 0 && ssh_is_connected(session_);
}

}  // namespace sandman
