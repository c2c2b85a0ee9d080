// GatewayConnection: one client connection to the SSH gateway, from the key
// exchange to the last byte: public-key auth against the directory, routing
// by user name, the upstream login, its relayed channels, the login banner,
// expiry warnings and the connection record. Owned and driven by SshGateway's
// event-loop thread only (not thread-safe); libssh callbacks only record and
// queue, the pump does the work.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/connection_journal.h"
#include "gateway/connection_limits.h"
#include "gateway/gateway_directory.h"
#include "gateway/gateway_options.h"
#include "gateway/preauth_limits.h"
#include "gateway/refusal_log.h"
#include "gateway/relay_channel.h"
#include "gateway/upstream_connection.h"

namespace sandman {

// What a connection needs from the loop that owns it.
class GatewayLoop {
 public:
  virtual ~GatewayLoop() = default;
  virtual void markDirty(uint64_t connection_id) = 0;  // pump it after this poll
  virtual void wakeAt(uint64_t connection_id, TimePoint when) = 0;  // call onTimer then
};

// Totals kept by the event-loop thread; SshGateway publishes them for /metrics.
struct GatewayCounters {
  uint64_t logins = 0;
  std::map<std::string, uint64_t> refusals;  // by kind: auth_failed, no_session, login_grace, limit, ...
  uint64_t closed_bytes_in = 0;   // bytes of connections that have finished
  uint64_t closed_bytes_out = 0;
};

struct GatewayContext {
  const GatewayOptions& options;
  GatewayDirectory& directory;
  const Clock& clock;
  PreauthLimits& limits;
  ConnectionLimits& caps;
  ConnectionJournal& journal;  // durable records, written off the event loop
  RefusalLog& refusals;        // counted; logged and recorded by sample
  ssh_event event;
  GatewayLoop& loop;
  GatewayCounters& counters;
};

class GatewayConnection final : public RelayHost, private UpstreamEvents {
 public:
  // Takes `down`, an accepted session whose source address was admitted by
  // both ctx.caps and ctx.limits; the connection gives those slots back.
  GatewayConnection(uint64_t id, ssh_session down, std::string source_ip, std::string source,
                    GatewayContext& ctx);
  ~GatewayConnection() override;  // relays, then upstream, then the client session
  GatewayConnection(const GatewayConnection&) = delete;
  GatewayConnection& operator=(const GatewayConnection&) = delete;

  bool begin();  // starts the key exchange; false: drop the connection now
  void pump();
  bool needsPolling() const;  // waiting on upstream replies
  void onTimer(TimePoint now);
  void checkAlive();  // the sweep: notices a client or upstream that went away
  // Tells every session channel `reason` on stderr and closes the connection.
  void endWith(const std::string& reason);
  bool done() const { return done_; }
  const std::string& sessionId() const { return route_.session_id; }
  // Logged in and routed to a session (a login routed nowhere stays pre-auth).
  bool relaying() const { return logged_in_ && !done_; }
  uint64_t bytesIn() const { return bytes_in_; }
  uint64_t bytesOut() const { return bytes_out_; }
  // When traffic was last seen by a sweep (sweep resolution, 250 ms); empty before any.
  std::optional<TimePoint> lastTraffic() const {
    return swept_bytes_ == 0 ? std::nullopt : std::optional<TimePoint>(last_traffic_);
  }
  // One line on stderr of every started shell/exec channel.
  void notifyChannels(const std::string& line);

  // RelayHost
  void relayDirty() override { ctx_.loop.markDirty(id_); }
  void relayBytes(uint64_t to_session, uint64_t to_client) override;
  std::string takeLoginBanner() override;
  void relayNotice(const std::string& line) override;
  bool agentForwardingAllowed() const override { return ctx_.options.allow_agent_forwarding; }

 private:
  friend struct ConnectionTrampolines;
  int onAuthPubkey(const char* user, ssh_key key, char state);
  ssh_channel onSessionChannel();
  int onMessage(ssh_message m);
  int onRemoteForward(ssh_message m, bool listen);
  // UpstreamEvents
  ssh_channel onUpstreamAgentChannel() override;
  int onUpstreamMessage(ssh_message m) override;
  void stepForwards();
  int pickRemotePort() const;

  bool keyAuthorized(const std::string& user, ssh_key key);
  void authFailed(const std::string& user, const std::string& why);
  void authenticated(const std::string& user);
  // Logged in, but to no session: `message` on the first channel, then closed.
  void unrouted(const std::string& message, const std::string& kind, const std::string& reason);
  void startFailureDeadline();
  bool channelAllowed() const;
  std::string refusalKind(const std::string& reason) const;
  void releaseSlots();
  void stepUpstream();
  void scheduleNext();
  void refuse(const std::string& reason);
  void finish(const std::string& outcome, const std::string& reason);
  ConnectionRecord record(const std::string& outcome, const std::string& reason) const;
  std::unique_ptr<RelayChannel> newRelay(RelayChannel::Kind kind, ssh_channel ch,
                                         RelayChannel::Forward fwd);
  int minutesLeft() const;

  uint64_t id_;
  ssh_session down_;
  std::string source_ip_;
  std::string source_;
  GatewayContext& ctx_;
  ssh_server_callbacks_struct server_cb_{};
  bool in_event_ = false;

  TimePoint started_at_;
  int failures_ = 0;
  std::string keys_user_;
  std::vector<ssh_key> keys_;
  bool no_keys_ = false;  // the user had no key at all: refuse after auth, with the reason
  std::string last_user_;

  bool authed_ = false;     // the key was accepted (routed or not)
  bool logged_in_ = false;  // routed to a session: counts against the user's cap
  bool unrouted_ = false;   // accepted but routed nowhere: pre-auth until closed
  bool preauth_slot_ = true;  // holds a PreauthLimits slot of its source
  bool released_ = false;     // slots given back
  bool refused_ = false;      // refuse() was called
  bool had_channel_ = false;  // an unrouted login opened its (one) channel
  std::string refusal_kind_;
  std::optional<TimePoint> failure_deadline_;
  std::string user_;
  GatewayRoute route_;
  std::string failure_;  // set when logged in without a usable session
  std::unique_ptr<UpstreamConnection> upstream_;
  std::optional<uint64_t> journal_handle_;
  void noteTraffic();
  uint64_t bytes_in_ = 0, bytes_out_ = 0;
  uint64_t swept_bytes_ = 0;  // bytes_in_ + bytes_out_ at the last sweep
  TimePoint last_traffic_{};
  std::vector<std::unique_ptr<RelayChannel>> relays_;

  // ssh -R: the forwards the client was told exist (same port in the
  // session), and the tcpip-forward / cancel requests still to be sent to the
  // session's sshd, one at a time (libssh has one global-request slot).
  struct RemoteForward {
    std::string addr;
    int port = 0;
  };
  struct ForwardOp {
    bool listen = true;
    std::string addr;
    int port = 0;
  };
  std::vector<RemoteForward> remote_forwards_;
  std::deque<ForwardOp> forward_ops_;
  bool banner_taken_ = false;
  std::vector<std::string> notices_;

  bool warned_ = false;
  bool closing_ = false;
  std::string close_reason_;
  std::optional<TimePoint> closing_deadline_;
  std::optional<TimePoint> upstream_deadline_;
  bool done_ = false;
};

}  // namespace sandman
