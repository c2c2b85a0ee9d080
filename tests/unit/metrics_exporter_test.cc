#include "telemetry/metrics_exporter.h"

#include "telemetry/prometheus_text.h"

#include <gtest/gtest.h>

#include <sstream>
#include <vector>

namespace sandman {
namespace {

DeviceReading gpu(int index, std::string uuid, std::string model, bool mig) {
  DeviceReading d;
  d.uuid = uuid;
  d.gpu_uuid = std::move(uuid);
  d.gpu_index = index;
  d.model_name = std::move(model);
  d.mig_enabled = mig;
  d.temperature_c = 40 + index;
  d.power_w = 100;
  d.power_limit_w = 400;
  d.memory_total_mib = 81920;
  d.memory_used_mib = 1024;
  if (!mig) d.utilization_pct = 10 * index;
  return d;
}

DeviceReading instance(const DeviceReading& parent, int gi, std::string profile, int slices, std::string session = "",
                       std::string user = "") {
  DeviceReading d;
  d.uuid = "MIG-" + parent.uuid.substr(4) + "-" + std::to_string(gi);
  d.gpu_uuid = parent.uuid;
  d.gpu_index = parent.gpu_index;
  d.model_name = parent.model_name;
  d.is_mig = true;
  d.profile = std::move(profile);
  d.gpu_instance_id = gi;
  d.compute_slices = slices;
  d.temperature_c = parent.temperature_c;
  d.memory_total_mib = 10240;
  d.session_id = std::move(session);
  d.user_id = std::move(user);
  return d;
}

// A100 in MIG mode with a held 3g and a free 1g, an H100 in MIG mode with a
// held 1g that reports its own utilisation, and a whole RTX held by bob.
MetricsInputs mixedHost() {
  auto s = std::make_shared<TelemetrySnapshot>();
  s->taken_at = TimePoint(std::chrono::seconds(1700000000));
  s->gpus = {gpu(0, "GPU-aaaa", "NVIDIA A100-SXM4-80GB", true), gpu(1, "GPU-bbbb", "NVIDIA H100-SXM5-80GB", true),
             gpu(2, "GPU-cccc", "NVIDIA RTX-4090", false)};
  s->gpus[2].session_id = "s-rtx";
  s->gpus[2].user_id = "bob";
  s->instances = {instance(s->gpus[0], 1, "3g.40gb", 3, "s-3g", "alice"), instance(s->gpus[0], 9, "1g.10gb", 1),
                  instance(s->gpus[1], 2, "1g.10gb", 1, "s-h1", "carol")};
  s->instances[2].utilization_pct = 77;
  MetricsInputs in;
  in.snapshot = s;
  in.sessions_by_status = std::map<std::string, int64_t>{{"running", 3}, {"ended", 5}};
  in.reconcile_repairs = {{"orphan_container", 2}};
  in.gateway.open_connections = 4;
  in.gateway.refusals_total = {{"auth_failed", 6}};
  return in;
}

MetricsOptions options(const std::string& rates = "A100=2.80,H100=3.50,4090=0.70") {
  MetricsOptions o;
  o.hostname = "gpu-host-1";
  o.rates = CostRates::parse(rates).value();
  return o;
}

// The sample lines (not comments) of one family, exactly as rendered.
std::vector<std::string> samples(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0) out.push_back(line);
  }
  return out;
}

