// HistoryRetention: keeps session history bounded by deleting ended sessions
// and session events older than their retention, a small batch at a time on
// its own thread, so requests never wait behind a long delete. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/result.h"
#include "store/store.h"

namespace sandman {

struct RetentionOptions {
  Millis sessions = std::chrono::hours(24 * 90);  // ended sessions, by ended_at; 0: kept for ever
  Millis events = std::chrono::hours(24 * 30);    // session events, by their time; 0: kept for ever
  Millis demand = std::chrono::hours(24 * 90);    // demand records, by their time; 0: kept for ever
  Millis every = std::chrono::minutes(10);        // between passes
  int batch = 500;                                // rows per delete (one short write each)
  int max_batches = 200;                          // per table and pass; the rest waits for the next
};

struct PrunedRows {
  int64_t sessions = 0;
  int64_t events = 0;
  int64_t demand = 0;
};

class HistoryRetention {
 public:
  HistoryRetention(RetentionOptions options, Store& store, const Clock& clock);
  ~HistoryRetention();
  HistoryRetention(const HistoryRetention&) = delete;
  HistoryRetention& operator=(const HistoryRetention&) = delete;

  // A pass now, then one every `every` on the clock, until stop().
  void start();
  void stop();
  // One pass on the caller's thread: what it deleted, or the store's error.
  Result<PrunedRows> pruneOnce();
  // Everything deleted since start.
  PrunedRows totals() const { return {pruned_sessions_.load(), pruned_events_.load(), pruned_demand_.load()}; }

 private:
  void run();
  // Deletes batches while they come back full, up to max_batches.
  template <typename Prune>
  Result<int64_t> drain(Prune prune);

  const RetentionOptions options_;
  Store& store_;
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
  std::atomic<int64_t> pruned_sessions_{0};
  std::atomic<int64_t> pruned_events_{0};
  std::atomic<int64_t> pruned_demand_{0};
};

}  // namespace sandman
