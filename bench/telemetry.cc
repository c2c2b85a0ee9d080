// bench/telemetry: the telemetry sampler on a large simulated host (64 H100s
// x 7 MIG instances = 512 slices) at 1 Hz: CPU time per sample cycle as a
// share of one core (goal < 2 %), against the floor of an empty cycle (no
// GPUs) measured in the same run. The NVML simulator runs in-process, so its
// own cost (stat of the config, state-file reads) is inside the figure: an
// upper bound on what the real driver path costs us. Then the /metrics
// render of that snapshot against an empty registry, medians of 101.
//
//   telemetry [--seconds 60] [--interval-ms 1000] [--gpus 64] [--no-history]
//             [--nvml-library path/to/libsandman-nvml-sim.so]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "gpu/nvml_backend.h"
#include "store/metrics_history.h"
#include "store/sqlite_store.h"
#include "gpu/cost_rates.h"
#include "telemetry/metrics_exporter.h"
#include "telemetry/sampler.h"

using namespace sandman;

namespace {

struct Args {
  int seconds = 60;
  int interval_ms = 1000;
  int gpus = 64;
  bool history = true;
  std::string library;
};

Args parseArgs(int argc, char** argv) {
  Args a;
  std::error_code ec;
  a.library = (std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "libsandman-nvml-sim.so").string();
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--seconds") a.seconds = std::atoi(next().c_str());
    else if (k == "--interval-ms") a.interval_ms = std::atoi(next().c_str());
    else if (k == "--gpus") a.gpus = std::atoi(next().c_str());
    else if (k == "--no-history") a.history = false;
    else if (k == "--nvml-library") a.library = next();
    else {
      std::fprintf(stderr, "unknown argument %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

// n H100s, each split into seven 1g.10gb instances (memory slices 0-6), with
// one process and a steered utilisation per instance.
std::string hostConfig(int n) {
  nlohmann::json gpus = nlohmann::json::array();
  for (int g = 0; g < n; ++g) {
    char uuid[64];
    std::snprintf(uuid, sizeof uuid, "GPU-00000000-0000-4000-8000-%012d", g);
    nlohmann::json inst = nlohmann::json::array();
    for (int s = 0; s < 7; ++s) inst.push_back({{"profile", "1g.10gb"}, {"start", s}});
    gpus.push_back({{"model", "H100-SXM5-80GB"}, {"uuid", uuid}, {"mig_mode", true}, {"mig_instances", inst},
                    {"telemetry", {{"temperature", 40 + g % 20}}}});
  }
  return nlohmann::json{{"gpus", gpus}}.dump();
}

double processCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parseArgs(argc, argv);
  initLogging(LogFormat::kText);
  char tmpl[] = "/tmp/sandman-bench-telemetry-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  const std::string config = dir + "/host.json";
  std::ofstream(config) << hostConfig(args.gpus);
  setenv("SANDMAN_NVML_SIM_CONFIG", config.c_str(), 1);

  auto backend = NvmlBackend::load(args.library);
  if (!backend.ok()) {
    std::fprintf(stderr, "cannot load the simulator: %s\n", backend.error().message.c_str());
    return 1;
  }
  auto store = SqliteStore::open(dir + "/sandman.db");
  if (!store.ok()) {
    std::fprintf(stderr, "store: %s\n", store.error().message.c_str());
    return 1;
  }
  SystemClock clock;
  MetricsHistoryPtr history;
  if (args.history) {
    auto h = MetricsHistory::open(dir + "/sandman.db", {}, clock);
    if (!h.ok()) {
      std::fprintf(stderr, "history: %s\n", h.error().message.c_str());
      return 1;
    }
    history = std::move(h).value();
  }

  // Floor: the same cycle with no GPUs (attribution query, publish, no history).
  TelemetrySampler empty({Millis(args.interval_ms), true}, nullptr, *store.value(), clock, nullptr);
  for (int i = 0; i < 200; ++i) empty.sampleOnce();
  const double floor_cycle = empty.cpuSeconds() / static_cast<double>(empty.cycles());

  TelemetrySampler sampler({Millis(args.interval_ms), true}, backend.value().get(), *store.value(), clock,
                           history.get());
  const double cpu0 = processCpu();
  const auto t0 = std::chrono::steady_clock::now();
  sampler.start();
  std::this_thread::sleep_for(std::chrono::seconds(args.seconds));
  sampler.stop();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double process_cpu = processCpu() - cpu0;

  SnapshotPtr snap = sampler.latest();
  const uint64_t cycles = sampler.cycles();
  const double per_cycle = sampler.cpuSeconds() / static_cast<double>(cycles == 0 ? 1 : cycles);
  const double share = per_cycle / (args.interval_ms / 1000.0) * 100.0;
  std::printf("telemetry bench: %d GPUs x 7 MIG instances (%zu devices), interval %d ms, %d s, history %s\n",
              args.gpus, snap ? snap->gpus.size() + snap->instances.size() : 0, args.interval_ms, args.seconds,
              args.history ? "on" : "off");
  std::printf("  cycles                    %llu\n", static_cast<unsigned long long>(cycles));
  std::printf("  CPU per cycle             %.3f ms (last cycle wall %.3f ms)\n", per_cycle * 1e3,
              snap ? snap->sample_seconds * 1e3 : 0.0);
  std::printf("  share of one core         %.3f %%  (goal < 2 %%)\n", share);
  std::printf("  empty-cycle floor         %.4f ms  -> ratio %.1fx\n", floor_cycle * 1e3,
              floor_cycle > 0 ? per_cycle / floor_cycle : 0.0);
  std::printf("  whole process CPU         %.3f %% of one core over %.1f s\n", process_cpu / wall * 100.0, wall);

  // /metrics at this size against an empty registry, in the same run.
  if (snap) {
    MetricsOptions options{"bench-host", CostRates::parse("").value()};
    MetricsInputs full;
    full.snapshot = snap;
    const MetricsInputs empty_inputs;
    auto medianRender = [&](const MetricsInputs& in, size_t* bytes) {
      std::vector<double> us;
      for (int i = 0; i < 101; ++i) {
        auto a = std::chrono::steady_clock::now();
        std::string text = renderMetrics(in, options);
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
        *bytes = text.size();
      }
      std::sort(us.begin(), us.end());
      return us[us.size() / 2];
    };
    size_t full_bytes = 0, empty_bytes = 0;
    const double empty_us = medianRender(empty_inputs, &empty_bytes);
    const double full_us = medianRender(full, &full_bytes);
    std::printf("  /metrics render (median of 101): empty registry %.1f us (%zu bytes), %zu devices %.1f us "
                "(%zu bytes) -> ratio %.0fx, %.2f us per device\n",
                empty_us, empty_bytes, snap->gpus.size() + snap->instances.size(), full_us, full_bytes,
                empty_us > 0 ? full_us / empty_us : 0.0,
                (full_us - empty_us) / static_cast<double>(snap->gpus.size() + snap->instances.size()));
  }

  history.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