bool has(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(MetricsExporter, TemperatureAndPowerArePerPhysicalGpuWithDcgmLabels) {
  std::string m = renderMetrics(mixedHost(), options());
  EXPECT_EQ(samples(m, "gpu_temperature").size(), 3u) << m;
  EXPECT_TRUE(has(m, "gpu_temperature{gpu=\"0\",UUID=\"GPU-aaaa\",model_name=\"NVIDIA A100-SXM4-80GB\","
                     "Hostname=\"gpu-host-1\"} 40"))
      << m;
  EXPECT_TRUE(has(m, "gpu_power_usage_watts{gpu=\"2\",UUID=\"GPU-cccc\",model_name=\"NVIDIA RTX-4090\","
                     "Hostname=\"gpu-host-1\",session_id=\"s-rtx\",user_id=\"bob\"} 100"))
      << "a whole GPU carries its holder: " << m;
  EXPECT_EQ(samples(m, "gpu_power_limit_watts").size(), 3u);
  EXPECT_NE(m.find("# TYPE gpu_temperature gauge\n"), std::string::npos);
}

TEST(MetricsExporter, UtilizationOnlyWhereTheDriverReportsIt) {
  std::string m = renderMetrics(mixedHost(), options());
  auto util = samples(m, "gpu_utilization");
  ASSERT_EQ(util.size(), 2u) << "the RTX and the one MIG instance with GPM; not the MIG-mode GPUs: " << m;
  EXPECT_TRUE(has(m, "gpu_utilization{gpu=\"2\",UUID=\"GPU-cccc\",model_name=\"NVIDIA RTX-4090\","
                     "Hostname=\"gpu-host-1\",session_id=\"s-rtx\",user_id=\"bob\"} 20"));
  EXPECT_TRUE(has(m, "gpu_utilization{gpu=\"1\",UUID=\"GPU-bbbb\",model_name=\"NVIDIA H100-SXM5-80GB\","
                     "Hostname=\"gpu-host-1\",GPU_I_PROFILE=\"1g.10gb\",GPU_I_ID=\"2\",mig_uuid=\"MIG-bbbb-2\","
                     "session_id=\"s-h1\",user_id=\"carol\"} 77"))
      << m;
}

TEST(MetricsExporter, MigAllocationRatioCountsHeldComputeSlices) {
  std::string m = renderMetrics(mixedHost(), options());
  const std::string tail = ",Hostname=\"gpu-host-1\"} ";
  EXPECT_TRUE(has(m, "mig_allocation_ratio{gpu=\"0\",UUID=\"GPU-aaaa\",model_name=\"NVIDIA A100-SXM4-80GB\"" + tail +
                         formatPromValue(3.0 / 7)))
      << "3g held, 1g free: " << m;
  EXPECT_TRUE(has(m, "mig_allocation_ratio{gpu=\"1\",UUID=\"GPU-bbbb\",model_name=\"NVIDIA H100-SXM5-80GB\"" + tail +
                         formatPromValue(1.0 / 7)));
  EXPECT_TRUE(has(m, "mig_allocation_ratio{gpu=\"2\",UUID=\"GPU-cccc\",model_name=\"NVIDIA RTX-4090\"" + tail + "1"))
      << "a whole GPU held: 1, and no holder labels on the GPU's own ratio";
}

TEST(MetricsExporter, HourlyCostPerAllocatableDeviceWithItsHolder) {
  std::string m = renderMetrics(mixedHost(), options());
  auto cost = samples(m, "gpu_hourly_cost");
  EXPECT_EQ(cost.size(), 4u) << "the RTX and three MIG instances; MIG-mode GPUs are priced through them: " << m;
  EXPECT_TRUE(has(m, "gpu_hourly_cost{gpu=\"0\",UUID=\"GPU-aaaa\",model_name=\"NVIDIA A100-SXM4-80GB\","
                     "Hostname=\"gpu-host-1\",GPU_I_PROFILE=\"3g.40gb\",GPU_I_ID=\"1\",mig_uuid=\"MIG-aaaa-1\","
                     "session_id=\"s-3g\",user_id=\"alice\"} " +
                         formatPromValue(2.80 * 3 / 7)))
      << m;
  EXPECT_TRUE(has(m, "gpu_hourly_cost{gpu=\"0\",UUID=\"GPU-aaaa\",model_name=\"NVIDIA A100-SXM4-80GB\","
                     "Hostname=\"gpu-host-1\",GPU_I_PROFILE=\"1g.10gb\",GPU_I_ID=\"9\",mig_uuid=\"MIG-aaaa-9\"} " +
                         formatPromValue(2.80 / 7)))
      << "a free slice has its price but no holder: " << m;
  EXPECT_TRUE(has(m, "gpu_hourly_cost{gpu=\"2\",UUID=\"GPU-cccc\",model_name=\"NVIDIA RTX-4090\","
                     "Hostname=\"gpu-host-1\",session_id=\"s-rtx\",user_id=\"bob\"} 0.7"));
}

TEST(MetricsExporter, MemoryInBytesPerGpuAndInstance) {
  std::string m = renderMetrics(mixedHost(), options());
  EXPECT_EQ(samples(m, "gpu_memory_total_bytes").size(), 6u);
  EXPECT_TRUE(has(m, "gpu_memory_used_bytes{gpu=\"0\",UUID=\"GPU-aaaa\",model_name=\"NVIDIA A100-SXM4-80GB\","
                     "Hostname=\"gpu-host-1\"} 1073741824"));
}

TEST(MetricsExporter, DaemonSeriesAreZeroFilledAndCountersEndInTotal) {
  std::string m = renderMetrics(mixedHost(), options());
  EXPECT_TRUE(has(m, "sandman_sessions{status=\"running\"} 3"));
  EXPECT_TRUE(has(m, "sandman_sessions{status=\"failed\"} 0")) << "every status, even at zero";
  EXPECT_TRUE(has(m, "sandman_reconcile_repairs_total{kind=\"orphan_container\"} 2"));
  EXPECT_TRUE(has(m, "sandman_reconcile_repairs_total{kind=\"leaked_instance\"} 0"));
  EXPECT_TRUE(has(m, "sandman_gateway_connections{state=\"authenticated\"} 4"));
  EXPECT_TRUE(has(m, "sandman_gateway_refusals_total{reason=\"auth_failed\"} 6"));
  EXPECT_TRUE(has(m, "sandman_session_create_seconds_count 0"));
  EXPECT_TRUE(has(m, "sandman_http_request_duration_seconds_bucket{le=\"+Inf\"} 0"));
  EXPECT_TRUE(has(m, "sandman_telemetry_up 1"));
  EXPECT_TRUE(has(m, "sandman_telemetry_last_sample_timestamp_seconds 1700000000"));
  std::istringstream in(m);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0 && line.size() > 8 && line.substr(line.size() - 8) == " counter") {
      EXPECT_NE(line.find("_total counter"), std::string::npos) << line;
    }
  }
}

