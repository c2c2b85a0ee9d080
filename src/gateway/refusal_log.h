// RefusalLog: what the gateway keeps of refused connections and failed
// logins. Every one is counted by kind (for /metrics); log lines and durable
// records are sampled, at most `budget` of each per interval, with one
// summary line for what was left out, so a refusal flood costs counters, not
// disk writes or log volume. Event-loop thread only (not thread-safe).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/clock.h"
#include "gateway/connection_journal.h"
#include "model/connection.h"

namespace sandman {

struct RefusalLogOptions {
  int budget = 20;  // log lines, and separately durable records, per interval
  Millis interval = std::chrono::minutes(1);
};

class RefusalLog {
 public:
  RefusalLog(RefusalLogOptions options, const Clock& clock, ConnectionJournal& journal,
             std::map<std::string, uint64_t>& totals);

  // A refused connection of `kind` (no_session, auth_failed, login_grace,
  // limit, blocked, ...): counted; logged and recorded while in budget.
  void refused(const std::string& kind, const ConnectionRecord& rec);
  // May an event that is not a refusal (a failed attempt on a connection
  // that goes on) be logged now? Counts the lines left out.
  bool mayLog();

  uint64_t suppressedLines() const { return suppressed_lines_; }
  uint64_t suppressedRecords() const { return suppressed_records_; }

 private:
  void roll();

  const RefusalLogOptions options_;
  const Clock& clock_;
  ConnectionJournal& journal_;
  std::map<std::string, uint64_t>& totals_;
  TimePoint window_start_{};
  int lines_ = 0, records_ = 0;            // used in this interval
  uint64_t window_suppressed_ = 0;         // lines left out in this interval
  uint64_t suppressed_lines_ = 0, suppressed_records_ = 0;  // since start
};

}  // namespace sandman
