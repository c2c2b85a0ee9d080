#include "alerts/alert_engine.h"

#include <algorithm>

#include "common/log.h"

namespace sandman {
namespace {

constexpr Millis kPruneEvery = std::chrono::hours(24);

const AlertRule* findRule(const std::vector<AlertRule>& rules, const std::string& name) {
  for (const auto& r : rules) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::string labelOf(const Alert& a, const char* key) {
  auto it = a.labels.find(key);
  return it == a.labels.end() ? std::string() : it->second;
}

// One line per transition, with the fields an operator greps for.
void logAlert(std::string_view event, const Alert& a) {
  logInfo(event, {{"alert_id", std::to_string(a.id)},
                  {"rule", a.rule},
                  {"severity", a.severity},
                  {"fingerprint", a.fingerprint},
                  {"value", formatAlertValue(a.value)},
                  {"session_id", labelOf(a, "session_id")},
                  {"user_id", labelOf(a, "user_id")}});
}

}  // namespace

std::optional<AlertFilter> parseAlertFilter(const std::string& s) {
  if (s == "active") return AlertFilter::kActive;
  if (s == "pending") return AlertFilter::kPending;
  if (s == "firing") return AlertFilter::kFiring;
  if (s == "resolved") return AlertFilter::kResolved;
  if (s == "all") return AlertFilter::kAll;
  return std::nullopt;
}

AlertEngine::AlertEngine(std::vector<AlertRule> rules, AlertStore& store, const Clock& clock, AlertSink* sink,
                         AlertEngineOptions options)
    : rules_(std::move(rules)), store_(store), clock_(clock), sink_(sink), options_(std::move(options)) {}

Status AlertEngine::restore() {
  auto open = store_.openAlerts();
  if (!open.ok()) return open.error();
  std::vector<Alert> firing;
  {
    std::lock_guard lock(mu_);
    for (auto& a : open.value()) {
      if (a.state == AlertState::kFiring) firing.push_back(a);
      open_[a.fingerprint] = std::move(a);
    }
  }
  if (!open->empty()) logInfo("alerts restored from the store", {{"open", std::to_string(open->size())}});
  if (sink_ != nullptr) {
    for (const auto& a : firing) sink_->alertStillFiring(a);
  }
  return {};
}

void AlertEngine::evaluate(const TelemetrySnapshot& snap) {
  const TimePoint now = snap.taken_at != TimePoint{} ? snap.taken_at : clock_.now();
  std::vector<Alert> delivered;
  {
    std::lock_guard lock(mu_);
    std::set<std::string> held;
    std::set<std::string> skipped;
    for (const auto& rule : rules_) {
      // While NVML fails the device lists are empty; that says nothing about
      // temperatures, so device rules keep their state until it answers again.
      if (!snap.backend_ok && readsGpuBackend(rule.metric)) {
        skipped.insert(rule.name);
        continue;
      }
      for (const auto& s : alertSubjects(rule, snap, options_.host)) {
        if (!s.value || !compareHolds(rule.op, *s.value, rule.threshold)) continue;
        std::string fp = rule.name + "/" + s.key;
        held.insert(fp);
        auto it = open_.find(fp);
        if (it == open_.end()) {
          openAlert(rule, s, fp, now, delivered);
          continue;
        }
        Alert& a = it->second;
        a.value = *s.value;
        // Exact: fires on the first sample at or after pending_at + for.
        if (a.state == AlertState::kPending && now - a.pending_at >= rule.for_duration) {
          delivered.push_back(fire(a, rule, now));
        }
      }
    }
    closeCleared(held, skipped, now, delivered);
    maybePrune(now);
  }
  if (sink_ != nullptr) {
    for (const auto& a : delivered) sink_->alertChanged(a);
  }
  if (listener_) {
    for (const auto& a : delivered) listener_(a.state == AlertState::kResolved ? "resolved" : "firing", a);
  }
}

void AlertEngine::openAlert(const AlertRule& rule, const AlertSubject& s, const std::string& fp, TimePoint now,
                            std::vector<Alert>& delivered) {
  Alert a;
  a.rule = rule.name;
  a.severity = rule.severity;
  a.fingerprint = fp;
  a.labels = s.labels;
  a.state = AlertState::kPending;
  a.value = *s.value;
  a.summary = renderSummary(rule, a.labels, a.value);
  a.pending_at = now;
  bool fire_now = rule.for_duration <= Millis(0);
  if (fire_now) {
    a.state = AlertState::kFiring;
    a.fired_at = now;
  }
  auto id = store_.insert(a);
  if (!id.ok()) {
    // Not tracked, so the next sample tries again; its pending_at moves on.
    logError("alert not stored", {{"fingerprint", fp}, {"error", id.error().message}});
    return;
  }
  a.id = *id;
  logAlert(fire_now ? "alert firing" : "alert pending", a);
  if (fire_now) delivered.push_back(a);
  open_.emplace(fp, std::move(a));
}

Alert AlertEngine::fire(Alert& a, const AlertRule& rule, TimePoint now) {
  a.state = AlertState::kFiring;
  a.fired_at = now;
  a.summary = renderSummary(rule, a.labels, a.value);
  if (Status st = store_.update(a); !st.ok()) {
    // Delivery still happens: the receiver hearing of a hot GPU matters more
    // than the row, which the next transition rewrites in full.
    logError("alert transition not stored", {{"alert_id", std::to_string(a.id)}, {"error", st.error().message}});
  }
  logAlert("alert firing", a);
  return a;
}

void AlertEngine::closeCleared(const std::set<std::string>& held, const std::set<std::string>& skipped_rules,
                               TimePoint now, std::vector<Alert>& delivered) {
  for (auto it = open_.begin(); it != open_.end();) {
    Alert& a = it->second;
    bool rule_exists = findRule(rules_, a.rule) != nullptr;
    if (held.count(it->first) != 0 || (rule_exists && skipped_rules.count(a.rule) != 0)) {
      ++it;
      continue;
    }
    if (a.state == AlertState::kPending) {
      // Never fired, never told anyone: history keeps only what fired.
      if (Status st = store_.remove(a.id); !st.ok()) {
        logError("cleared pending alert not deleted", {{"alert_id", std::to_string(a.id)}, {"error", st.error().message}});
      }
      logAlert("alert cleared while pending", a);
    } else {
      a.state = AlertState::kResolved;
      a.resolved_at = now;
      if (Status st = store_.update(a); !st.ok()) {
        logError("alert transition not stored", {{"alert_id", std::to_string(a.id)}, {"error", st.error().message}});
      }
      logAlert(rule_exists ? "alert resolved" : "alert resolved: its rule is gone", a);
      delivered.push_back(a);
    }
    it = open_.erase(it);
  }
}

void AlertEngine::maybePrune(TimePoint now) {
  if (last_prune_ && now - *last_prune_ < kPruneEvery) return;
  last_prune_ = now;
  auto gone = store_.pruneResolved(now - options_.history_retention);
  if (!gone.ok()) {
    logWarn("alert history not pruned", {{"error", gone.error().message}});
  } else if (*gone > 0) {
    logInfo("alert history pruned", {{"deleted", std::to_string(*gone)}});
  }
}

Result<std::vector<Alert>> AlertEngine::list(AlertFilter filter, size_t limit) {
  std::vector<Alert> out;
  if (filter == AlertFilter::kActive || filter == AlertFilter::kPending || filter == AlertFilter::kFiring) {
    std::lock_guard lock(mu_);
    for (const auto& [_, a] : open_) {
      if (filter == AlertFilter::kPending && a.state != AlertState::kPending) continue;
      if (filter == AlertFilter::kFiring && a.state != AlertState::kFiring) continue;
      out.push_back(a);
    }
    std::sort(out.begin(), out.end(), [](const Alert& x, const Alert& y) { return x.id > y.id; });
    if (out.size() > limit) out.resize(limit);
    return out;
  }
  auto rows = store_.list(filter == AlertFilter::kResolved ? std::optional(AlertState::kResolved) : std::nullopt,
                          limit);
  if (!rows.ok()) return rows.error();
  std::lock_guard lock(mu_);
  // Open rows in the store hold the value of their last transition; the live
  // copy has the latest reading.
  for (auto& a : rows.value()) {
    if (!a.open()) continue;
    auto it = open_.find(a.fingerprint);
    if (it != open_.end() && it->second.id == a.id) a = it->second;
  }
  return rows;
}

std::map<std::tuple<std::string, std::string, std::string>, int> AlertEngine::openCounts() {
  std::map<std::tuple<std::string, std::string, std::string>, int> out;
  std::lock_guard lock(mu_);
  for (const auto& [_, a] : open_) ++out[{a.rule, a.severity, alertStateName(a.state)}];
  return out;
}

Result<Alert> AlertEngine::get(int64_t id) {
  {
    std::lock_guard lock(mu_);
    for (const auto& [_, a] : open_) {
      if (a.id == id) return a;
    }
  }
  return store_.get(id);
}

Result<Alert> AlertEngine::ack(int64_t id, const std::string& by) {
  std::lock_guard lock(mu_);
  Alert* live = nullptr;
  for (auto& [_, a] : open_) {
    if (a.id == id) live = &a;
  }
  Alert a;
  if (live != nullptr) {
    a = *live;
  } else {
    auto stored = store_.get(id);
    if (!stored.ok()) return stored.error();
    a = std::move(stored).value();
  }
  if (a.acked_at) return a;  // the first ack stands
  a.acked_at = clock_.now();
  a.acked_by = by;
  if (Status st = store_.update(a); !st.ok()) return st.error();
  if (live != nullptr) *live = a;
  logInfo("alert acknowledged", {{"alert_id", std::to_string(a.id)}, {"rule", a.rule}, {"by", by}});
  if (listener_) listener_("acknowledged", a);
  return a;
}

}  // namespace sandman
