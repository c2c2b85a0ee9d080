// GatewayConnection, ssh -A and ssh -R: the client's tcpip-forward requests
// replayed to the session's sshd, and the agent and forwarded-tcpip channels
// that sshd opens, relayed back to the client (behind --allow-* flags).
#include <algorithm>
#include <random>
#include <utility>

#include "common/log.h"
#include "gateway/gateway_connection.h"

namespace sandman {

// The reply to the client's tcpip-forward goes out when this returns and the
// ssh_message is freed then (pitfall 1), long before the session's sshd could
// answer (the upstream is often not even logged in yet). So it is accepted
// optimistically and a failure upstream is reported as a notice. Port 0 is
// resolved here, not by the sshd: the client must learn the port in this
// reply, and it is the port the forward listens on in the session.
int GatewayConnection::onRemoteForward(ssh_message m, bool listen) {
  const char* addr_c = ssh_message_global_request_address(m);
  std::string addr = addr_c ? addr_c : "";
  int port = ssh_message_global_request_port(m);
  if (!ctx_.options.allow_remote_forwarding) {
    if (listen) {
      logInfo("gateway_remote_forward_refused", {{"user", user_}, {"source", source_}});
      relayNotice("sandman: remote port forwarding (-R) is not available through this gateway; "
                  "ask your admin to enable --allow-remote-forwarding");
    }
    return 1;
  }
  if (!failure_.empty()) return 1;
  auto same_port = [port](const RemoteForward& f) { return f.port == port; };
  auto it = std::find_if(remote_forwards_.begin(), remote_forwards_.end(), same_port);
  if (!listen) {
    if (it == remote_forwards_.end()) return 1;
    forward_ops_.push_back({false, it->addr, it->port});
    remote_forwards_.erase(it);
    ssh_message_global_request_reply_success(m, 0);
    relayDirty();
    return 0;
  }
  if (port < 0 || port > 65535 || (port > 0 && port < 1024)) {
    // The session's sshd runs as the user: it may not bind these.
    relayNotice("sandman: remote port forwarding (-R) of port " + std::to_string(port) +
                " refused: use a port from 1024 to 65535 (or 0)");
    return 1;
  }
  if (it != remote_forwards_.end()) return 1;  // already forwarded on this connection
  int chosen = port == 0 ? pickRemotePort() : port;
  if (chosen == 0) return 1;
  remote_forwards_.push_back({addr, chosen});
  forward_ops_.push_back({true, addr, chosen});
  logInfo("gateway_remote_forward", {{"user", user_}, {"session", route_.session_id}, {"address", addr},
                                     {"port", std::to_string(chosen)}});
  ssh_message_global_request_reply_success(m, static_cast<uint16_t>(chosen));
  relayDirty();
  return 0;
}

// An unused-looking port of the kernel's ephemeral range, as sshd's own
// `bind(0)` would pick; only this connection's forwards are known to be taken.
int GatewayConnection::pickRemotePort() const {
  static thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick(32768, 60999);
  for (int i = 0; i < 64; ++i) {
    int p = pick(rng);
    if (std::none_of(remote_forwards_.begin(), remote_forwards_.end(),
                     [p](const RemoteForward& f) { return f.port == p; })) {
      return p;
    }
  }
  return 0;
}

// One tcpip-forward / cancel-tcpip-forward in flight at a time, re-sent until
// answered (non-blocking libssh returns SSH_AGAIN meanwhile).
void GatewayConnection::stepForwards() {
  if (forward_ops_.empty() || !upstream_ || upstream_->state() != UpstreamConnection::State::kReady) return;
  ssh_session up = upstream_->session();
  while (!forward_ops_.empty()) {
    const ForwardOp& op = forward_ops_.front();
    int rc = op.listen ? ssh_channel_listen_forward(up, op.addr.c_str(), op.port, nullptr)
                       : ssh_channel_cancel_forward(up, op.addr.c_str(), op.port);
    if (rc == SSH_AGAIN) return;
    ForwardOp done = op;
    forward_ops_.pop_front();
    if (rc == SSH_OK || !done.listen) continue;
    std::erase_if(remote_forwards_, [&done](const RemoteForward& f) { return f.port == done.port; });
    logWarn("gateway_remote_forward_failed", {{"user", user_}, {"session", route_.session_id},
                                             {"port", std::to_string(done.port)}, {"reason", ssh_get_error(up)}});
    relayNotice("sandman: remote port forwarding (-R) of port " + std::to_string(done.port) +
                " failed in the session (port in use, or the session predates --allow-remote-forwarding)");
  }
}

ssh_channel GatewayConnection::onUpstreamAgentChannel() {
  if (!ctx_.options.allow_agent_forwarding || closing_ || done_ || !upstream_) return nullptr;
  ssh_channel up = ssh_channel_new(upstream_->session());
  ssh_channel down = up != nullptr ? ssh_channel_new(down_) : nullptr;
  if (down == nullptr) {
    if (up != nullptr) ssh_channel_free(up);
    return nullptr;
  }
  // libssh confirms `up` once this returns; the relay opens the client's twin
  // from the pump.
  relays_.push_back(
      std::make_unique<RelayChannel>(RelayChannel::Kind::kAgent, up, down, *this, RelayChannel::Forward{}));
  return up;
}

int GatewayConnection::onUpstreamMessage(ssh_message m) {
  if (ssh_message_type(m) != SSH_REQUEST_CHANNEL_OPEN ||
      ssh_message_subtype(m) != SSH_CHANNEL_FORWARDED_TCPIP) {
    return 1;
  }
  if (!ctx_.options.allow_remote_forwarding || closing_ || done_) return 1;
  int port = ssh_message_channel_request_open_destination_port(m);
  auto it = std::find_if(remote_forwards_.begin(), remote_forwards_.end(),
                         [port](const RemoteForward& f) { return f.port == port; });
  if (it == remote_forwards_.end()) return 1;  // not one this client asked for (or cancelled)
  RelayChannel::Forward fwd;
  // The client matches the open against its forward by the address it sent.
  fwd.host = it->addr;
  fwd.port = port;
  const char* orig = ssh_message_channel_request_open_originator(m);
  fwd.originator = orig ? orig : "127.0.0.1";
  fwd.originator_port = ssh_message_channel_request_open_originator_port(m);
  ssh_channel down = ssh_channel_new(down_);
  if (down == nullptr) return 1;
  ssh_channel up = ssh_message_channel_request_open_reply_accept(m);
  if (up == nullptr) {
    ssh_channel_free(down);
    return 0;
  }
  relays_.push_back(
      std::make_unique<RelayChannel>(RelayChannel::Kind::kForwardedTcpip, up, down, *this, std::move(fwd)));
  return 0;
}

}  // namespace sandman
