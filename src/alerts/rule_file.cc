#include "alerts/rule_file.h"

#include <cmath>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "common/duration.h"

namespace sandman {
namespace {

using nlohmann::json;

constexpr const char* kRuleKeys[] = {"name", "metric", "op", "threshold", "for", "severity", "scope", "summary"};
constexpr size_t kMaxRules = 256;

std::string listMetrics() {
  std::string s;
  for (auto m : {AlertMetric::kTemperature, AlertMetric::kUtilization, AlertMetric::kMemoryUsedRatio,
                 AlertMetric::kPowerOverLimit, AlertMetric::kBackendError, AlertMetric::kGpuLost,
                 AlertMetric::kMigLeaked, AlertMetric::kDiskFreeRatio, AlertMetric::kWorkspaceQuotaUsed}) {
    if (!s.empty()) s += ", ";
    s += alertMetricName(m);
  }
  return s;
}

// Reads one rule; errors name only the field (the caller adds file and rule).
class RuleReader {
 public:
  explicit RuleReader(const json& j) : j_(j) {}

  Result<AlertRule> read() {
    if (!j_.is_object()) return invalid("a rule must be a JSON object");
    for (const auto& [key, _] : j_.items()) {
      bool known = false;
      for (const char* k : kRuleKeys) known = known || key == k;
      if (!known) {
        return invalid("unknown field '" + key.substr(0, 40) +
                       "' (fields: name, metric, op, threshold, for, severity, scope, summary)");
      }
    }
    AlertRule r;
    auto name = text("name", true);
    if (!name.ok()) return name.error();
    static const std::regex kName("[A-Za-z_][A-Za-z0-9_]{0,63}");
    if (!std::regex_match(*name, kName)) {
      return invalid("'name': '" + name->substr(0, 64) + "' must match [A-Za-z_][A-Za-z0-9_]* (at most 64)");
    }
    r.name = *name;

    auto metric = text("metric", true);
    if (!metric.ok()) return metric.error();
    auto m = parseAlertMetric(*metric);
    if (!m) return invalid("'metric': '" + metric->substr(0, 40) + "' is not one of " + listMetrics());
    r.metric = *m;

    // 0/1 metrics read naturally without a comparison ("gpu_lost for 0s").
    bool flag = isFlagMetric(r.metric);
    auto op = text("op", !flag);
    if (!op.ok()) return op.error();
    if (op->empty()) op = std::string(">");
    auto o = parseCompareOp(*op);
    if (!o) return invalid("'op': '" + op->substr(0, 8) + "' is not one of >, >=, <, <=, ==, !=");
    r.op = *o;
    if (j_.contains("threshold")) {
      const json& t = j_["threshold"];
      if (!t.is_number() || !std::isfinite(t.get<double>())) return invalid("'threshold' must be a number");
      r.threshold = t.get<double>();
    } else if (!flag) {
      return invalid("'threshold' is required for metric " + *metric);
    }

    auto dur = text("for", false);
    if (!dur.ok()) return dur.error();
    if (!dur->empty()) {
      auto d = parseDuration(*dur);
      if (!d.ok()) return invalid("'for': " + d.error().message);
      r.for_duration = *d;
    }

    auto sev = text("severity", true);
    if (!sev.ok()) return sev.error();
    if (*sev != "critical" && *sev != "warning" && *sev != "info") {
      return invalid("'severity': '" + sev->substr(0, 20) + "' is not one of critical, warning, info");
    }
    r.severity = *sev;

    auto scope = text("scope", false);
    if (!scope.ok()) return scope.error();
    r.scope = defaultScope(r.metric);
    if (!scope->empty()) {
      auto s = parseAlertScope(*scope);
      if (!s) return invalid("'scope': '" + scope->substr(0, 20) + "' is not one of host, gpu, instance, any");
      if (!scopeAllowed(r.metric, *s)) {
        return invalid("'scope': metric " + *metric + " cannot be evaluated per " + *scope + " (use " +
                       alertScopeName(defaultScope(r.metric)) + ")");
      }
      r.scope = *s;
    }

    auto summary = text("summary", false);
    if (!summary.ok()) return summary.error();
    r.summary = summary->empty() ? "{{rule}} {{gpu_uuid}} {{mig_uuid}} value {{value}}" : *summary;
    if (Status st = checkPlaceholders(r.summary); !st.ok()) return st.error();
    return r;
  }

