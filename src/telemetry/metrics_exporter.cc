#include "telemetry/metrics_exporter.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/log.h"
#include "telemetry/prometheus_text.h"

namespace sandman {
namespace {

constexpr double kBytesPerMib = 1024.0 * 1024.0;

// Always exported, at zero when absent, so that dashboards and rate() see a
// series from the first scrape instead of one that appears on the first event.
constexpr const char* kSessionStatuses[] = {"pending", "starting", "running", "stopping", "ended", "failed"};
constexpr const char* kRepairKinds[] = {"orphan_container",  "container_gone",  "interrupted_create",
                                        "interrupted_stop", "leaked_instance", "vanished_slice"};

// One device's label values, owned here so that Labels (views) can point at them.
// Label names follow dcgm-exporter (gpu, UUID, Hostname, GPU_I_PROFILE,
// GPU_I_ID) so its dashboards translate, except modelName: promtool's lint
// rejects camelCase label names, so it is model_name here.
struct DeviceRow {
  const DeviceReading* d = nullptr;
  std::string gpu;    // NVML index of the physical GPU
  std::string gi_id;  // MIG rows
  Labels labels;
};

std::vector<DeviceRow> rowsOf(const std::vector<DeviceReading>& devices, const std::string& hostname,
                              bool user_labels) {
  std::vector<DeviceRow> rows(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    const DeviceReading& d = devices[i];
    DeviceRow& r = rows[i];
    r.d = &d;
    r.gpu = std::to_string(d.gpu_index);
    if (d.is_mig) r.gi_id = std::to_string(d.gpu_instance_id);
  }
  // Views are taken once the strings no longer move.
  for (auto& r : rows) {
    const DeviceReading& d = *r.d;
    // A cluster's device is named by its node (dcgm-exporter's Hostname is
    // the node it runs on), and carries the node label the agent adds.
    r.labels = {{"gpu", r.gpu}, {"UUID", d.is_mig ? d.gpu_uuid : d.uuid}, {"model_name", d.model_name},
                {"Hostname", d.node.empty() ? std::string_view(hostname) : std::string_view(d.node)}};
    if (d.is_mig) {
      r.labels.push_back({"GPU_I_PROFILE", d.profile});
      r.labels.push_back({"GPU_I_ID", r.gi_id});
      r.labels.push_back({"mig_uuid", d.uuid});
    }
    r.labels.push_back({"session_id", d.session_id});
    if (user_labels) r.labels.push_back({"user_id", d.user_id});
    if (!d.node.empty()) r.labels.push_back({"node", d.node});
  }
  return rows;
}

// Compute slices held by sessions over the GPU's total; without MIG, whether
// a session holds the whole GPU.
double allocationRatio(const DeviceReading& gpu, const std::vector<DeviceReading>& instances) {
  if (!gpu.mig_enabled) return gpu.session_id.empty() ? 0.0 : 1.0;
  int held = 0;
  for (const auto& m : instances) {
    if (m.gpu_uuid == gpu.uuid && !m.session_id.empty()) held += m.compute_slices;
  }
  int total = CostRates::computeSlicesOf(gpu.model_name);
  return std::min(1.0, static_cast<double>(held) / total);
}

void gpuFamilies(PrometheusText& w, const TelemetrySnapshot& s, const MetricsOptions& o, bool user_labels) {
  const auto gpus = rowsOf(s.gpus, o.hostname, user_labels);
  const auto migs = rowsOf(s.instances, o.hostname, user_labels);
  auto each = [&](const std::vector<DeviceRow>& rows, auto value) {
    for (const auto& r : rows) {
      if (std::optional<double> v = value(*r.d)) w.sample(r.labels, *v);
    }
  };

  w.begin("gpu_temperature", MetricType::kGauge,
          "GPU core temperature in degrees Celsius, per physical GPU (MIG instances share it).");
  each(gpus, [](const DeviceReading& d) { return d.temperature_c; });

  w.begin("gpu_utilization", MetricType::kGauge,
          "Percent of time (0-100) a kernel ran over the last sample period: per GPU without MIG, per MIG "
          "instance where the driver reports it (GPM). Absent where unknown, e.g. a MIG-mode GPU as a whole.");
  each(gpus, [](const DeviceReading& d) { return d.utilization_pct; });
  each(migs, [](const DeviceReading& d) { return d.utilization_pct; });

  w.begin("gpu_power_usage_watts", MetricType::kGauge, "Power draw of the physical GPU in watts.");
  each(gpus, [](const DeviceReading& d) { return d.power_w; });
  w.begin("gpu_power_limit_watts", MetricType::kGauge, "Enforced power limit of the physical GPU in watts.");
  each(gpus, [](const DeviceReading& d) { return d.power_limit_w; });

  auto mib = [](uint64_t v) { return std::optional<double>(static_cast<double>(v) * kBytesPerMib); };
  w.begin("gpu_memory_used_bytes", MetricType::kGauge,
          "Framebuffer memory in use, in bytes, per GPU and per MIG instance (GPU_I_ID set).");
  each(gpus, [&](const DeviceReading& d) { return mib(d.memory_used_mib); });
  each(migs, [&](const DeviceReading& d) { return mib(d.memory_used_mib); });
  w.begin("gpu_memory_total_bytes", MetricType::kGauge,
          "Framebuffer memory size, in bytes, per GPU and per MIG instance (GPU_I_ID set).");
  each(gpus, [&](const DeviceReading& d) { return mib(d.memory_total_mib); });
  each(migs, [&](const DeviceReading& d) { return mib(d.memory_total_mib); });

  auto procs = [](const DeviceReading& d) { return std::optional<double>(d.compute_processes); };
  w.begin("gpu_compute_processes", MetricType::kGauge,
          "CUDA processes running, per GPU (all its MIG instances) and per MIG instance.");
  each(gpus, procs);
  each(migs, procs);

  w.begin("mig_allocation_ratio", MetricType::kGauge,
          "Share (0-1) of the GPU's compute slices held by sessions (7 slices per GPU, 4 on A30). Without MIG: "
          "1 while a session holds the whole GPU, else 0.");
  for (const auto& r : gpus) {
    // Holders sit on the instances of a MIG-mode GPU; the ratio is the GPU's own.
    Labels l(r.labels.begin(), r.labels.begin() + 4);
    if (!r.d->node.empty()) l.push_back(r.labels.back());  // node
    w.sample(l, allocationRatio(*r.d, s.instances));
  }

  if (o.gpu_only) return;  // prices are the control daemon's business
  w.begin("gpu_hourly_cost", MetricType::kGauge,
          "Price per hour of each allocatable device (a GPU without MIG, or a MIG instance: its compute-slice "
          "share of the GPU's --gpu-hourly-rates price), in the rates' currency. session_id/user_id are set "
          "while a session holds it: sum(gpu_hourly_cost{session_id!=\"\"}) is the current spend rate.");
  for (const auto& r : gpus) {
    if (!r.d->mig_enabled) w.sample(r.labels, o.rates.slotPerHour(r.d->model_name, "whole", 0));
  }
  for (const auto& r : migs) w.sample(r.labels, o.rates.slotPerHour(r.d->model_name, r.d->profile, r.d->compute_slices));
}

void telemetryFamilies(PrometheusText& w, const SnapshotPtr& s) {
  const bool up = s && s->backend_ok;
  w.begin("sandman_telemetry_up", MetricType::kGauge,
          "1 when the last telemetry cycle read the GPU backend, 0 when it failed or none ran yet.");
  w.sample({}, up ? 1 : 0);
  if (!s) return;
  w.begin("sandman_telemetry_last_sample_timestamp_seconds", MetricType::kGauge,
          "Unix time of the last telemetry cycle (stale when the sampler is stuck).");
  w.sample({}, std::chrono::duration<double>(s->taken_at.time_since_epoch()).count());
  w.begin("sandman_telemetry_sample_duration_seconds", MetricType::kGauge,
          "How long the last telemetry cycle took (backend reads and attribution).");
  w.sample({}, s->sample_seconds);
  w.begin("sandman_gpus", MetricType::kGauge, "Physical GPUs in the last telemetry cycle.");
  w.sample({}, static_cast<double>(s->gpus.size()));
  w.begin("sandman_gpus_lost", MetricType::kGauge,
          "GPUs an earlier telemetry cycle saw that the backend no longer lists (fell off the bus).");
  w.sample({}, static_cast<double>(s->lost_gpus.size()));
  if (!s->cluster) return;
  w.begin("sandman_agent_up", MetricType::kGauge,
          "1 when the node's agent answered the last telemetry cycle, 0 when it is missing (its pod gone, "
          "not ready, or unreachable): that node's GPUs are then absent from the GPU series.");
  for (const auto& n : s->nodes) w.sample({{"node", n.node}}, n.up ? 1 : 0);
  w.begin("sandman_agent_last_seen_timestamp_seconds", MetricType::kGauge,
          "Unix time the node's agent last answered (absent if never since the daemon started).");
  for (const auto& n : s->nodes) {
    if (n.last_seen) w.sample({{"node", n.node}}, std::chrono::duration<double>(n.last_seen->time_since_epoch()).count());
  }
  w.begin("sandman_sessions_unobserved", MetricType::kGauge,
          "Running sessions on nodes whose agent is missing: their GPU use is unknown (the idle policy waits).");
  w.sample({}, static_cast<double>(s->unobserved_sessions.size()));
}

// Per-user series only for those allowed to see user names; the totals
// always, so an anonymous scrape still sees a workspace filling the disk.
void diskFamilies(PrometheusText& w, const DiskReadings& d, bool user_labels) {
  w.begin("sandman_filesystem_size_bytes", MetricType::kGauge,
          "Size of each file system Sandman writes to: filesystem=state (the store), workspace (the workspace "
          "root), or state+workspace when they are one.");
  for (const auto& f : d.filesystems) w.sample({{"filesystem", f.name}, {"path", f.path}}, static_cast<double>(f.size_bytes));
  w.begin("sandman_filesystem_avail_bytes", MetricType::kGauge,
          "Bytes still available (to unprivileged writers) on each file system Sandman writes to.");
  for (const auto& f : d.filesystems) w.sample({{"filesystem", f.name}, {"path", f.path}}, static_cast<double>(f.avail_bytes));
  uint64_t total = 0;
  int over = 0;
  for (const auto& ws : d.workspaces) {
    total += ws.used_bytes;
    if (ws.quota_bytes > 0 && ws.used_bytes >= ws.quota_bytes) ++over;
  }
  w.begin("sandman_workspaces_used_bytes", MetricType::kGauge,
          "Bytes all workspaces hold together, as last measured (in the background, not per scrape).");
  w.sample({}, static_cast<double>(total));
  w.begin("sandman_workspaces_over_quota", MetricType::kGauge,
          "Workspaces at or past --workspace-quota (where quotas are enforced, writes there fail).");
  w.sample({}, over);
  w.begin("sandman_workspace_bytes", MetricType::kGauge,
          "Bytes one user's workspace holds, as last measured; per user_id only for scrapes allowed user names.");
  if (user_labels) {
    for (const auto& ws : d.workspaces) w.sample({{"user_id", ws.user_id}}, static_cast<double>(ws.used_bytes));
  }
}

void daemonFamilies(PrometheusText& w, const MetricsInputs& in) {
  if (in.sessions_by_status) {
    std::map<std::string, int64_t> counts;
    for (const char* st : kSessionStatuses) counts[st] = 0;
    for (const auto& [st, n] : *in.sessions_by_status) counts[st] = n;
    w.begin("sandman_sessions", MetricType::kGauge, "Sessions in the store, by status (ended ones are kept).");
    for (const auto& [st, n] : counts) w.sample({{"status", st}}, static_cast<double>(n));
  }

  w.begin("sandman_session_create_seconds", MetricType::kHistogram,
          "Seconds from a create request to a session whose sshd answers (successful creates).");
  w.histogram({}, in.create_seconds);
  w.begin("sandman_http_request_duration_seconds", MetricType::kHistogram,
          "Wall time of every REST API request, routed or not.");
  w.histogram({}, in.request_seconds);
  const ApiConnectionStats& a = in.api_connections;
  w.begin("sandman_http_connections", MetricType::kGauge, "Open REST API connections.");
  w.sample({}, static_cast<double>(a.open));
  w.begin("sandman_http_refused_connections_total", MetricType::kCounter,
          "REST API connections closed at once for being over the per-source or global cap.");
  w.sample({}, static_cast<double>(a.refused_total));
  w.begin("sandman_http_rejected_requests_total", MetricType::kCounter,
          "REST API requests answered before routing: malformed, not UTF-8, too large, no Content-Length.");
  w.sample({}, static_cast<double>(a.rejected_total));
  w.begin("sandman_http_timed_out_connections_total", MetricType::kCounter,
          "REST API connections closed past a deadline (request head, body, write or keep-alive idle).");
  w.sample({}, static_cast<double>(a.timed_out_total));

  const GatewayStats& g = in.gateway;
  w.begin("sandman_gateway_connections", MetricType::kGauge,
          "Open SSH gateway connections: authenticated (relaying to a session) or preauth.");
  w.sample({{"state", "authenticated"}}, g.open_connections);
  w.sample({{"state", "preauth"}}, g.preauth_connections);
  w.begin("sandman_gateway_logins_total", MetricType::kCounter, "SSH gateway logins routed to a session.");
  w.sample({}, static_cast<double>(g.logins_total));
  w.begin("sandman_gateway_refusals_total", MetricType::kCounter, "SSH gateway connections refused, by reason.");
  for (const auto& [reason, n] : g.refusals_total) w.sample({{"reason", reason}}, static_cast<double>(n));
  w.begin("sandman_gateway_relayed_bytes_total", MetricType::kCounter,
          "Bytes the SSH gateway relayed: direction=in is user to session, out is session to user.");
  w.sample({{"direction", "in"}}, static_cast<double>(g.bytes_in_total));
  w.sample({{"direction", "out"}}, static_cast<double>(g.bytes_out_total));

  std::map<std::string, uint64_t> repairs;
  for (const char* k : kRepairKinds) repairs[k] = 0;
  for (const auto& [k, n] : in.reconcile_repairs) repairs[k] = n;
  w.begin("sandman_reconcile_repairs_total", MetricType::kCounter,
          "Mismatches reconciliation repaired between the store, Docker and NVML, by kind.");
  for (const auto& [k, n] : repairs) w.sample({{"kind", k}}, static_cast<double>(n));
  w.begin("sandman_alerts", MetricType::kGauge,
          "Open alerts of the built-in engine (pending or firing), by rule, severity and state.");
  for (const auto& [key, n] : in.open_alerts) {
    const auto& [rule, severity, state] = key;
    w.sample({{"alertname", rule}, {"severity", severity}, {"state", state}}, n);
  }
  if (in.cost) {
    // Without user labels (an open scrape beyond loopback) the users' series fold into their payer's.
    std::map<std::tuple<std::string, std::string, std::string, std::string>, std::pair<double, double>> series;
    for (const auto& c : *in.cost) {
      auto& v = series[{in.user_labels ? c.user_id : "", c.team, c.project, c.gpu_model}];
      v.first += c.usd;
      v.second += c.idle_usd;
    }
    w.begin("sandman_cost_usd_total", MetricType::kCounter,
            "GPU cost in USD: every slice a session held, at the price in force (the ledger), plus running "
            "sessions accrued to now.");
    for (const auto& [k, v] : series) {
      w.sample({{"user_id", std::get<0>(k)}, {"team", std::get<1>(k)}, {"project", std::get<2>(k)},
                {"gpu_model", std::get<3>(k)}},
               v.first);
    }
    w.begin("sandman_idle_cost_usd_total", MetricType::kCounter,
            "The part of sandman_cost_usd_total paid while the slice ran no compute process and stayed under "
            "--idle-utilization.");
    for (const auto& [k, v] : series) {
      w.sample({{"user_id", std::get<0>(k)}, {"team", std::get<1>(k)}, {"project", std::get<2>(k)},
                {"gpu_model", std::get<3>(k)}},
               v.second);
    }
  }
  if (!in.budgets.empty()) {
    w.begin("sandman_budget_used_ratio", MetricType::kGauge,
            "Month-to-date spend of a budget over its monthly limit (1 = spent), budget=\"scope/name\".");
    for (const auto& b : in.budgets) w.sample({{"budget", b.budget}}, b.ratio);
  }
  if (!in.idle_decisions.empty()) {
    w.begin("sandman_idle_decisions_total", MetricType::kCounter,
            "Idle-policy decisions by kind: idle_warning, idle_stop, auto_extend, auto_extend_limit, busy_again.");
    for (const auto& [k, n] : in.idle_decisions) w.sample({{"decision", k}}, static_cast<double>(n));
  }
  if (in.leadership) {
    w.begin("sandman_leader", MetricType::kGauge,
            "1 on the replica that leads (holds the sandman-leader Lease and has synced with the cluster), 0 on a follower.");
    w.sample({}, in.leadership->leader ? 1 : 0);
    w.begin("sandman_leader_transitions_total", MetricType::kCounter,
            "Leadership changes of the sandman-leader Lease (its leaseTransitions), as this replica last read it.");
    w.sample({}, static_cast<double>(in.leadership->transitions));
  }
}

void kubeWatchFamilies(PrometheusText& w, const KubeWatchStats& k) {
  w.begin("sandman_kube_watch_synced", MetricType::kGauge,
          "1 once the Kubernetes pod watch cache has completed a list (reads answer from it), else 0.");
  w.sample({}, k.synced ? 1.0 : 0.0);
  w.begin("sandman_kube_watch_pods", MetricType::kGauge, "Session pods in the Kubernetes pod watch cache.");
  w.sample({}, static_cast<double>(k.pods));
  w.begin("sandman_kube_watch_cache_bytes", MetricType::kGauge,
          "Approximate bytes the Kubernetes pod watch cache's pod views hold.");
  w.sample({}, static_cast<double>(k.cache_bytes));
  w.begin("sandman_kube_watch_lists_total", MetricType::kCounter,
          "Full lists of session pods by the watch cache: the first, then each relist.");
  w.sample({}, static_cast<double>(k.lists_total));
  w.begin("sandman_kube_watch_watches_total", MetricType::kCounter, "Watch requests the pod watch cache opened.");
  w.sample({}, static_cast<double>(k.watches_total));
  w.begin("sandman_kube_watch_relists_after_gone_total", MetricType::kCounter,
          "Relists after the API server answered 410 Gone: the cache's resourceVersion had expired.");
  w.sample({}, static_cast<double>(k.relists_after_gone_total));
  w.begin("sandman_kube_watch_errors_total", MetricType::kCounter,
          "Lists and watches of the pod watch cache that failed (connection, 5xx, ...); it retries with backoff.");
  w.sample({}, static_cast<double>(k.errors_total));
}

}  // namespace

std::string renderMetrics(const MetricsInputs& in, const MetricsOptions& options) {
  PrometheusText w;
  const TelemetrySnapshot empty;  // before the first cycle the GPU families stay, without samples
  gpuFamilies(w, in.snapshot ? *in.snapshot : empty, options, in.user_labels);
  telemetryFamilies(w, in.snapshot);
  if (options.gpu_only) return w.take();
  diskFamilies(w, in.snapshot ? in.snapshot->disk : empty.disk, in.user_labels);
  daemonFamilies(w, in);
  if (in.kube_watch) kubeWatchFamilies(w, *in.kube_watch);
  return w.take();
}

MetricsInputs MetricsExporter::gather() const {
  MetricsInputs in;
  if (sources_.snapshot) in.snapshot = sources_.snapshot();
  if (sources_.sessions_by_status) {
    auto counts = sources_.sessions_by_status();
    if (counts.ok()) {
      in.sessions_by_status = std::move(counts).value();
    } else {
      logWarn("metrics: session counts unavailable", {{"error", counts.error().message}});
    }
  }
  if (sources_.create_seconds) in.create_seconds = sources_.create_seconds();
  if (sources_.request_seconds) in.request_seconds = sources_.request_seconds();
  if (sources_.api_connections) in.api_connections = sources_.api_connections();
  if (sources_.gateway) in.gateway = sources_.gateway();
  if (sources_.reconcile_repairs) in.reconcile_repairs = sources_.reconcile_repairs();
  if (sources_.idle_decisions) in.idle_decisions = sources_.idle_decisions();
  if (sources_.kube_watch) in.kube_watch = sources_.kube_watch();
  if (sources_.open_alerts) in.open_alerts = sources_.open_alerts();
  if (sources_.leadership) in.leadership = sources_.leadership();
  if (sources_.cost) {
    auto cost = sources_.cost();
    if (cost.ok()) {
      in.cost = std::move(cost).value();
    } else {
      logWarn("metrics: cost unavailable", {{"error", cost.error().message}});
    }
  }
  if (sources_.budgets) in.budgets = sources_.budgets();
  return in;
}

}  // namespace sandman
