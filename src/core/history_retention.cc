#include "core/history_retention.h"

#include "common/log.h"

namespace sandman {

HistoryRetention::HistoryRetention(RetentionOptions options, Store& store, const Clock& clock)
    : options_(options), store_(store), clock_(clock) {}

HistoryRetention::~HistoryRetention() { stop(); }

void HistoryRetention::start() {
  if (options_.sessions.count() <= 0 && options_.events.count() <= 0 && options_.demand.count() <= 0) return;  // all kept for ever
  thread_ = std::thread([this] { run(); });
}

void HistoryRetention::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

template <typename Prune>
Result<int64_t> HistoryRetention::drain(Prune prune) {
  int64_t total = 0;
  for (int i = 0; i < options_.max_batches; ++i) {
    auto n = prune();
    if (!n.ok()) return n.error();
    total += n.value();
    if (n.value() < options_.batch) break;
    // The store's lock is free between batches: a request waiting for it
    // gets in before the next one.
    std::this_thread::yield();
  }
  return total;
}

Result<PrunedRows> HistoryRetention::pruneOnce() {
  const TimePoint now = clock_.now();
  PrunedRows out;
  if (options_.sessions.count() > 0) {
    auto n = drain([&] { return store_.pruneEndedSessions(now - options_.sessions, options_.batch); });
    if (!n.ok()) return n.error();
    out.sessions = n.value();
  }
  if (options_.events.count() > 0) {
    auto n = drain([&] { return store_.pruneSessionEvents(now - options_.events, options_.batch); });
    if (!n.ok()) return n.error();
    out.events = n.value();
  }
  if (options_.demand.count() > 0) {
    auto n = drain([&] { return store_.pruneDemand(now - options_.demand, options_.batch); });
    if (!n.ok()) return n.error();
    out.demand = n.value();
  }
  pruned_sessions_ += out.sessions;
  pruned_events_ += out.events;
  pruned_demand_ += out.demand;
  return out;
}

void HistoryRetention::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto pruned = pruneOnce();
    if (!pruned.ok()) {
      logWarn("history retention pass failed; retrying later", {{"error", pruned.error().message}});
    } else if (pruned->sessions > 0 || pruned->events > 0 || pruned->demand > 0) {
      logInfo("history pruned", {{"sessions", std::to_string(pruned->sessions)},
                                 {"events", std::to_string(pruned->events)},
                                 {"demand", std::to_string(pruned->demand)}});
    }
    lock.lock();
    clock_.waitUntil(lock, cv_, clock_.now() + options_.every, [this] { return stopping_; });
  }
}

}  // namespace sandman
