#include "gateway/connection_journal.h"

#include "common/log.h"

namespace sandman {

ConnectionJournal::ConnectionJournal(GatewayDirectory& directory, const Clock& clock,
                                     ConnectionJournalOptions options)
    : directory_(directory), clock_(clock), options_(options) {}

ConnectionJournal::~ConnectionJournal() { stop(); }

void ConnectionJournal::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void ConnectionJournal::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  flush();  // anything posted after the thread ended
}

uint64_t ConnectionJournal::started(const ConnectionRecord& rec) {
  uint64_t handle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    handle = next_handle_++;
  }
  push(Op{Op::kStarted, handle, rec}, false);
  return handle;
}

void ConnectionJournal::ended(uint64_t handle, const ConnectionRecord& rec) {
  push(Op{Op::kEnded, handle, rec}, false);
}

void ConnectionJournal::refused(const ConnectionRecord& rec) { push(Op{Op::kRefused, 0, rec}, true); }

bool ConnectionJournal::push(Op op, bool may_drop) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (may_drop && queue_.size() >= options_.max_queue) {
      ++stats_.dropped;
      return false;
    }
    queue_.push_back(std::move(op));
  }
  cv_.notify_one();
  return true;
}

void ConnectionJournal::write(Op& op) {
  Status st;
  switch (op.kind) {
    case Op::kStarted: {
      auto id = directory_.connectionStarted(op.rec);
      if (id.ok()) ids_[op.handle] = *id;
      st = id.ok() ? Status() : Status(id.error());
      break;
    }
    case Op::kEnded: {
      auto it = ids_.find(op.handle);
      if (it == ids_.end()) return;  // its start was not recorded
      st = directory_.connectionEnded(it->second, op.rec);
      ids_.erase(it);
      break;
    }
    case Op::kRefused: {
      auto id = directory_.connectionStarted(op.rec);
      st = id.ok() ? directory_.connectionEnded(*id, op.rec) : Status(id.error());
      break;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (st.ok()) {
    ++stats_.written;
  } else if (++stats_.failed == 1 || stats_.failed % 1000 == 0) {
    logWarn("gateway_journal_write_failed", {{"error", st.error().message},
                                             {"failed_total", std::to_string(stats_.failed)}});
  }
}

void ConnectionJournal::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!thread_.joinable() || stopping_) {
    // No thread (not started, or stopped): the caller writes.
    while (!queue_.empty()) {
      Op op = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      write(op);
      lock.lock();
    }
    return;
  }
  idle_cv_.wait(lock, [this] { return queue_.empty() && !writing_; });
}

Result<int64_t> ConnectionJournal::pruneNow() {
  const TimePoint cutoff = clock_.now() - options_.retention;
  int64_t total = 0;
  for (;;) {
    auto n = directory_.pruneConnections(cutoff, options_.prune_batch);
    if (!n.ok()) return n.error();
    total += *n;
    if (*n < options_.prune_batch) break;
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) break;
    // Between batches the store is free for everyone else; queued records go first.
    if (!queue_.empty()) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.pruned += static_cast<uint64_t>(total);
  return total;
}

void ConnectionJournal::run() {
  TimePoint next_prune = clock_.now();
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (!queue_.empty()) {
      Op op = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
      lock.unlock();
      write(op);
      lock.lock();
      writing_ = false;
      if (queue_.empty()) idle_cv_.notify_all();
      continue;
    }
    if (stopping_) break;
    if (clock_.now() >= next_prune) {
      lock.unlock();
      auto n = pruneNow();
      if (!n.ok()) {
        logWarn("gateway_connection_prune_failed", {{"error", n.error().message}});
      } else if (*n > 0) {
        logInfo("gateway_connections_pruned", {{"rows", std::to_string(*n)}});
      }
      lock.lock();
      // A pass cut short by queued records resumes right after them.
      const bool more = n.ok() && *n > 0 && *n % options_.prune_batch == 0;
      next_prune = clock_.now() + (more ? Millis(0) : options_.prune_every);
      continue;
    }
    cv_.wait_until(lock, next_prune, [this] { return stopping_ || !queue_.empty(); });
  }
  idle_cv_.notify_all();
}

ConnectionJournalStats ConnectionJournal::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace sandman
