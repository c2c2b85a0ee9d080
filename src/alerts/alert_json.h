// The JSON forms of an alert: the API's and the webhook's object, and
// Alertmanager's v2 postableAlert list. Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "alerts/alert.h"
#include "common/clock.h"

namespace sandman {

// {"id","rule","severity","state","fingerprint","labels","value","summary",
//  "pending_at","fired_at","resolved_at","acked_at","acked_by"}; unset times are null.
nlohmann::json alertJson(const Alert& a);

// Alertmanager v2 POST /api/v2/alerts body: labels (alertname, severity and
// the alert's labels), annotations.summary, startsAt (fired_at), endsAt:
// resolved_at once resolved, else valid_until (so a daemon that dies lets
// the alert lapse instead of firing forever).
nlohmann::json alertmanagerAlerts(const std::vector<Alert>& alerts, TimePoint valid_until);

}  // namespace sandman
