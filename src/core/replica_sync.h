// ReplicaSync: what lets two daemons share one cluster safely. It keeps this
// replica's store in step with the sessions the cluster records (a warm
// mirror on a follower), and opens mutations only when this replica leads
// and has adopted what the previous leader left. Thread-safe; one thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "core/session_manager.h"

namespace sandman {

struct ReplicaSyncOptions {
  Millis period{std::chrono::seconds(2)};  // how often the store is brought in step
};

class ReplicaSync {
 public:
  // elected: this daemon holds the lease (LeaseElector::isLeader); term: bumped
  // each time it becomes leader (LeaseElector::term).
  ReplicaSync(SessionManager& sessions, std::function<bool()> elected, std::function<uint64_t()> term,
              const Clock& clock, ReplicaSyncOptions options = {});
  ~ReplicaSync();
  void start();
  void stop();
  void wake();  // leadership changed: sync now

  // One round (what the thread runs): sync with the cluster; on becoming
  // leader, open mutations once the sync succeeded, then reconcile.
  void round();
  // Elected, and synced with the cluster since this term began: the gate
  // that every mutation and every write request asks.
  bool mayMutate() const;
  uint64_t takeovers() const { return takeovers_.load(); }

 private:
  SessionManager& sessions_;
  const std::function<bool()> elected_;
  const std::function<uint64_t()> term_;
  const Clock& clock_;
  const ReplicaSyncOptions options_;
  std::atomic<uint64_t> synced_term_{0};  // the term whose takeover sync succeeded
  std::atomic<uint64_t> takeovers_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;     // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sandman
