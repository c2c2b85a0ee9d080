// SshGateway: Sandman's SSH entry point. `ssh alice@gateway` is routed to
// Alice's running session: public-key auth against GatewayDirectory, then a
// libssh client login into the session's sshd, with every channel relayed.
// One event-loop thread serves all connections (ssh_event, dirty lists,
// a timer heap). start/stop/endSession are thread-safe; the rest of the
// public API may be called from any thread after start() returned.
#pragma once

#include <libssh/libssh.h>
#include <libssh/server.h>

#include <atomic>
#include <map>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "core/session_activity.h"
#include "gateway/connection_journal.h"
#include "gateway/connection_limits.h"
#include "gateway/gateway_connection.h"
#include "gateway/gateway_directory.h"
#include "gateway/gateway_options.h"
#include "gateway/preauth_limits.h"
#include "gateway/refusal_log.h"

namespace sandman {

// Counters for /metrics. Totals count since the gateway started.
struct GatewayStats {
  int open_connections = 0;     // authenticated, relaying to a session
  int preauth_connections = 0;  // accepted, not authenticated yet (or routed nowhere)
  uint64_t logins_total = 0;
  // Refused connections by kind: auth_failed, no_session, user_limit,
  // route_failed, login_grace, limit (a connection cap), blocked.
  std::map<std::string, uint64_t> refusals_total;
  uint64_t refusal_lines_suppressed_total = 0;    // log lines left out by sampling
  uint64_t refusal_records_suppressed_total = 0;  // durable records left out by sampling
  uint64_t accept_pauses_total = 0;  // accepting paused: out of file descriptors
  uint64_t records_written_total = 0;  // connection records the store took (journal thread)
  uint64_t records_dropped_total = 0;  // refused-connection records not queued (journal full)
  uint64_t records_failed_total = 0;   // writes the store refused
  uint64_t records_pruned_total = 0;   // deleted by --connection-retention
  uint64_t bytes_in_total = 0;   // user -> session
  uint64_t bytes_out_total = 0;  // session -> user
};

class SshGateway final : private GatewayLoop, public SessionActivity {
 public:
  using Options = GatewayOptions;

  SshGateway(Options options, GatewayDirectory& directory, const Clock& clock);
  ~SshGateway() override;  // stops
  SshGateway(const SshGateway&) = delete;
  SshGateway& operator=(const SshGateway&) = delete;

  // Loads or creates the host key, binds (port 0: the kernel picks; see
  // boundPort) and starts the event-loop thread.
  Status start();
  // Closes every connection and joins the thread. Idempotent.
  void stop();
  int boundPort() const { return bound_port_; }
  std::string hostPublicKey() const { return host_public_key_; }
  // Called by core when a session ends: each connection of that session gets
  // one line on stderr and is closed.
  void endSession(const std::string& session_id, const std::string& reason);

  GatewayStats stats() const;
  // Blocks until every connection record posted so far is in the store (tests).
  void flushRecords() { journal_.flush(); }
  // SessionActivity (for the idle policy).
  std::map<std::string, SessionTraffic> traffic() override;
  void notify(const std::string& session_id, const std::string& line) override;

 private:
  void markDirty(uint64_t id) override;
  void wakeAt(uint64_t id, TimePoint when) override;

  static int onAcceptReady(socket_t fd, int revents, void* self);
  static int onWake(socket_t fd, int revents, void* self);
  void run();
  void acceptReady();
  void acceptFd(int fd, const std::string& ip, const std::string& source);
  void refuseAtAccept(int fd, const std::string& source, const std::string& why);
  void pauseAccepting();
  void resumeAccepting();
  void runCommands();
  void runTimers();
  void pumpDirty();
  void sweep();
  int pollTimeoutMs() const;

  Options options_;
  GatewayDirectory& directory_;
  const Clock& clock_;
  PreauthLimits limits_;
  ConnectionLimits caps_;
  ConnectionJournal journal_;
  std::string host_public_key_;
  int bound_port_ = 0;

  ssh_bind bind_ = nullptr;
  ssh_event event_ = nullptr;
  int wake_fd_ = -1;
  int spare_fd_ = -1;  // given up at EMFILE, so that one pending connection can still be shed
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<GatewayContext> ctx_;

  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> ended_sessions_;  // GUARDED_BY(mu_)
  std::vector<std::pair<std::string, std::string>> notices_;         // GUARDED_BY(mu_): session, line

  // Published by the sweep for other threads.
  mutable std::mutex stats_mu_;
  GatewayStats stats_;                                // GUARDED_BY(stats_mu_)
  std::map<std::string, SessionTraffic> traffic_;     // GUARDED_BY(stats_mu_)
  void publishStats();

  // Event-loop thread only.
  uint64_t next_id_ = 1;
  GatewayCounters counters_;
  RefusalLog refusals_{{options_.refusal_records_per_minute, std::chrono::minutes(1)}, clock_, journal_,
                       counters_.refusals};
  // Accepting pauses (the listening fd leaves the poll set) when the process
  // is out of descriptors, instead of spinning on EMFILE; back-off doubles.
  bool pause_requested_ = false;
  bool accept_paused_ = false;
  TimePoint accept_resume_at_{};
  Millis accept_backoff_{10};
  uint64_t accept_pauses_ = 0;
  std::map<std::string, TimePoint> last_traffic_by_session_;  // survives the connections
  std::unordered_map<uint64_t, std::unique_ptr<GatewayConnection>> connections_;
  std::vector<uint64_t> dirty_;   // pump now
  std::vector<uint64_t> polled_;  // pump after the next poll (waiting on a peer)
  using Timer = std::pair<TimePoint, uint64_t>;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  TimePoint last_sweep_{};
};

}  // namespace sandman
