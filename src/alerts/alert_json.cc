#include "alerts/alert_json.h"

#include "common/time_format.h"

namespace sandman {
namespace {

using nlohmann::json;

json timeOrNull(const std::optional<TimePoint>& t) { return t ? json(formatRfc3339(*t)) : json(nullptr); }

}  // namespace

json alertJson(const Alert& a) {
  json labels = json::object();
  for (const auto& [k, v] : a.labels) labels[k] = v;
  return {{"id", a.id},
          {"rule", a.rule},
          {"severity", a.severity},
          {"state", alertStateName(a.state)},
          {"fingerprint", a.fingerprint},
          {"labels", labels},
          {"value", a.value},
          {"summary", a.summary},
          {"pending_at", formatRfc3339(a.pending_at)},
          {"fired_at", timeOrNull(a.fired_at)},
          {"resolved_at", timeOrNull(a.resolved_at)},
          {"acked_at", timeOrNull(a.acked_at)},
          {"acked_by", a.acked_at ? json(a.acked_by) : json(nullptr)}};
}

json alertmanagerAlerts(const std::vector<Alert>& alerts, TimePoint valid_until) {
  json out = json::array();
  for (const auto& a : alerts) {
    json labels = json::object();
    for (const auto& [k, v] : a.labels) labels[k] = v;
    // Set last: a label can never shadow the identity Alertmanager groups by.
    labels["alertname"] = a.rule;
    labels["severity"] = a.severity;
    json am = {{"labels", labels},
               {"annotations", {{"summary", a.summary}}},
               {"startsAt", formatRfc3339(a.fired_at ? *a.fired_at : a.pending_at)}};
    am["endsAt"] = formatRfc3339(a.resolved_at ? *a.resolved_at : valid_until);
    out.push_back(std::move(am));
  }
  return out;
}

}  // namespace sandman
