// `sandman agent`: the node agent, run as a DaemonSet on GPU nodes. It reads
// the node's GPUs through the same NVML backend and sampler as `sandman
// serve`, maps each device's CUDA processes to the pod holding it, and serves
// the result read-only: a snapshot for the control daemon and /metrics.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include <CLI/CLI.hpp>

#include "agent/proc_pods.h"
#include "api/agent_api.h"
#include "api/token_auth.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/duration.h"
#include "common/log.h"
#include "gpu/nvml_backend.h"
#include "telemetry/metrics_exporter.h"
#include "telemetry/sampler.h"

namespace sandman {
namespace {

struct AgentConfig {
  std::string node;
  std::string nvml_library = "libnvidia-ml.so.1";
  std::string bind = "127.0.0.1";
  int port = 9410;
  std::string interval = "5s";
  std::string proc_root = "/proc";
  std::string token_file;
  std::string log_format = "text";
};

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

int agentFatal(const std::string& what, const std::string& why) {
  logError(what, {{"error", why}});
  std::fprintf(stderr, "sandman agent: %s: %s\n", what.c_str(), why.c_str());
  return 1;
}

}  // namespace

int runAgent(int argc, char** argv) {
  CLI::App app{"sandman agent: the node agent (a DaemonSet on GPU nodes): the node's GPU and MIG telemetry, "
               "which pod holds each device, served read-only for the control daemon and Prometheus",
               "agent"};
  AgentConfig c;
  // In a pod, the downward API hands these in: NODE_NAME (spec.nodeName), POD_IP (status.podIP).
  c.node = envOr("NODE_NAME", "");
  c.bind = envOr("POD_IP", c.bind);
  app.add_option("--node", c.node, "This node's name (spec.nodeName; default $NODE_NAME)");
  app.add_option("--nvml-library", c.nvml_library, "NVML library to dlopen (a path, or a name the loader finds)")
      ->envname("SANDMAN_NVML_LIBRARY");
  app.add_option("--bind", c.bind, "Address to serve on: the pod IP (default $POD_IP, else 127.0.0.1)");
  app.add_option("--port", c.port, "Port to serve on (the pod's sandman.io/agent-port annotation says it)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--interval", c.interval, "Sampling interval (e.g. 5s; match the daemon's --telemetry-interval)")
      ->envname("SANDMAN_AGENT_INTERVAL");
  app.add_option("--proc-root", c.proc_root,
                 "Where the node's /proc is (the host's, with hostPID or a read-only mount; tests: a fake tree)")
      ->envname("SANDMAN_PROC_ROOT");
  app.add_option("--token-file", c.token_file,
                 "Optional shared token: every endpoint but /healthz then asks for it (Bearer)")
      ->envname("SANDMAN_AGENT_TOKEN_FILE");
  app.add_option("--log-format", c.log_format, "Log format: text or json")->check(CLI::IsMember({"text", "json"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (c.node.empty()) {
    std::fprintf(stderr, "sandman agent: --node (or $NODE_NAME) is required\n");
    return 2;
  }
  auto interval = parseDuration(c.interval);
  if (!interval.ok() || interval.value() < Millis(100)) {
    std::fprintf(stderr, "sandman agent: --interval '%s': a duration of at least 100ms, e.g. 5s\n", c.interval.c_str());
    return 2;
  }
  initLogging(c.log_format == "json" ? LogFormat::kJson : LogFormat::kText);
  std::string token;
  if (!c.token_file.empty()) {
    auto t = readToken(c.token_file);
    if (!t.ok()) return agentFatal("cannot read --token-file", t.error().message);
    token = t.value();
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Without a driver there is nothing to report: the pod fails, its restarts
  // show on the node, and the daemon reports the node's agent missing.
  auto nvml = NvmlBackend::load(c.nvml_library);
  GpuBackendPtr backend;
  if (nvml.ok()) {
    logInfo("GPU backend ready", {{"backend", nvml.value()->description()}, {"node", c.node}});
    backend = std::move(nvml).value();
  } else {
    return agentFatal("cannot load NVML (--nvml-library " + c.nvml_library + ")", nvml.error().message);
  }

  SystemClock clock;
  SamplerOptions sampler_options;
  sampler_options.interval = interval.value();
  sampler_options.mig_dynamic = false;  // the device plugin's layout: unheld instances are the pool
  TelemetrySampler sampler(sampler_options, backend.get(), clock);
  const ProcPods pods(c.proc_root);
  sampler.setAnnotator([&pods, node = c.node](TelemetrySnapshot& snap) { pods.annotate(snap, node); });

  MetricsSources sources;
  sources.snapshot = [&sampler] { return sampler.latest(); };
  MetricsOptions metrics_options;
  metrics_options.hostname = c.node;
  metrics_options.gpu_only = true;
  MetricsExporter metrics(metrics_options, std::move(sources));
  AgentApiOptions api_options;
  api_options.node = c.node;
  api_options.token = token;
  api_options.limits.max_connections = 64;
  api_options.limits.blocking_threads = 1;
  AgentApi api(api_options, [&sampler] { return sampler.latest(); }, metrics);
  if (auto st = api.bind(c.bind, c.port); !st.ok()) return agentFatal("cannot serve", st.error().message);
  sampler.start();
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    logInfo("agent shutting down", {{"signal", std::to_string(sig)}});
    api.stop();
  });
  logInfo("sandman agent serving", {{"node", c.node}, {"address", c.bind + ":" + std::to_string(api.port())},
                                    {"interval", c.interval}, {"proc_root", c.proc_root},
                                    {"token", token.empty() ? "none" : "required"}});
  api.serve();
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  sampler.stop();
  return 0;
}

}  // namespace sandman
