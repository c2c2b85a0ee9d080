// GatewayStats: the SSH gateway's counters, as /metrics reads them. A plain
// value here, so telemetry can render them without depending on the gateway.
#pragma once

#include <cstdint>
#include <map>
#include <string>

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

}  // namespace sandman
