#include "gateway/ssh_gateway.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "common/log.h"
#include "gateway/host_key.h"

namespace sandman {
namespace {

constexpr int kMaxPollMs = 100;
constexpr Millis kSweepEvery{250};
constexpr int kAcceptBurst = 64;  // connections taken per wakeup before others' traffic is served
constexpr Millis kMaxAcceptBackoff{1000};
constexpr int kListenBacklog = 1024;

// The gateway's offer, chosen to pass ssh-audit with no failing item and to
// meet OpenSSH, PuTTY, Paramiko and AsyncSSH: curve25519 and the 4096/8192-bit
// MODP groups (no NIST curves), an ed25519 host key, AES-GCM first (AES-NI:
// a relay decrypts and re-encrypts every byte; reference/ssh-gateway.md) and
// AES-CTR with encrypt-then-MAC SHA-2 for clients without GCM (Paramiko).
constexpr const char* kKex =
    "curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512";
constexpr const char* kHostKeyAlgorithms = "ssh-ed25519";
constexpr const char* kCiphers = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,aes256-ctr";
constexpr const char* kMacs = "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com";
// "SSH-2.0-Sandman": no library version for scanners to match. (ssh-audit
// compares libssh versions as text and reports 0.10.6 as open to
// CVE-2016-0739, fixed in 0.7.3.)
constexpr const char* kBanner = "Sandman";

ConnectionJournalOptions journalOptions(const GatewayOptions& o) {
  ConnectionJournalOptions j;
  j.retention = o.connection_retention;
  return j;
}

// "ip" and "ip:port" of a peer address.
std::pair<std::string, std::string> peerOf(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return {host, std::string(host) + ":" + std::to_string(port)};
}

}  // namespace

SshGateway::SshGateway(Options options, GatewayDirectory& directory, const Clock& clock)
    : options_(std::move(options)), directory_(directory), clock_(clock), limits_(options_, clock_), caps_(options_),
      journal_(directory_, clock_, journalOptions(options_)) {}

SshGateway::~SshGateway() { stop(); }

Status SshGateway::start() {
  if (bind_ != nullptr) return conflict("gateway already started");
  auto pub = loadOrCreateHostKey(options_.host_key_path);
  if (!pub.ok()) return pub.error();
  host_public_key_ = *pub;

  bind_ = ssh_bind_new();
  int port = options_.port;
  bool no_config = false;
  if (bind_ == nullptr ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no_config) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_BINDADDR, options_.bind.c_str()) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_BINDPORT, &port) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_HOSTKEY, options_.host_key_path.c_str()) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_BANNER, kBanner) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_KEY_EXCHANGE, kKex) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS, kHostKeyAlgorithms) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_CIPHERS_C_S, kCiphers) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_CIPHERS_S_C, kCiphers) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_HMAC_C_S, kMacs) != SSH_OK ||
      ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_HMAC_S_C, kMacs) != SSH_OK) {
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
  // acceptReady() loops accept4() until EAGAIN: the listening socket itself
  // must not block.
  const int listen_fd = ssh_bind_get_fd(bind_);
  fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
  // libssh listens with a backlog of 10: a burst of clients (or a flood
  // being refused) would overflow it and stall honest clients in SYN
  // retries. Listening again only raises the backlog.
  listen(listen_fd, kListenBacklog);

  event_ = ssh_event_new();
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (event_ == nullptr || wake_fd_ < 0 || spare_fd_ < 0 ||
      ssh_event_add_fd(event_, ssh_bind_get_fd(bind_), POLLIN, &SshGateway::onAcceptReady, this) != SSH_OK ||
      ssh_event_add_fd(event_, wake_fd_, POLLIN, &SshGateway::onWake, this) != SSH_OK) {
    stop();
    return internal("gateway: cannot set up the event loop");
  }
  ctx_ = std::make_unique<GatewayContext>(
      GatewayContext{options_, directory_, clock_, limits_, caps_, journal_, refusals_, event_, *this, counters_});
  journal_.start();
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
  journal_.stop();       // writes what the connections posted
  if (event_ != nullptr) {
    if (bind_ != nullptr && !accept_paused_) ssh_event_remove_fd(event_, ssh_bind_get_fd(bind_));
    if (wake_fd_ >= 0) ssh_event_remove_fd(event_, wake_fd_);
    ssh_event_free(event_);
    event_ = nullptr;
  }
  if (wake_fd_ >= 0) close(wake_fd_);
  wake_fd_ = -1;
  if (spare_fd_ >= 0) close(spare_fd_);
  spare_fd_ = -1;
  accept_paused_ = pause_requested_ = false;
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
  static_cast<SshGateway*>(self)->acceptReady();
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
    // Outside dopoll: libssh's poll set is not changed while it iterates it.
    if (pause_requested_) pauseAccepting();
    if (accept_paused_ && clock_.now() >= accept_resume_at_) resumeAccepting();
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

// Takes pending connections itself (not ssh_bind_accept) to see errno: at
// EMFILE/ENFILE the listening socket stays readable, and retrying at once
// would spin; accepting pauses with a back-off instead.
void SshGateway::acceptReady() {
  const int listen_fd = ssh_bind_get_fd(bind_);
  for (int i = 0; i < kAcceptBurst; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_requested_ = true;
      return;  // EAGAIN: nothing more pending
    }
    accept_backoff_ = Millis(10);
    auto [ip, source] = peerOf(ss);
    acceptFd(fd, ip, source);
  }
}

