// AlertEngine: the built-in alerting for operators without Prometheus. Every
// telemetry snapshot moves each (rule, device) fingerprint through
// pending -> firing -> resolved, stores each transition and hands firing and
// resolved ones to a sink (the notifier). Thread-safe: evaluate() runs on the
// sampler thread, list/get/ack on API threads.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <tuple>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "alerts/alert.h"
#include "alerts/alert_rule.h"
#include "alerts/alert_store.h"
#include "common/clock.h"
#include "common/result.h"
#include "model/gpu_snapshot.h"

namespace sandman {

// Where delivered transitions go. Called on the sampler thread without the
// engine's lock held: implementations queue and return.
class AlertSink {
 public:
  virtual ~AlertSink() = default;
  // The alert just started firing or just resolved (a.state says which).
  virtual void alertChanged(const Alert& a) = 0;
  // A firing alert found in the store at start-up: receivers that forget
  // (Alertmanager) hear of it again; no new notification is sent.
  virtual void alertStillFiring(const Alert& a) = 0;
};

struct AlertEngineOptions {
  std::string host;  // the "host" label (gethostname); empty: none
  Millis history_retention = std::chrono::hours(24 * 90);  // resolved alerts kept this long
};

// Which alerts a listing returns: active = pending and firing.
enum class AlertFilter { kActive, kPending, kFiring, kResolved, kAll };
std::optional<AlertFilter> parseAlertFilter(const std::string& s);

class AlertEngine {
 public:
  // sink may be null (no delivery configured).
  AlertEngine(std::vector<AlertRule> rules, AlertStore& store, const Clock& clock, AlertSink* sink,
              AlertEngineOptions options = {});

  // Takes over the open alerts a previous run left in the store, so a restart
  // continues their episodes instead of opening duplicates. Call once, first.
  Status restore();
  // One evaluation; "now" is the snapshot's taken_at (the clock when unset).
  void evaluate(const TelemetrySnapshot& snap);

  // Newest first. Active ones carry their latest value.
  Result<std::vector<Alert>> list(AlertFilter filter, size_t limit);
  Result<Alert> get(int64_t id);
  // Open alerts (pending and firing) counted by (rule, severity, state), for /metrics.
  std::map<std::tuple<std::string, std::string, std::string>, int> openCounts();
  // Records who acknowledged it and when. Idempotent: acking an acked alert
  // keeps the first ack. Acking does not silence resolution or delivery.
  Result<Alert> ack(int64_t id, const std::string& by);

  const std::vector<AlertRule>& rules() const { return rules_; }
  // Told of every delivered transition and every ack ("firing", "resolved",
  // "acknowledged"), perhaps under the engine's lock: it must only queue (the event
  // stream). Set before evaluating.
  void setListener(std::function<void(const std::string& action, const Alert&)> fn) { listener_ = std::move(fn); }

 private:
  // Moves an open alert to firing; returns the copy to deliver.
  Alert fire(Alert& a, const AlertRule& rule, TimePoint now);
  void openAlert(const AlertRule& rule, const AlertSubject& s, const std::string& fp, TimePoint now,
                 std::vector<Alert>& delivered);
  void closeCleared(const std::set<std::string>& held, const std::set<std::string>& skipped_rules,
                    TimePoint now, std::vector<Alert>& delivered);
  void maybePrune(TimePoint now);

  const std::vector<AlertRule> rules_;
  AlertStore& store_;
  std::function<void(const std::string&, const Alert&)> listener_;
  const Clock& clock_;
  AlertSink* const sink_;
  const AlertEngineOptions options_;

  std::mutex mu_;
  std::map<std::string, Alert> open_;  // GUARDED_BY(mu_): by fingerprint, pending and firing
  std::optional<TimePoint> last_prune_;  // GUARDED_BY(mu_)
};

}  // namespace sandman
