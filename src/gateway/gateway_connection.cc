#include "gateway/gateway_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "gateway/user_name.h"
#include "ssh/libssh_keys.h"

namespace sandman {
namespace {

constexpr Millis kUpstreamTimeout{15000};
constexpr Millis kCloseGrace{3000};

}  // namespace

struct ConnectionTrampolines {
  static GatewayConnection* self(void* u) { return static_cast<GatewayConnection*>(u); }
  static int authPubkey(ssh_session, const char* user, ssh_key key, char state, void* u) {
    return self(u)->onAuthPubkey(user, key, state);
  }
  static ssh_channel sessionChannel(ssh_session, void* u) { return self(u)->onSessionChannel(); }
  static int message(ssh_session, ssh_message m, void* u) { return self(u)->onMessage(m); }
};

GatewayConnection::GatewayConnection(uint64_t id, ssh_session down, std::string source_ip, std::string source,
                                     GatewayContext& ctx)
    : id_(id), down_(down), source_ip_(std::move(source_ip)), source_(std::move(source)), ctx_(ctx),
      started_at_(ctx.clock.now()) {}

GatewayConnection::~GatewayConnection() {
  releaseSlots();
  relays_.clear();  // callbacks removed and channels freed before their sessions
  upstream_.reset();
  if (in_event_) ssh_event_remove_session(ctx_.event, down_);
  ssh_disconnect(down_);
  ssh_free(down_);
  for (ssh_key k : keys_) ssh_key_free(k);
}

bool GatewayConnection::begin() {
  server_cb_.userdata = this;
  server_cb_.auth_pubkey_function = ConnectionTrampolines::authPubkey;
  server_cb_.channel_open_request_session_function = ConnectionTrampolines::sessionChannel;
  ssh_callbacks_init(&server_cb_);
  ssh_set_server_callbacks(down_, &server_cb_);
  ssh_set_message_callback(down_, ConnectionTrampolines::message, this);
  ssh_set_auth_methods(down_, SSH_AUTH_METHOD_PUBLICKEY);
  ssh_set_blocking(down_, 0);
  int on = 1;
  setsockopt(ssh_get_fd(down_), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  int rc = ssh_handle_key_exchange(down_);
  if (rc == SSH_ERROR) return false;
  if (ssh_event_add_session(ctx_.event, down_) != SSH_OK) return false;
  in_event_ = true;
  ctx_.loop.wakeAt(id_, started_at_ + ctx_.options.login_grace);
  return true;
}

// ---- authentication ----

bool GatewayConnection::keyAuthorized(const std::string& user, ssh_key key) {
  if (keys_user_ != user) {
    for (ssh_key k : keys_) ssh_key_free(k);
    keys_.clear();
    keys_user_ = user;
    auto lines = ctx_.directory.authorizedKeys(user);
    if (lines.ok()) {
      for (const std::string& line : *lines) {
        if (ssh_key k = importPublicKeyLine(line)) keys_.push_back(k);
      }
    }
  }
  if (keys_.empty()) {
    // No session and no registered key: any key "logs in" to nothing but the
    // one-line explanation and exit status 1 (see authenticated()), instead
    // of an opaque "Permission denied".
    no_keys_ = true;
    return true;
  }
  no_keys_ = false;
  return std::any_of(keys_.begin(), keys_.end(),
                     [key](ssh_key k) { return ssh_key_cmp(k, key, SSH_KEY_CMP_PUBLIC) == 0; });
}

int GatewayConnection::onAuthPubkey(const char* user_c, ssh_key key, char state) {
  std::string user = user_c ? user_c : "";
  if (authed_ || closing_) return SSH_AUTH_DENIED;
  if (!isValidGatewayUser(user)) {
    authFailed("", "invalid user name");
    return SSH_AUTH_DENIED;
  }
  last_user_ = user;
  // The key decides first: a key on the user's list logs in whatever others
  // did under her name; blocks only cut short the attempts that fail.
  if (!keyAuthorized(user, key)) {
    bool blocked = ctx_.limits.sourceBlocked(source_ip_) || ctx_.limits.userBlockedFrom(user, source_ip_);
    authFailed(user, blocked ? "blocked after repeated failures" : "key not authorized");
    return SSH_AUTH_DENIED;
  }
  if (state == SSH_PUBLICKEY_STATE_NONE) return SSH_AUTH_SUCCESS;  // the key may be used
  if (state != SSH_PUBLICKEY_STATE_VALID) {
    authFailed(user, "bad signature");
    return SSH_AUTH_DENIED;
  }
  authenticated(user);
  return SSH_AUTH_SUCCESS;
}

void GatewayConnection::authFailed(const std::string& user, const std::string& why) {
  ++failures_;
  bool newly_blocked = ctx_.limits.recordFailure(source_ip_, user);
  // A new block is logged always (at most one per address and block period:
  // the address block comes with its tenth failure); each failure only by
  // sample, so a flood costs a counter each, not a log line each.
  if (newly_blocked) {
    logWarn("gateway_blocked", {{"source", source_ip_}, {"user", user}, {"for_ms",
            std::to_string(ctx_.options.block_for.count())}});
  }
  if (ctx_.refusals.mayLog()) {
    logWarn("gateway_auth_failed", {{"source", source_}, {"user", user}, {"reason", why}});
  }
  if (failures_ >= ctx_.options.max_auth_attempts) {
    refuse("too many authentication attempts");
  }
}

void GatewayConnection::authenticated(const std::string& user) {
  authed_ = true;
  user_ = user;
  // Accepted without a key to check: never routed, even if a session
  // appeared since the keys were read.
  auto route = no_keys_ ? Result<GatewayRoute>(notFound("no keys")) : ctx_.directory.route(user);
  if (!route.ok()) {
    const bool none = route.error().kind == ErrorKind::kNotFound;
    unrouted(none ? "sandman: no active session for " + user +
                        "; ask your admin or run: sandman sessions create --user " + user
                  : "sandman: cannot look up the session for " + user + ": " + route.error().message,
             none ? "no_session" : "route_failed", none ? "no active session" : "route lookup failed");
    return;
  }
  if (!ctx_.caps.login(user)) {
    unrouted("sandman: " + user + " already has " + std::to_string(ctx_.options.max_connections_per_user) +
                 " connections open through the gateway, the most allowed; close one and try again",
             "user_limit", "too many connections for the user");
    return;
  }
  logged_in_ = true;
  ctx_.limits.authenticated(source_ip_);
  preauth_slot_ = false;
  route_ = std::move(route).value();
  ConnectionRecord rec = record("login", "");
  rec.ended_at.reset();
  journal_handle_ = ctx_.journal.started(rec);
  ++ctx_.counters.logins;
  logInfo("gateway_login", {{"user", user_}, {"session", route_.session_id}, {"source", source_}});
  upstream_ = std::make_unique<UpstreamConnection>(route_, ctx_.event, static_cast<UpstreamEvents*>(this));
  upstream_deadline_ = ctx_.clock.now() + kUpstreamTimeout;
  relayDirty();
  scheduleNext();
}

ConnectionRecord GatewayConnection::record(const std::string& outcome, const std::string& reason) const {
  ConnectionRecord rec;
  rec.user_id = user_;
  rec.session_id = route_.session_id;
  rec.source = source_;
  rec.outcome = outcome;
  rec.reason = reason;
  rec.started_at = started_at_;
  rec.ended_at = ctx_.clock.now();
  rec.bytes_in = bytes_in_;
  rec.bytes_out = bytes_out_;
  return rec;
}

void GatewayConnection::notifyChannels(const std::string& line) {
  for (size_t i = 0; i < relays_.size(); ++i) relays_[i]->notify(line);
}

// The connection stays counted as unauthenticated (its source's pre-auth
// slot, the login deadline) and is closed once its message is out, or at
// the unrouted deadline: a name without a session cannot hold a connection.
void GatewayConnection::unrouted(const std::string& message, const std::string& kind, const std::string& reason) {
  unrouted_ = true;
  failure_ = message;
  refusal_kind_ = kind;
  close_reason_ = reason;
  startFailureDeadline();
  relayDirty();
}

void GatewayConnection::startFailureDeadline() {
  if (failure_deadline_) return;
  failure_deadline_ = ctx_.clock.now() + ctx_.options.unrouted_grace;
  ctx_.loop.wakeAt(id_, *failure_deadline_);
}

bool GatewayConnection::channelAllowed() const {
  if (!authed_ || closing_) return false;
  if (unrouted_) return !had_channel_;  // one channel to carry the message
  return static_cast<int>(relays_.size()) < ctx_.options.max_channels_per_connection;
}

// The few kinds /metrics labels refusals with.
std::string GatewayConnection::refusalKind(const std::string& reason) const {
  if (!refusal_kind_.empty()) return refusal_kind_;
  if (reason == "login grace time exceeded") return "login_grace";
  return "auth_failed";
}

void GatewayConnection::releaseSlots() {
  if (released_) return;
  released_ = true;
  if (preauth_slot_) ctx_.limits.closedUnauthenticated(source_ip_);
  if (logged_in_) ctx_.caps.loggedOut(user_);
  ctx_.caps.closed(source_ip_);
}

// ---- channels and other requests ----

std::unique_ptr<RelayChannel> GatewayConnection::newRelay(RelayChannel::Kind kind, ssh_channel ch,
                                                          RelayChannel::Forward fwd) {
  auto relay = std::make_unique<RelayChannel>(kind, ch, *this, std::move(fwd));
  if (!failure_.empty()) {
    relay->fail(failure_);
  } else if (upstream_ && upstream_->state() == UpstreamConnection::State::kReady) {
    relay->attachUpstream(upstream_->session());
  }
  return relay;
}

ssh_channel GatewayConnection::onSessionChannel() {
  if (!channelAllowed()) return nullptr;
  ssh_channel ch = ssh_channel_new(down_);
  if (ch == nullptr) return nullptr;
  had_channel_ = true;
  relays_.push_back(newRelay(RelayChannel::Kind::kSession, ch, RelayChannel::Forward{}));
  return ch;
}

int GatewayConnection::onMessage(ssh_message m) {
  int type = ssh_message_type(m);
  int subtype = ssh_message_subtype(m);
  if (type == SSH_REQUEST_AUTH) {
    if (subtype != SSH_AUTH_METHOD_NONE && !authed_) {
      std::string user = ssh_message_auth_user(m) ? ssh_message_auth_user(m) : "";
      authFailed(isValidGatewayUser(user) ? user : "", "method not allowed");
    }
    return 1;  // default reply: failure, "publickey" may continue
  }
  if (!authed_ || closing_) return 1;
  if (type == SSH_REQUEST_CHANNEL_OPEN && subtype == SSH_CHANNEL_DIRECT_TCPIP) {
    if (!failure_.empty() || !channelAllowed()) return 1;
    RelayChannel::Forward fwd;
    const char* host = ssh_message_channel_request_open_destination(m);
    const char* orig = ssh_message_channel_request_open_originator(m);
    fwd.host = host ? host : "";
    fwd.port = ssh_message_channel_request_open_destination_port(m);
    fwd.originator = orig ? orig : "127.0.0.1";
    fwd.originator_port = ssh_message_channel_request_open_originator_port(m);
    ssh_channel ch = ssh_message_channel_request_open_reply_accept(m);
    if (ch == nullptr) return 0;
    relays_.push_back(newRelay(RelayChannel::Kind::kDirectTcpip, ch, std::move(fwd)));
    return 0;
  }
  if (type == SSH_REQUEST_GLOBAL &&
      (subtype == SSH_GLOBAL_REQUEST_TCPIP_FORWARD || subtype == SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD)) {
    return onRemoteForward(m, subtype == SSH_GLOBAL_REQUEST_TCPIP_FORWARD);
  }
  if (type == SSH_REQUEST_CHANNEL && subtype == SSH_CHANNEL_REQUEST_UNKNOWN) {
    return 1;
  }
  return 1;
}

// ---- RelayHost ----

void GatewayConnection::relayBytes(uint64_t to_session, uint64_t to_client) {
  bytes_in_ += to_session;
  bytes_out_ += to_client;
}

int GatewayConnection::minutesLeft() const {
  auto left = std::chrono::duration_cast<std::chrono::seconds>(route_.expires_at - ctx_.clock.now()).count();
  return left <= 0 ? 0 : static_cast<int>((left + 59) / 60);
}

std::string GatewayConnection::takeLoginBanner() {
  if (banner_taken_ || !failure_.empty()) return "";
  banner_taken_ = true;
  std::string line = "sandman: session " + route_.session_id + ", GPU " +
                     (route_.gpu.empty() ? "none" : route_.gpu) + ", " + std::to_string(minutesLeft()) +
                     " min left";
  for (const std::string& n : notices_) line += "\n" + n;
  notices_.clear();
  return line;
}

void GatewayConnection::relayNotice(const std::string& line) {
  for (size_t i = 0; i < relays_.size(); ++i) {
    if (relays_[i]->interactive() && banner_taken_) {
      relays_[i]->notify(line);
      return;
    }
  }
  notices_.push_back(line);
}

// ---- the pump, timers and the end ----

void GatewayConnection::stepUpstream() {
  if (!upstream_ || upstream_->state() == UpstreamConnection::State::kReady ||
      upstream_->state() == UpstreamConnection::State::kFailed) {
    return;
  }
  auto st = upstream_->step();
  if (st == UpstreamConnection::State::kReady) {
    upstream_deadline_.reset();
    for (auto& r : relays_) r->attachUpstream(upstream_->session());
  } else if (st == UpstreamConnection::State::kFailed) {
    logWarn(upstream_->hostKeyMismatch() ? "gateway_upstream_host_key_mismatch" : "gateway_upstream_failed",
            {{"user", user_}, {"session", route_.session_id}, {"reason", upstream_->detail()}});
    failure_ = upstream_->error();
    close_reason_ = upstream_->detail();
    for (auto& r : relays_) r->fail(failure_);
    forward_ops_.clear();
    startFailureDeadline();
  }
}

void GatewayConnection::pump() {
  if (done_) return;
  stepUpstream();
  stepForwards();
  for (size_t i = 0; i < relays_.size(); ++i) relays_[i]->pump();
  std::erase_if(relays_, [](const std::unique_ptr<RelayChannel>& r) { return r->finished(); });
  // An unrouted login whose message went out: the client closes first (so
  // it prints the line), or the closing deadline ends it.
  if (unrouted_ && had_channel_ && relays_.empty() && !closing_) {
    closing_ = true;
    closing_deadline_ = ctx_.clock.now() + kCloseGrace;
    ctx_.loop.wakeAt(id_, *closing_deadline_);
  }
  // Refused before login: drop now. After login the client closes first
  // (so it prints our last line), or the closing deadline ends it.
  if (closing_ && !authed_) finish("refused", close_reason_);
}

bool GatewayConnection::needsPolling() const {
  if (done_) return false;
  if (upstream_ && (upstream_->state() == UpstreamConnection::State::kConnecting ||
                    upstream_->state() == UpstreamConnection::State::kAuthenticating)) {
    return true;
  }
  if (!forward_ops_.empty() && upstream_ && upstream_->state() == UpstreamConnection::State::kReady) return true;
  return std::any_of(relays_.begin(), relays_.end(), [](const auto& r) { return r->busy(); });
}

void GatewayConnection::scheduleNext() {
  if (route_.expires_at == TimePoint{}) return;
  TimePoint warn = route_.expires_at - ctx_.options.expiry_warning;
  ctx_.loop.wakeAt(id_, warned_ ? route_.expires_at : std::max(warn, ctx_.clock.now()));
}

void GatewayConnection::onTimer(TimePoint now) {
  if (done_) return;
  if (!authed_ && now >= started_at_ + ctx_.options.login_grace) {
    refuse("login grace time exceeded");
    return;
  }
  if ((closing_deadline_ && now >= *closing_deadline_) || (failure_deadline_ && now >= *failure_deadline_) ||
      (unrouted_ && now >= started_at_ + ctx_.options.login_grace)) {
    finish(logged_in_ && !unrouted_ ? "closed" : "refused", close_reason_);
    return;
  }
  if (upstream_deadline_ && now >= *upstream_deadline_ && failure_.empty()) {
    upstream_deadline_.reset();
    failure_ = "sandman: the session's ssh server did not answer";
    close_reason_ = "upstream timeout";
    for (auto& r : relays_) r->fail(failure_);
    startFailureDeadline();
    relayDirty();
  }
  if (!authed_ || !failure_.empty() || route_.expires_at == TimePoint{}) return;
  if (now >= route_.expires_at) {
    endWith("session " + route_.session_id + " expired");
    return;
  }
  if (!warned_ && now >= route_.expires_at - ctx_.options.expiry_warning) {
    warned_ = true;
    std::string line = "sandman: session " + route_.session_id + " expires in " + std::to_string(minutesLeft()) +
                       " min; save your work";
    for (size_t i = 0; i < relays_.size(); ++i) relays_[i]->notify(line);
  }
  scheduleNext();
}

void GatewayConnection::refuse(const std::string& reason) {
  if (closing_) return;
  refused_ = true;  // logged (by sample) and recorded when it ends
  closing_ = true;
  close_reason_ = reason;
  relayDirty();  // dropped by the pump, outside libssh's callbacks
}

void GatewayConnection::endWith(const std::string& reason) {
  if (closing_ || done_) return;
  closing_ = true;
  close_reason_ = reason;
  logInfo("gateway_closing", {{"user", user_}, {"session", route_.session_id}, {"reason", reason}});
  for (size_t i = 0; i < relays_.size(); ++i) relays_[i]->shutdown("sandman: connection closed: " + reason);
  closing_deadline_ = ctx_.clock.now() + kCloseGrace;
  ctx_.loop.wakeAt(id_, *closing_deadline_);
  relayDirty();
}

void GatewayConnection::checkAlive() {
  if (done_) return;
  int st = ssh_get_status(down_);
  bool client_gone = (st & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 || ssh_get_error_code(down_) == SSH_FATAL;
  if (client_gone) {
    finish(logged_in_ ? "closed" : "refused", closing_ || unrouted_ ? close_reason_ : "client closed");
    return;
  }
  if (upstream_ && upstream_->state() == UpstreamConnection::State::kReady && !upstream_->alive()) {
    endWith("the session's ssh server went away");
    return;
  }
  noteTraffic();
}

// Records when the sweep last saw bytes move (for the idle policy).
void GatewayConnection::noteTraffic() {
  const uint64_t total = bytes_in_ + bytes_out_;
  if (total == swept_bytes_) return;
  swept_bytes_ = total;
  last_traffic_ = ctx_.clock.now();
}

void GatewayConnection::finish(const std::string& outcome, const std::string& reason) {
  if (done_) return;
  done_ = true;
  ctx_.counters.closed_bytes_in += bytes_in_;
  ctx_.counters.closed_bytes_out += bytes_out_;
  if (!logged_in_ && (failures_ > 0 || unrouted_ || refused_)) {
    ConnectionRecord rec = record("refused", reason);
    rec.user_id = last_user_;
    ctx_.refusals.refused(refusalKind(reason), rec);
  }
  if (journal_handle_) ctx_.journal.ended(*journal_handle_, record(outcome, reason));
  if (logged_in_) {
    logInfo("gateway_disconnect", {{"user", user_}, {"session", route_.session_id}, {"source", source_},
                                   {"reason", reason}, {"bytes_in", std::to_string(bytes_in_)},
                                   {"bytes_out", std::to_string(bytes_out_)}});
  }
  releaseSlots();
  ctx_.loop.markDirty(id_);
}

}  // namespace sandman
