// AlertRule: one condition on one telemetry metric ("temperature > 85 for 5m"),
// evaluated per device (or for the host) on every sample. Value types and pure
// functions; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "model/gpu_snapshot.h"

namespace sandman {

enum class AlertMetric {
  kTemperature,      // °C, per GPU
  kUtilization,      // %, per GPU or MIG instance (where the driver reports it)
  kMemoryUsedRatio,  // used / total memory in %, per GPU or MIG instance
  kPowerOverLimit,   // W above the enforced power limit (negative: below), per GPU
  kBackendError,     // 1 while NVML fails, for the host
  kGpuLost,          // 1 for a GPU seen earlier and missing now
  kMigLeaked,        // 1 for a MIG instance no session holds (dynamic MIG mode only)
  kDiskFreeRatio,    // available / size in %, per file system Sandman writes to (state, workspaces)
  kWorkspaceQuotaUsed,  // used / --workspace-quota in %, per workspace (only with a quota)
  kBudgetUsed,          // month-to-date spend / monthly limit in %, per budget
  kBudgetForecast,      // forecast month-end spend / monthly limit in %, per budget
};

// What a rule is evaluated on: the host once, each GPU, each MIG instance, or
// both kinds of device.
enum class AlertScope { kHost, kGpu, kInstance, kAny };

enum class CompareOp { kGt, kGe, kLt, kLe, kEq, kNe };

struct AlertRule {
  std::string name;  // alertname: [A-Za-z_][A-Za-z0-9_]*, unique in a rule set
  AlertMetric metric = AlertMetric::kTemperature;
  CompareOp op = CompareOp::kGt;
  double threshold = 0;
  Millis for_duration{0};  // the condition must hold this long before firing
  std::string severity;    // critical | warning | info
  AlertScope scope = AlertScope::kGpu;
  std::string summary;  // template: {{gpu}}, {{value}}, ... (see kSummaryPlaceholders)
};

const char* alertMetricName(AlertMetric m);
std::optional<AlertMetric> parseAlertMetric(const std::string& s);
const char* alertScopeName(AlertScope s);
std::optional<AlertScope> parseAlertScope(const std::string& s);
const char* compareOpName(CompareOp op);
std::optional<CompareOp> parseCompareOp(const std::string& s);
bool compareHolds(CompareOp op, double value, double threshold);

// The scope a metric gets when a rule names none, and whether it accepts s.
AlertScope defaultScope(AlertMetric m);
bool scopeAllowed(AlertMetric m, AlertScope s);
// 0/1 metrics, whose op and threshold default to "> 0".
bool isFlagMetric(AlertMetric m);
// Metrics read from the GPU backend: while it fails they are unknown, so
// their alerts keep their state. Disk metrics are read all the same.
bool readsGpuBackend(AlertMetric m);

// Placeholders a summary may use: the subject's labels plus value, threshold,
// rule and severity. A label the subject lacks renders empty.
extern const char* const kSummaryPlaceholders[];
bool isSummaryPlaceholder(const std::string& name);
std::string renderSummary(const AlertRule& rule, const std::map<std::string, std::string>& labels, double value);
std::string formatAlertValue(double v);  // 91 -> "91", 91.25 -> "91.25"

// The seed's rules: overheating, saturation, memory, power, GPU lost, NVML
// error, leaked MIG instance; and a disk almost full, a workspace at its
// quota. deploy/alert-rules.json writes them out.
std::vector<AlertRule> defaultAlertRules();

// One thing a rule is evaluated on in one snapshot.
struct AlertSubject {
  std::string key;  // the device UUID, or "host"
  std::map<std::string, std::string> labels;
  std::optional<double> value;  // absent: not reported this sample (the condition does not hold)
};

// Every subject the rule's scope covers in the snapshot, with the metric's
// value. host goes into the labels (empty: no host label).
std::vector<AlertSubject> alertSubjects(const AlertRule& rule, const TelemetrySnapshot& snap,
                                        const std::string& host);

}  // namespace sandman
