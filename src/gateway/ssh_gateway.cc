#include "gateway/ssh_gateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "gateway/host_key.h"

namespace sandman {
namespace {

constexpr int kMaxPollMs = 100;
constexpr Millis kSweepEvery{250};

// "ip" and "ip:port" of the peer of `fd`.
std::pair<std::string, std::string> peerOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {"unknown", "unknown"};
  char host[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return {host, std::string(host) + ":" + std::to_string(port)};
}

}  // namespace

SshGateway::SshGateway(Options options, GatewayDirectory& directory, const Clock& clock)
    : options_(std::move(options)), directory_(directory), clock_(clock), limits_(options_, clock_) {}

SshGateway::~SshGateway() { stop(); }

Status SshGateway::start() {
  if (bind_ != nullptr) return conflict("gateway already started");
  auto pub = loadOrCreateHostKey(options_.host_key_path);
  if (!pub.ok()) return pub.error();
  host_public_key_ = *pub;

  // AES-GCM only (AES-NI): a relay decrypts and re-encrypts every byte, and
  // chacha20-poly1305 or CTR+HMAC cost it about a quarter of its throughput
  // here (reference/ssh-gateway.md). Every OpenSSH client supports AES-GCM.
  static constexpr const char* kGatewayCiphers = "aes128-gcm@openssh.com,aes256-gcm@openssh.com";
  bind_ = ssh_bind_new();
  int port = options_.port;
  bool no_config = false;
  if (bind_ == nullptr ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no_config) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_BINDADDR, options_.bind.c_str()) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_BINDPORT, &port) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_HOSTKEY, options_.host_key_path.c_str()) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_CIPHERS_C_S, kGatewayCiphers) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_CIPHERS_S_C, kGatewayCiphers) != SSH_OK) {
    std::string err = bind_ ? ssh_get_error(bind_) : "out of memory";
    stop();
    return invalid("gateway: " + err);
  }
  if (ssh_bind_listen(bind_) != SSH_OK) {
    std::string err = ssh_get_error(bind_);
    stop();
    return unavailable("gateway: cannot listen on " + options_.bind + ":" + std::to_string(port) + ": " + err);
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(ssh_bind_get_fd(bind_), reinterpret_cast<sockaddr*>(&ss), &len);
  bound_port_ = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  ssh_bind_set_blocking(bind_, 0);

  event_ = ssh_event_new();
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_ == nullptr || wake_fd_ < 0 ||
      ssh_event_add_fd(event_, ssh_bind_get_fd(bind_), POLLIN, &SshGateway::onAcceptReady, this) != SSH_OK ||
      ssh_event_add_fd(event_, wake_fd_, POLLIN, &SshGateway::onWake, this) != SSH_OK) {
    stop();
    return internal("gateway: cannot set up the event loop");
  }
  ctx_ = std::make_unique<GatewayContext>(GatewayContext{options_, directory_, clock_, limits_, event_, *this, counters_});
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
  logInfo("gateway_listening", {{"bind", options_.bind}, {"port", std::to_string(bound_port_)}});
  return Status();
}

void SshGateway::stop() {
  stopping_ = true;
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  connections_.clear();  // the loop has ended: safe on this thread
  if (event_ != nullptr) {
    if (bind_ != nullptr) ssh_event_remove_fd(event_, ssh_bind_get_fd(bind_));
    if (wake_fd_ >= 0) ssh_event_remove_fd(event_, wake_fd_);
    ssh_event_free(event_);
    event_ = nullptr;
  }
  if (wake_fd_ >= 0) close(wake_fd_);
  wake_fd_ = -1;
  if (bind_ != nullptr) ssh_bind_free(bind_);
  bind_ = nullptr;
}

void SshGateway::endSession(const std::string& session_id, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ended_sessions_.emplace_back(session_id, reason);
  }
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

void SshGateway::markDirty(uint64_t id) { dirty_.push_back(id); }

void SshGateway::wakeAt(uint64_t id, TimePoint when) { timers_.emplace(when, id); }

int SshGateway::onAcceptReady(socket_t, int, void* self) {
  static_cast<SshGateway*>(self)->acceptOne();
  return 0;
}

int SshGateway::onWake(socket_t fd, int, void*) {
  uint64_t n = 0;
  (void)!read(fd, &n, sizeof n);
  return 0;
}

void SshGateway::run() {
  while (!stopping_) {
    ssh_event_dopoll(event_, pollTimeoutMs());
    dirty_.insert(dirty_.end(), polled_.begin(), polled_.end());
    polled_.clear();
    runCommands();
    runTimers();
    pumpDirty();
    if (clock_.now() - last_sweep_ >= kSweepEvery) sweep();
  }
}

int SshGateway::pollTimeoutMs() const {
  if (!dirty_.empty()) return 0;
  if (timers_.empty()) return kMaxPollMs;
  auto ms = std::chrono::duration_cast<Millis>(timers_.top().first - clock_.now()).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, kMaxPollMs));
}

