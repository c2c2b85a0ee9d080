#include "alerts/alert_rule.h"

#include <cmath>
#include <cstdio>
#include <cstring>

namespace sandman {
namespace {

struct MetricName {
  AlertMetric metric;
  const char* name;
};
constexpr MetricName kMetrics[] = {
    {AlertMetric::kTemperature, "temperature"},       {AlertMetric::kUtilization, "utilization"},
    {AlertMetric::kMemoryUsedRatio, "memory_used_ratio"}, {AlertMetric::kPowerOverLimit, "power_over_limit"},
    {AlertMetric::kBackendError, "backend_error"},    {AlertMetric::kGpuLost, "gpu_lost"},
    {AlertMetric::kMigLeaked, "mig_leaked"},          {AlertMetric::kDiskFreeRatio, "disk_free_ratio"},
    {AlertMetric::kWorkspaceQuotaUsed, "workspace_quota_used"},
    {AlertMetric::kBudgetUsed, "budget_used"},        {AlertMetric::kBudgetForecast, "budget_forecast"},
};

struct ScopeName {
  AlertScope scope;
  const char* name;
};
constexpr ScopeName kScopes[] = {{AlertScope::kHost, "host"},
                                 {AlertScope::kGpu, "gpu"},
                                 {AlertScope::kInstance, "instance"},
                                 {AlertScope::kAny, "any"}};

struct OpName {
  CompareOp op;
  const char* name;
};
constexpr OpName kOps[] = {{CompareOp::kGt, ">"},  {CompareOp::kGe, ">="}, {CompareOp::kLt, "<"},
                           {CompareOp::kLe, "<="}, {CompareOp::kEq, "=="}, {CompareOp::kNe, "!="}};

std::map<std::string, std::string> deviceLabels(const DeviceReading& d, const std::string& host) {
  std::map<std::string, std::string> l;
  l["gpu"] = std::to_string(d.gpu_index);
  l["gpu_uuid"] = d.gpu_uuid.empty() ? d.uuid : d.gpu_uuid;
  if (!d.model_name.empty()) l["model"] = d.model_name;
  if (d.is_mig) {
    l["mig_uuid"] = d.uuid;
    if (!d.profile.empty()) l["mig_profile"] = d.profile;
  }
  if (!d.session_id.empty()) l["session_id"] = d.session_id;
  if (!d.user_id.empty()) l["user_id"] = d.user_id;
  if (!host.empty()) l["host"] = host;
  if (!d.node.empty()) l["node"] = d.node;  // a cluster's device: its node, not the daemon's host
  return l;
}

std::optional<double> deviceValue(AlertMetric m, const DeviceReading& d) {
  switch (m) {
    case AlertMetric::kTemperature:
      return d.temperature_c;
    case AlertMetric::kUtilization:
      return d.utilization_pct;
    case AlertMetric::kMemoryUsedRatio:
      if (d.memory_total_mib == 0) return std::nullopt;
      return 100.0 * static_cast<double>(d.memory_used_mib) / static_cast<double>(d.memory_total_mib);
    case AlertMetric::kPowerOverLimit:
      // A limit of 0 means the driver does not enforce one: nothing to be over.
      if (!d.power_w || !d.power_limit_w || *d.power_limit_w <= 0) return std::nullopt;
      return *d.power_w - *d.power_limit_w;
    default:
      return std::nullopt;
  }
}

}  // namespace

const char* alertMetricName(AlertMetric m) {
  for (const auto& e : kMetrics) {
    if (e.metric == m) return e.name;
  }
  return "?";
}

std::optional<AlertMetric> parseAlertMetric(const std::string& s) {
  for (const auto& e : kMetrics) {
    if (s == e.name) return e.metric;
  }
  return std::nullopt;
}

const char* alertScopeName(AlertScope s) {
  for (const auto& e : kScopes) {
    if (e.scope == s) return e.name;
  }
  return "?";
}

std::optional<AlertScope> parseAlertScope(const std::string& s) {
  for (const auto& e : kScopes) {
    if (s == e.name) return e.scope;
  }
  return std::nullopt;
}

const char* compareOpName(CompareOp op) {
  for (const auto& e : kOps) {
    if (e.op == op) return e.name;
  }
  return "?";
}

std::optional<CompareOp> parseCompareOp(const std::string& s) {
  for (const auto& e : kOps) {
    if (s == e.name) return e.op;
  }
  return std::nullopt;
}

bool compareHolds(CompareOp op, double value, double threshold) {
  switch (op) {
    case CompareOp::kGt: return value > threshold;
    case CompareOp::kGe: return value >= threshold;
    case CompareOp::kLt: return value < threshold;
    case CompareOp::kLe: return value <= threshold;
    case CompareOp::kEq: return value == threshold;
    case CompareOp::kNe: return value != threshold;
  }
  return false;
}

AlertScope defaultScope(AlertMetric m) {
  switch (m) {
    case AlertMetric::kBackendError:
    case AlertMetric::kDiskFreeRatio:
    case AlertMetric::kWorkspaceQuotaUsed:
    case AlertMetric::kBudgetUsed:
    case AlertMetric::kBudgetForecast: return AlertScope::kHost;
    case AlertMetric::kMigLeaked: return AlertScope::kInstance;
    case AlertMetric::kUtilization:
    case AlertMetric::kMemoryUsedRatio: return AlertScope::kAny;
    default: return AlertScope::kGpu;
  }
}

bool scopeAllowed(AlertMetric m, AlertScope s) {
  switch (m) {
    case AlertMetric::kUtilization:
    case AlertMetric::kMemoryUsedRatio:
      return s != AlertScope::kHost;
    default:
      // Instances carry their parent's temperature and no power of their own,
      // so per-instance rules would only repeat the GPU's alert.
      return s == defaultScope(m);
  }
}

bool readsGpuBackend(AlertMetric m) {
  return m != AlertMetric::kBackendError && m != AlertMetric::kDiskFreeRatio && m != AlertMetric::kWorkspaceQuotaUsed &&
         m != AlertMetric::kBudgetUsed && m != AlertMetric::kBudgetForecast;
}

bool isFlagMetric(AlertMetric m) {
  return m == AlertMetric::kBackendError || m == AlertMetric::kGpuLost || m == AlertMetric::kMigLeaked;
}

const char* const kSummaryPlaceholders[] = {"gpu",        "gpu_uuid", "model",  "mig_uuid", "mig_profile",
                                            "session_id", "user_id",  "host",   "value",    "threshold",
                                            "rule",       "severity", "filesystem", "path",  "budget", "scope",
                                            "name",       "limit_usd", "used_usd", "forecast_usd", nullptr};

bool isSummaryPlaceholder(const std::string& name) {
  for (const char* const* p = kSummaryPlaceholders; *p != nullptr; ++p) {
    if (name == *p) return true;
  }
  return false;
}

std::string formatAlertValue(double v) {
  if (std::isfinite(v) && v == std::round(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();  // 91.50 -> 91.5
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string renderSummary(const AlertRule& rule, const std::map<std::string, std::string>& labels, double value) {
  const std::string& t = rule.summary;
  std::string out;
  size_t i = 0;
  while (i < t.size()) {
    size_t open = t.find("{{", i);
    size_t close = open == std::string::npos ? std::string::npos : t.find("}}", open + 2);
    if (close == std::string::npos) {
      out.append(t, i, std::string::npos);
      break;
    }
    out.append(t, i, open - i);
    std::string name = t.substr(open + 2, close - open - 2);
    if (name == "value") {
      out += formatAlertValue(value);
    } else if (name == "threshold") {
      out += formatAlertValue(rule.threshold);
    } else if (name == "rule") {
      out += rule.name;
    } else if (name == "severity") {
      out += rule.severity;
    } else if (auto it = labels.find(name); it != labels.end()) {
      out += it->second;
    }
    i = close + 2;
  }
  // A placeholder the subject lacks (mig_uuid on a GPU) leaves a double space.
  std::string tidy;
  for (char c : out) {
    if (c == ' ' && (tidy.empty() || tidy.back() == ' ')) continue;
    tidy += c;
  }
  while (!tidy.empty() && tidy.back() == ' ') tidy.pop_back();
  return tidy;
}

std::vector<AlertRule> defaultAlertRules() {
  using std::chrono::minutes;
  return {
      {"GpuOverheating", AlertMetric::kTemperature, CompareOp::kGt, 85, minutes(5), "critical", AlertScope::kGpu,
       "GPU {{gpu}} ({{gpu_uuid}}) at {{value}} C, above {{threshold}} C for 5m"},
      {"GpuSaturated", AlertMetric::kUtilization, CompareOp::kGt, 95, minutes(10), "warning", AlertScope::kAny,
       "GPU {{gpu}} {{mig_uuid}} utilisation {{value}}% above {{threshold}}% for 10m"},
      {"GpuMemoryFull", AlertMetric::kMemoryUsedRatio, CompareOp::kGt, 95, minutes(5), "warning", AlertScope::kAny,
       "GPU {{gpu}} {{mig_uuid}} memory {{value}}% used, above {{threshold}}% for 5m"},
      {"GpuPowerOverLimit", AlertMetric::kPowerOverLimit, CompareOp::kGt, 0, minutes(1), "warning",
       AlertScope::kGpu, "GPU {{gpu}} ({{gpu_uuid}}) draws {{value}} W above its power limit"},
      {"GpuLost", AlertMetric::kGpuLost, CompareOp::kGt, 0, minutes(0), "critical", AlertScope::kGpu,
       "GPU {{gpu_uuid}} disappeared from NVML"},
      {"NvmlError", AlertMetric::kBackendError, CompareOp::kGt, 0, minutes(1), "critical", AlertScope::kHost,
       "NVML has been failing for 1m on {{host}}"},
      {"MigInstanceLeaked", AlertMetric::kMigLeaked, CompareOp::kGt, 0, minutes(5), "warning",
       AlertScope::kInstance, "MIG instance {{mig_uuid}} ({{mig_profile}}) on GPU {{gpu}} held by no session for 5m"},
      {"DiskAlmostFull", AlertMetric::kDiskFreeRatio, CompareOp::kLt, 10, minutes(5), "critical", AlertScope::kHost,
       "{{filesystem}} file system ({{path}}) on {{host}} has {{value}}% free, below {{threshold}}% for 5m"},
      {"WorkspaceOverQuota", AlertMetric::kWorkspaceQuotaUsed, CompareOp::kGe, 100, minutes(0), "warning",
       AlertScope::kHost, "workspace of {{user_id}} holds {{value}}% of its quota"},
      {"BudgetAt80Percent", AlertMetric::kBudgetUsed, CompareOp::kGe, 80, minutes(0), "warning", AlertScope::kHost,
       "budget {{budget}}: {{used_usd}} USD of {{limit_usd}} spent this month ({{value}}%)"},
      {"BudgetSpent", AlertMetric::kBudgetUsed, CompareOp::kGe, 100, minutes(0), "critical", AlertScope::kHost,
       "budget {{budget}} is spent: {{used_usd}} USD of {{limit_usd}} this month ({{value}}%)"},
      {"BudgetForecastOver", AlertMetric::kBudgetForecast, CompareOp::kGt, 100, minutes(0), "warning",
       AlertScope::kHost, "budget {{budget}} heads for {{forecast_usd}} USD of {{limit_usd}} by the month's end "
       "({{value}}%)"},
  };
}

std::vector<AlertSubject> alertSubjects(const AlertRule& rule, const TelemetrySnapshot& snap,
                                        const std::string& host) {
  std::vector<AlertSubject> out;
  switch (rule.metric) {
    case AlertMetric::kBackendError: {
      AlertSubject s{"host", {}, snap.backend_ok ? 0.0 : 1.0};
      if (!host.empty()) s.labels["host"] = host;
      out.push_back(std::move(s));
      return out;
    }
    case AlertMetric::kGpuLost:
      for (const auto& uuid : snap.lost_gpus) {
        AlertSubject s{uuid, {{"gpu_uuid", uuid}}, 1.0};
        if (!host.empty()) s.labels["host"] = host;
        out.push_back(std::move(s));
      }
      return out;
    case AlertMetric::kDiskFreeRatio:
      for (const auto& f : snap.disk.filesystems) {
        if (f.size_bytes == 0) continue;
        AlertSubject s{"fs/" + f.name, {{"filesystem", f.name}, {"path", f.path}},
                       100.0 * static_cast<double>(f.avail_bytes) / static_cast<double>(f.size_bytes)};
        if (!host.empty()) s.labels["host"] = host;
        out.push_back(std::move(s));
      }
      return out;
    case AlertMetric::kWorkspaceQuotaUsed:
      for (const auto& w : snap.disk.workspaces) {
        if (w.quota_bytes == 0) continue;
        AlertSubject s{"workspace/" + w.user_id, {{"user_id", w.user_id}},
                       100.0 * static_cast<double>(w.used_bytes) / static_cast<double>(w.quota_bytes)};
        if (!host.empty()) s.labels["host"] = host;
        out.push_back(std::move(s));
      }
      return out;
    case AlertMetric::kBudgetUsed:
    case AlertMetric::kBudgetForecast:
      for (const auto& b : snap.budgets) {
        if (b.limit_usd <= 0) continue;
        const double v = rule.metric == AlertMetric::kBudgetUsed ? b.used_usd : b.forecast_usd;
        AlertSubject s{"budget/" + b.budget,
                       {{"budget", b.budget}, {"scope", b.scope}, {"name", b.name},
                        {"limit_usd", formatAlertValue(b.limit_usd)}, {"used_usd", formatAlertValue(b.used_usd)},
                        {"forecast_usd", formatAlertValue(b.forecast_usd)}},
                       std::round(10000.0 * v / b.limit_usd) / 100};
        if (!host.empty()) s.labels["host"] = host;
        out.push_back(std::move(s));
      }
      return out;
    case AlertMetric::kMigLeaked:
      // In static mode unheld instances are the pool, not leaks.
      if (!snap.mig_dynamic) return out;
      for (const auto& d : snap.instances) {
        out.push_back({d.uuid, deviceLabels(d, host), d.session_id.empty() ? 1.0 : 0.0});
      }
      return out;
    default:
      break;
  }
  if (rule.scope == AlertScope::kGpu || rule.scope == AlertScope::kAny) {
    for (const auto& d : snap.gpus) out.push_back({d.uuid, deviceLabels(d, host), deviceValue(rule.metric, d)});
  }
  if (rule.scope == AlertScope::kInstance || rule.scope == AlertScope::kAny) {
    for (const auto& d : snap.instances) {
      out.push_back({d.uuid, deviceLabels(d, host), deviceValue(rule.metric, d)});
    }
  }
  return out;
}

}  // namespace sandman