 private:
  // "" when absent and optional.
  Result<std::string> text(const char* key, bool required) {
    if (!j_.contains(key)) {
      if (required) return invalid(std::string("'") + key + "' is required");
      return std::string();
    }
    const json& v = j_[key];
    if (!v.is_string()) return invalid(std::string("'") + key + "' must be a string");
    std::string s = v.get<std::string>();
    if (s.size() > 1024) return invalid(std::string("'") + key + "' is longer than 1024 characters");
    if (required && s.empty()) return invalid(std::string("'") + key + "' must not be empty");
    return s;
  }

  static Status checkPlaceholders(const std::string& t) {
    size_t i = 0;
    while ((i = t.find("{{", i)) != std::string::npos) {
      size_t close = t.find("}}", i + 2);
      if (close == std::string::npos) return invalid("'summary': '{{' without a closing '}}'");
      std::string name = t.substr(i + 2, close - i - 2);
      if (!isSummaryPlaceholder(name)) {
        std::string known;
        for (const char* const* p = kSummaryPlaceholders; *p != nullptr; ++p) {
          known += known.empty() ? "" : ", ";
          known += *p;
        }
        return invalid("'summary': unknown placeholder {{" + name.substr(0, 40) + "}} (known: " + known + ")");
      }
      i = close + 2;
    }
    return {};
  }

  const json& j_;
};

}  // namespace

Result<std::vector<AlertRule>> parseAlertRules(const std::string& text, const std::string& source) {
  const std::string where = "alert rules " + source + ": ";
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return invalid(where + "not valid JSON; expected {\"rules\": [...]}");
  if (!doc.is_object()) return invalid(where + "expected a JSON object {\"rules\": [...]}");
  for (const auto& [key, _] : doc.items()) {
    if (key != "rules") return invalid(where + "unknown top-level field '" + key.substr(0, 40) + "' (only \"rules\")");
  }
  if (!doc.contains("rules") || !doc["rules"].is_array()) {
    return invalid(where + "\"rules\" must be an array of rules");
  }
  const json& arr = doc["rules"];
  if (arr.size() > kMaxRules) return invalid(where + "more than " + std::to_string(kMaxRules) + " rules");
  std::vector<AlertRule> rules;
  std::set<std::string> names;
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string which = "rules[" + std::to_string(i) + "]";
    if (arr[i].is_object() && arr[i].contains("name") && arr[i]["name"].is_string()) {
      which += " (" + arr[i]["name"].get<std::string>().substr(0, 64) + ")";
    }
    auto r = RuleReader(arr[i]).read();
    if (!r.ok()) return invalid(where + which + ": " + r.error().message);
    if (!names.insert(r->name).second) return invalid(where + which + ": 'name': duplicate rule name");
    rules.push_back(std::move(r).value());
  }
  return rules;
}

Result<std::vector<AlertRule>> loadAlertRules(const std::string& path) {
  if (path.empty()) return defaultAlertRules();
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalid("alert rules " + path + ": cannot read the file; check --alert-rules");
  std::ostringstream buf;
  buf << in.rdbuf();
  return parseAlertRules(buf.str(), path);
}

json alertRuleJson(const AlertRule& r) {
  return {{"name", r.name},
          {"metric", alertMetricName(r.metric)},
          {"op", compareOpName(r.op)},
          {"threshold", r.threshold},
          {"for", formatDuration(r.for_duration)},
          {"severity", r.severity},
          {"scope", alertScopeName(r.scope)},
          {"summary", r.summary}};
}

json alertRulesJson(const std::vector<AlertRule>& rules) {
  json arr = json::array();
  for (const auto& r : rules) arr.push_back(alertRuleJson(r));
  return {{"rules", arr}};
}

}  // namespace sandman