void SshGateway::acceptOne() {
  ssh_session s = ssh_new();
  if (s == nullptr) return;
  if (ssh_bind_accept(bind_, s) != SSH_OK) {  // nothing pending after all
    ssh_free(s);
    return;
  }
  auto [ip, source] = peerOf(ssh_get_fd(s));
  std::string why;
  if (!limits_.admit(ip, &why)) {
    refuseAtAccept(s, source, why);
    return;
  }
  uint64_t id = next_id_++;
  auto conn = std::make_unique<GatewayConnection>(id, s, ip, source, *ctx_);
  if (!conn->begin()) {
    logWarn("gateway_handshake_failed", {{"source", source}});
    limits_.closedUnauthenticated(ip);
    return;  // the destructor frees the session
  }
  connections_.emplace(id, std::move(conn));
}

void SshGateway::refuseAtAccept(ssh_session s, const std::string& source, const std::string& why) {
  logWarn("gateway_refused", {{"source", source}, {"reason", why}});
  ++counters_.refusals[why.find("blocked") != std::string::npos ? "blocked" : "preauth_limit"];
  ConnectionRecord rec;
  rec.source = source;
  rec.outcome = "refused";
  rec.reason = why;
  rec.started_at = clock_.now();
  rec.ended_at = rec.started_at;
  auto id = directory_.connectionStarted(rec);
  if (id.ok()) (void)directory_.connectionEnded(*id, rec);
  ssh_silent_disconnect(s);
  ssh_free(s);
}

GatewayStats SshGateway::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

std::map<std::string, SessionTraffic> SshGateway::traffic() {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return traffic_;
}

void SshGateway::notify(const std::string& session_id, const std::string& line) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    notices_.emplace_back(session_id, line);
  }
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

void SshGateway::publishStats() {
  GatewayStats st;
  st.logins_total = counters_.logins;
  st.refusals_total = counters_.refusals;
  st.bytes_in_total = counters_.closed_bytes_in;
  st.bytes_out_total = counters_.closed_bytes_out;
  std::map<std::string, SessionTraffic> traffic;
  for (const auto& [id, conn] : connections_) {
    st.bytes_in_total += conn->bytesIn();
    st.bytes_out_total += conn->bytesOut();
    if (!conn->relaying()) {
      if (!conn->done()) ++st.preauth_connections;
      continue;
    }
    ++st.open_connections;
    ++traffic[conn->sessionId()].open_connections;
    if (auto t = conn->lastTraffic()) {
      auto& last = last_traffic_by_session_[conn->sessionId()];
      last = std::max(last, *t);
    }
  }
  for (const auto& [sid, t] : last_traffic_by_session_) traffic[sid].last_traffic_at = t;
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_ = std::move(st);
  traffic_ = std::move(traffic);
}

void SshGateway::runCommands() {
  std::vector<std::pair<std::string, std::string>> ended;
  std::vector<std::pair<std::string, std::string>> notices;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ended.swap(ended_sessions_);
    notices.swap(notices_);
  }
  for (const auto& [session_id, line] : notices) {
    for (auto& [id, conn] : connections_) {
      if (conn->relaying() && conn->sessionId() == session_id) conn->notifyChannels(line);
    }
  }
  for (const auto& [session_id, reason] : ended) last_traffic_by_session_.erase(session_id);
  // Rare (a session ends): a scan of the connections is fine here.
  for (const auto& [session_id, reason] : ended) {
    for (auto& [id, conn] : connections_) {
      if (conn->sessionId() == session_id) conn->endWith(reason);
    }
  }
}

void SshGateway::runTimers() {
  TimePoint now = clock_.now();
  while (!timers_.empty() && timers_.top().first <= now) {
    uint64_t id = timers_.top().second;
    timers_.pop();
    auto it = connections_.find(id);
    if (it != connections_.end()) it->second->onTimer(now);
  }
}

void SshGateway::pumpDirty() {
  std::vector<uint64_t> work;
  work.swap(dirty_);
  std::sort(work.begin(), work.end());
  work.erase(std::unique(work.begin(), work.end()), work.end());
  for (uint64_t id : work) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    GatewayConnection& conn = *it->second;
    conn.pump();
    if (conn.done()) {
      connections_.erase(it);
    } else if (conn.needsPolling()) {
      polled_.push_back(id);
    }
  }
}

// Notices peers that went away. libssh has no disconnect callback, so this is
// a cheap status check of every connection a few times a second, not a scan
// on every wakeup.
void SshGateway::sweep() {
  last_sweep_ = clock_.now();
  for (auto it = connections_.begin(); it != connections_.end();) {
    it->second->checkAlive();
    it = it->second->done() ? connections_.erase(it) : std::next(it);
  }
  publishStats();
}

}  // namespace sandman
