// ConnectionJournal: writes the gateway's connection records through the
// directory (the store) from a thread of its own, so that no fsync'd write
// ever runs on the event loop that relays everyone's traffic, and prunes
// records older than the retention in small batches. Thread-safe: the
// event loop posts (never blocking on the store), the journal thread writes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "gateway/gateway_directory.h"

namespace sandman {

struct ConnectionJournalOptions {
  Millis retention = std::chrono::hours(24 * 30);  // --connection-retention
  Millis prune_every = std::chrono::hours(1);
  int prune_batch = 500;          // rows per DELETE: each write stays short
  size_t max_queue = 10000;       // records waiting; beyond it new refusals are dropped (counted)
};

struct ConnectionJournalStats {
  uint64_t written = 0;  // records and updates the store took
  uint64_t failed = 0;   // writes the store refused
  uint64_t dropped = 0;  // not queued: the queue was full
  uint64_t pruned = 0;   // records deleted by retention
};

class ConnectionJournal {
 public:
  ConnectionJournal(GatewayDirectory& directory, const Clock& clock, ConnectionJournalOptions options);
  ~ConnectionJournal();  // stop()
  ConnectionJournal(const ConnectionJournal&) = delete;
  ConnectionJournal& operator=(const ConnectionJournal&) = delete;

  void start();  // the thread: writes as records come, prunes now and every prune_every
  void stop();   // writes what is queued, then joins. Idempotent.

  // A login: returns a handle for ended(). Logins are bounded by the caps
  // and always queued.
  uint64_t started(const ConnectionRecord& rec);
  void ended(uint64_t handle, const ConnectionRecord& rec);
  // A refused connection, one record (already sampled by the caller).
  void refused(const ConnectionRecord& rec);

  // Blocks until everything posted so far is written (tests, shutdown).
  void flush();
  // One retention pass on the calling thread: deletes batches until one
  // comes back short. Returns the rows deleted.
  Result<int64_t> pruneNow();
  ConnectionJournalStats stats() const;

 private:
  struct Op {
    enum Kind { kStarted, kEnded, kRefused } kind;
    uint64_t handle = 0;
    ConnectionRecord rec;
  };
  void run();
  void write(Op& op);
  bool push(Op op, bool may_drop);

  GatewayDirectory& directory_;
  const Clock& clock_;
  const ConnectionJournalOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<Op> queue_;           // GUARDED_BY(mu_)
  bool writing_ = false;           // GUARDED_BY(mu_): an op is being written
  bool stopping_ = false;          // GUARDED_BY(mu_)
  uint64_t next_handle_ = 1;       // GUARDED_BY(mu_)
  ConnectionJournalStats stats_;   // GUARDED_BY(mu_)
  std::thread thread_;

  // Journal thread only (or a caller of flush() with the thread not running).
  std::map<uint64_t, int64_t> ids_;  // handle -> store id of an open login
};

}  // namespace sandman