TEST(MetricsExporter, UserLabelsCanBeLeftOutForUnauthenticatedRemoteScrapes) {
  MetricsInputs in = mixedHost();
  in.user_labels = false;
  std::string m = renderMetrics(in, options());
  EXPECT_EQ(m.find("user_id="), std::string::npos) << m;
  EXPECT_EQ(m.find("carol"), std::string::npos) << "no user name anywhere";
  EXPECT_TRUE(has(m, "gpu_power_usage_watts{gpu=\"2\",UUID=\"GPU-cccc\",model_name=\"NVIDIA RTX-4090\","
                     "Hostname=\"gpu-host-1\",session_id=\"s-rtx\"} 100"))
      << m;
  EXPECT_NE(renderMetrics(mixedHost(), options()).find("user_id=\"carol\""), std::string::npos);
}

TEST(MetricsExporter, ApiConnectionCounters) {
  MetricsInputs in = mixedHost();
  in.api_connections = {3, 7, 11, 2};
  std::string m = renderMetrics(in, options());
  EXPECT_TRUE(has(m, "sandman_http_connections 3")) << m;
  EXPECT_TRUE(has(m, "sandman_http_refused_connections_total 7"));
  EXPECT_TRUE(has(m, "sandman_http_rejected_requests_total 11"));
  EXPECT_TRUE(has(m, "sandman_http_timed_out_connections_total 2"));
}

TEST(MetricsExporter, BeforeTheFirstSampleFamiliesStayAndTelemetryIsDown) {
  MetricsInputs in;
  std::string m = renderMetrics(in, options());
  EXPECT_NE(m.find("# TYPE gpu_temperature gauge"), std::string::npos);
  EXPECT_TRUE(samples(m, "gpu_temperature").empty());
  EXPECT_TRUE(has(m, "sandman_telemetry_up 0"));
  EXPECT_TRUE(samples(m, "sandman_sessions").empty()) << "a failed store read leaves the family out";
}

TEST(MetricsExporter, ExporterReadsEverySourceOnEachScrape) {
  auto snap = mixedHost().snapshot;
  int scrapes = 0;
  MetricsSources src;
  src.snapshot = [&] {
    ++scrapes;
    return snap;
  };
  src.sessions_by_status = [] { return Result<std::map<std::string, int64_t>>(unavailable("store locked")); };
  src.request_seconds = [] {
    Histogram h{1};
    h.observe(0.5);
    return h.snapshot();
  };
  MetricsExporter exporter(options(), src);
  std::string m = exporter.render();
  exporter.render();
  EXPECT_EQ(scrapes, 2);
  EXPECT_EQ(samples(m, "gpu_temperature").size(), 3u);
  EXPECT_TRUE(has(m, "sandman_http_request_duration_seconds_bucket{le=\"1\"} 1"));
  EXPECT_TRUE(samples(m, "sandman_sessions").empty());
  EXPECT_TRUE(has(m, "sandman_gateway_connections{state=\"preauth\"} 0")) << "no gateway: zeros";
}

TEST(MetricsExporter, KubeWatchCacheOnlyWithTheKubernetesBackend) {
  std::string docker = renderMetrics(mixedHost(), options());
  EXPECT_EQ(docker.find("sandman_kube_watch"), std::string::npos) << "no Kubernetes backend: no families";

  MetricsSources src;
  src.kube_watch = [] {
    KubeWatchStats k;
    k.pods = 12;
    k.synced = true;
    k.lists_total = 3;
    k.watches_total = 9;
    k.relists_after_gone_total = 2;
    k.errors_total = 1;
    k.cache_bytes = 9728;
    return k;
  };
  std::string m = MetricsExporter(options(), src).render();
  EXPECT_TRUE(has(m, "# TYPE sandman_kube_watch_pods gauge")) << m;
  EXPECT_TRUE(has(m, "sandman_kube_watch_pods 12"));
  EXPECT_TRUE(has(m, "sandman_kube_watch_synced 1"));
  EXPECT_TRUE(has(m, "# TYPE sandman_kube_watch_lists_total counter"));
  EXPECT_TRUE(has(m, "sandman_kube_watch_lists_total 3"));
  EXPECT_TRUE(has(m, "sandman_kube_watch_watches_total 9"));
  EXPECT_TRUE(has(m, "sandman_kube_watch_relists_after_gone_total 2"));
  EXPECT_TRUE(has(m, "sandman_kube_watch_errors_total 1"));
  EXPECT_TRUE(has(m, "sandman_kube_watch_cache_bytes 9728"));

  MetricsInputs in = mixedHost();
  in.kube_watch = KubeWatchStats{};  // before the first list: present, at zero
  m = renderMetrics(in, options());
  EXPECT_TRUE(has(m, "sandman_kube_watch_synced 0"));
  EXPECT_TRUE(has(m, "sandman_kube_watch_relists_after_gone_total 0"));
}

}  // namespace
}  // namespace sandman
