// IdlePolicy: decides, from the GPU and the SSH gateway together, whether a
// session is busy; stops sessions idle for --idle-stop-after (after warning
// their open shells) and extends busy sessions nearing expiry (--auto-extend).
// Every decision is logged, recorded as a session event and counted.
// Thread-safe: onSample() only hands the snapshot to the policy's own thread.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/clock.h"
#include "core/session_activity.h"
#include "core/session_manager.h"
#include "model/gpu_snapshot.h"
#include "store/store.h"

namespace sandman {

struct IdlePolicyOptions {
  Millis stop_after{0};  // 0: idle sessions are never stopped
  Millis warning = std::chrono::minutes(10);
  double utilization_threshold = 5;  // %: above it a slice is busy even without processes
  Millis traffic_window = std::chrono::minutes(10);
  bool auto_extend = false;
  Millis extend_step = std::chrono::minutes(30);
  Millis extend_before = std::chrono::minutes(10);
  // Automatic extensions never take a session past created_at + ttl_max.
  Millis ttl_max = std::chrono::minutes(1440);

  bool enabled() const { return stop_after.count() > 0 || auto_extend; }
};

// Why a session counts as busy right now (empty: idle).
struct BusyReason {
  bool gpu_processes = false;
  bool gpu_utilization = false;
  bool ssh_traffic = false;
  bool busy() const { return gpu_processes || gpu_utilization || ssh_traffic; }
  std::string describe() const;
};

class IdlePolicy {
 public:
  enum Decision { kIdleWarning, kIdleStop, kAutoExtend, kAutoExtendLimit, kBusyAgain, kDecisionKinds };
  static const char* decisionName(Decision d);

  // activity may be null (no gateway): only the GPU can make a session busy.
  IdlePolicy(IdlePolicyOptions options, SessionManager& sessions, Store& store, SessionActivity* activity,
             const Clock& clock);
  ~IdlePolicy();  // stops
  IdlePolicy(const IdlePolicy&) = delete;
  IdlePolicy& operator=(const IdlePolicy&) = delete;

  // A sampler listener: keeps the snapshot for the policy thread, returns at once.
  void onSample(const TelemetrySnapshot& snapshot);
  void start();
  void stop();

  // One evaluation on the caller's thread (the policy thread, or a test).
  void evaluate(const TelemetrySnapshot& snapshot);
  // Decisions taken since start, by name ("idle_stop" -> 2).
  std::map<std::string, uint64_t> decisions() const;

 private:
  struct Tracked {
    TimePoint idle_since{};
    bool idle = false;
    bool warned = false;
    bool extend_limit_noted = false;
  };
  BusyReason busyReason(const Session& s, const TelemetrySnapshot& snap,
                        const std::map<std::string, SessionTraffic>& traffic, TimePoint now) const;
  void record(const Session& s, Decision d, const std::string& detail);
  void run();

  const IdlePolicyOptions options_;
  SessionManager& sessions_;
  Store& store_;
  SessionActivity* const activity_;
  const Clock& clock_;
  const TimePoint started_at_;

  std::map<std::string, Tracked> tracked_;  // policy thread (or the test calling evaluate)
  std::array<std::atomic<uint64_t>, kDecisionKinds> counts_{};

  std::mutex mu_;
  std::condition_variable wake_;
  std::optional<TelemetrySnapshot> pending_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                     // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace sandman