void SshGateway::pauseAccepting() {
  pause_requested_ = false;
  if (accept_paused_ || bind_ == nullptr) return;
  const int listen_fd = ssh_bind_get_fd(bind_);
  // The spare descriptor makes room to take one waiting client and close it,
  // so that it sees a refusal now rather than a hang in the backlog.
  if (spare_fd_ >= 0) {
    close(spare_fd_);
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) close(fd);
    spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  ssh_event_remove_fd(event_, listen_fd);
  accept_paused_ = true;
  accept_resume_at_ = clock_.now() + accept_backoff_;
  if (accept_pauses_++ % 100 == 0) {
    logWarn("gateway_accept_paused", {{"reason", "out of file descriptors"},
                                      {"for_ms", std::to_string(accept_backoff_.count())},
                                      {"pauses_total", std::to_string(accept_pauses_)},
                                      {"hint", "raise LimitNOFILE / ulimit -n, or lower the gateway caps"}});
  }
  accept_backoff_ = std::min(accept_backoff_ * 2, kMaxAcceptBackoff);
}

void SshGateway::resumeAccepting() {
  if (spare_fd_ < 0) spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (ssh_event_add_fd(event_, ssh_bind_get_fd(bind_), POLLIN, &SshGateway::onAcceptReady, this) == SSH_OK) {
    accept_paused_ = false;
  } else {
    accept_resume_at_ = clock_.now() + accept_backoff_;
  }
}

void SshGateway::acceptFd(int fd, const std::string& ip, const std::string& source) {
  std::string why;
  if (!caps_.admit(ip, &why)) {
    refuseAtAccept(fd, source, why);
    return;
  }
  if (!limits_.admit(ip, &why)) {
    caps_.closed(ip);
    refuseAtAccept(fd, source, why);
    return;
  }
  ssh_session s = ssh_new();
  if (s == nullptr || ssh_bind_accept_fd(bind_, s, fd) != SSH_OK) {
    // libssh owns the fd once the session holds it; before that, we do.
    if (s == nullptr || ssh_get_fd(s) != fd) close(fd);
    if (s != nullptr) ssh_free(s);
    caps_.closed(ip);
    limits_.closedUnauthenticated(ip);
    return;
  }
  uint64_t id = next_id_++;
  auto conn = std::make_unique<GatewayConnection>(id, s, ip, source, *ctx_);
  if (!conn->begin()) {
    if (refusals_.mayLog()) logWarn("gateway_handshake_failed", {{"source", source}});
    return;  // the destructor frees the session and gives the slots back
  }
  connections_.emplace(id, std::move(conn));
}

// A cap or a block: closed before any SSH byte, counted, and logged and
// recorded by sample only (a flood must not write the store once each).
void SshGateway::refuseAtAccept(int fd, const std::string& source, const std::string& why) {
  close(fd);
  ConnectionRecord rec;
  rec.source = source;
  rec.outcome = "refused";
  rec.reason = why;
  rec.started_at = clock_.now();
  rec.ended_at = rec.started_at;
  refusals_.refused(why.find("blocked") != std::string::npos ? "blocked" : "limit", rec);
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
  st.refusal_lines_suppressed_total = refusals_.suppressedLines();
  st.refusal_records_suppressed_total = refusals_.suppressedRecords();
  st.accept_pauses_total = accept_pauses_;
  const ConnectionJournalStats journal = journal_.stats();
  st.records_written_total = journal.written;
  st.records_dropped_total = journal.dropped;
  st.records_failed_total = journal.failed;
  st.records_pruned_total = journal.pruned;
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
