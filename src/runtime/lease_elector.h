// LeaseElector: leader election among Sandman replicas on one
// coordination.k8s.io/v1 Lease, so that only one daemon mutates sessions.
// Follows client-go's LeaseLock rules: take over only after the lease went
// unrenewed for its duration as measured on this daemon's own clock (no trust
// in other clocks), take over and renew with an UPDATE carrying the
// resourceVersion (409: someone else won), stop counting as leader as soon as
// renewals have failed for renew_deadline, release on clean shutdown.
// Thread-safe; one thread of its own once started (tick() drives it in tests).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/result.h"
#include "runtime/kube_client.h"

namespace sandman {

struct LeaseElectorOptions {
  std::string ns = "sandman";
  std::string name = "sandman-leader";
  std::string identity;  // "<hostname>_<random>": unique per process, so a restart is a new candidate
  Millis lease_duration{std::chrono::seconds(15)};
  Millis renew_period{std::chrono::seconds(2)};    // how often the leader renews and followers look
  Millis renew_deadline{std::chrono::seconds(10)};  // a leader unrenewed this long stops mutating
  // Published in the Lease's annotations while this daemon holds it (where
  // followers send clients: "sandman.io/api" -> "10.0.0.7:8080").
  std::map<std::string, std::string> annotations;
};

// The three calls the elector makes; KubeClient in production, a fake in tests.
struct LeaseApi {
  std::function<Result<KubeResponse>(const std::string& path)> get;
  std::function<Result<KubeResponse>(const std::string& collection, const nlohmann::json& object)> create;
  std::function<Result<KubeResponse>(const std::string& path, const nlohmann::json& object)> replace;
  static LeaseApi over(KubeClient& client);
};

// Who holds the lease, as this daemon last read it.
struct LeaderView {
  bool self = false;       // this daemon leads (and renewed within the deadline)
  std::string holder;      // holderIdentity; empty: nobody (released, or not read yet)
  std::map<std::string, std::string> annotations;  // the holder's (its API address)
  int64_t transitions = 0;  // the Lease's leaseTransitions
};

// "<hostname>_<16 hex digits>".
std::string leaseIdentity(const std::string& host_name);
// MicroTime as the API writes it: 2026-01-02T03:04:05.123456Z.
std::string formatMicroTime(TimePoint t);

class LeaseElector {
 public:
  LeaseElector(LeaseApi api, LeaseElectorOptions options, const Clock& clock);
  ~LeaseElector();  // stops, without releasing
  LeaseElector(const LeaseElector&) = delete;
  LeaseElector& operator=(const LeaseElector&) = delete;

  // One round: read the lease; create it, renew it or take it over where the
  // rules allow. Returns when the round is done.
  void tick();
  // When the next round is due: a renew period from now, or sooner when the
  // observed holder's lease runs out earlier (so a takeover is not late).
  TimePoint nextTick() const;
  void start();  // a thread that ticks until stop()
  // Ends the thread; when `release` and this daemon leads, hands the lease
  // back (empty holder) so another replica takes over at once.
  void stop(bool release);

  // Leading, and the last successful renewal is younger than renew_deadline
  // on this daemon's clock. Checked at every mutation: turns false the moment
  // the deadline passes, even while a renewal call is still hanging.
  bool isLeader() const;
  // Bumped each time this daemon becomes leader: callers that must do
  // something once per leadership (adopt the cluster's sessions) compare it.
  uint64_t term() const;
  LeaderView leader() const;
  const std::string& identity() const { return options_.identity; }
  // Called (from the elector's thread, no lock held) when leadership is gained or lost.
  void setListener(std::function<void(bool leading)> fn);  // before start()

 private:
  std::string leasePath() const;
  nlohmann::json leaseBody(const nlohmann::json& base, bool take_over, int64_t transitions) const;
  void observe(const nlohmann::json& lease, TimePoint now);
  void setLeading(bool leading, TimePoint now, std::unique_lock<std::mutex>& lock);

  LeaseApi api_;
  const LeaseElectorOptions options_;
  const Clock& clock_;
  std::function<void(bool)> listener_;

  mutable std::mutex mu_;
  std::condition_variable cv_;                  // stop_
  bool stop_ = false;                           // guarded by mu_
  bool leading_ = false;                        // guarded by mu_
  TimePoint last_renew_{};                      // guarded by mu_: last successful create/renew/takeover
  uint64_t term_ = 0;                           // guarded by mu_
  // The record as last read, and when (this clock) it last changed.
  std::string observed_holder_;                 // guarded by mu_
  std::string observed_renew_;                  // guarded by mu_: renewTime as written (opaque)
  int64_t observed_transitions_ = 0;            // guarded by mu_
  Millis observed_duration_{0};                 // guarded by mu_
  std::map<std::string, std::string> observed_annotations_;  // guarded by mu_
  TimePoint observed_at_{};                     // guarded by mu_
  bool observed_any_ = false;                   // guarded by mu_
  nlohmann::json last_lease_;                   // guarded by mu_: the object to update (carries resourceVersion)
  std::thread thread_;
};

}  // namespace sandman
