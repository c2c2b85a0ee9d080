// Alert rule files: the JSON an operator passes with --alert-rules
// ({"rules":[{"name":..., "metric":..., ...}]}), parsed strictly so a typo is
// a start-up error naming the file, the rule and the field. Pure; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "alerts/alert_rule.h"
#include "common/result.h"

namespace sandman {

// source names the text in error messages (the file path).
Result<std::vector<AlertRule>> parseAlertRules(const std::string& text, const std::string& source);
// path empty: the built-in defaults. kInvalid for an unreadable or bad file.
Result<std::vector<AlertRule>> loadAlertRules(const std::string& path);
// The rule-file form of rules (what parseAlertRules reads back).
nlohmann::json alertRulesJson(const std::vector<AlertRule>& rules);
nlohmann::json alertRuleJson(const AlertRule& rule);

}  // namespace sandman
