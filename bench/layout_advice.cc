// layout_advice: the layout advice's gain on a shipped demand trace against
// the host's current MIG layout (cost/layout_advice.h, the code behind
// GET /api/v1/advice/layout), and how long the advice took.
//
//   layout_advice_bench [TRACE] [CATALOG]          # defaults: data/traces/a100x4-static-30d.json, data/gpu-catalog.json
//   layout_advice_bench --write-trace FILE         # regenerate the trace (seeded; the same file every time)
//
// The trace is what a static-MIG host with four A100-SXM4-80GB laid out as
// 2g.20gb x3 + 1g.10gb would have recorded in 30 days: every create request,
// its outcome on that layout (found by replaying it through the allocator,
// as the daemon would have answered) and, for accepted ones, how long the
// session held its slice. Refused requests carry no duration, as in the store.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cost/layout_advice.h"
#include "gpu/cost_rates.h"

namespace sandman {
namespace {

using nlohmann::json;

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kStart = 1'796'083'200'000;  // 2026-12-01T00:00:00Z
constexpr int kDays = 30;

struct Rng {  // splitmix64: the same stream everywhere
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

GpuInfo a100(int index) {
  const std::vector<int> one{0, 1, 2, 3, 4, 5, 6};
  GpuInfo g;
  g.index = index;
  g.uuid = "GPU-a100-" + std::to_string(index);
  g.name = "NVIDIA A100-SXM4-80GB";
  g.memory_total_mib = 81920;
  g.mig_enabled = true;
  g.memory_slice_count = 8;
  g.profiles = {{19, "1g.10gb", 1, 1, 9728, 7, one},      {14, "2g.20gb", 2, 2, 19968, 3, {0, 2, 4}},
                {9, "3g.40gb", 3, 4, 40192, 2, {0, 4}},     {5, "4g.40gb", 4, 4, 40192, 1, {0}},
                {0, "7g.80gb", 7, 8, 80896, 1, {0}},        {20, "1g.10gb+me", 1, 1, 9728, 1, one},
                {15, "1g.20gb", 1, 2, 19968, 4, {0, 2, 4, 6}}};
  return g;
}

void addInstance(GpuInfo& g, const std::string& profile, int start) {
  for (const MigProfile& p : g.profiles) {
    if (p.name != profile) continue;
    MigInstance inst;
    inst.uuid = "MIG-" + g.uuid + "-" + std::to_string(start);
    inst.gpu_instance_id = start + 1;
    inst.profile_id = p.profile_id;
    inst.profile_name = p.name;
    inst.placement_start = start;
    inst.placement_size = p.memory_slices;
    g.instances.push_back(inst);
  }
}

// The host as it is laid out today: 2g.20gb at 0, 2, 4 and 1g.10gb at 6 on each GPU.
std::vector<GpuInfo> currentHost() {
  std::vector<GpuInfo> gpus;
  for (int i = 0; i < 4; ++i) {
    GpuInfo g = a100(i);
    addInstance(g, "2g.20gb", 0);
    addInstance(g, "2g.20gb", 2);
    addInstance(g, "2g.20gb", 4);
    addInstance(g, "1g.10gb", 6);
    gpus.push_back(g);
  }
  return gpus;
}

double pricerFor(const CostRates& rates, const std::string& model, const std::string& profile, int compute) {
  return rates.slotPerHour(model, profile, compute);
}

// What people asked for: notebooks on small slices, inference by memory,
// fine-tuning on 3g/by memory, the odd whole-GPU run; busier on weekday afternoons.
int writeTrace(const std::string& path, const CostRates& rates) {
  Rng rng{20261201};
  struct Ask {
    const char* profile;
    double gb;
    const char* workload;
    double weight;
    double min_h, max_h;
  };
  const Ask kinds[] = {{"1g.10gb", 0, "", 30, 0.5, 4},  {"", 16, "inference", 15, 1, 6},  {"2g.20gb", 0, "", 10, 1, 6},
                       {"3g.40gb", 0, "", 20, 3, 12},   {"", 35, "training", 15, 4, 16},   {"7g.80gb", 0, "", 5, 6, 24},
                       {"", 60, "training", 5, 6, 20}};
  double total_weight = 0;
  for (const Ask& k : kinds) total_weight += k.weight;
  std::vector<ReplayRequest> raw;
  for (int64_t t = kStart; t < kStart + kDays * kDay; t += kHour) {
    const int hour = static_cast<int>((t / kHour) % 24);
    const int weekday = static_cast<int>((t / kDay + 4) % 7);  // 0 = Sunday (1970-01-01 was a Thursday)
    double rate = (hour >= 8 && hour < 19) ? 2.2 : 0.4;
    if (weekday == 0 || weekday == 6) rate *= 0.3;
    // Bernoulli splits of the hour approximate Poisson arrivals.
    for (int k = 0; k < 12; ++k) {
      if (rng.unit() >= rate / 12) continue;
      double x = rng.unit() * total_weight;
      const Ask* a = &kinds[0];
      for (const Ask& cand : kinds) {
        if ((x -= cand.weight) < 0) {
          a = &cand;
          break;
        }
      }
      ReplayRequest q;
      q.at_ms = t + k * 5 * 60'000 + static_cast<int64_t>(rng.unit() * 5 * 60'000);
      q.mig_profile = a->profile;
      if (a->gb > 0) q.gpu_memory_gb = a->gb;
      q.workload = a->workload;
      q.duration_ms = static_cast<int64_t>((a->min_h + rng.unit() * (a->max_h - a->min_h)) * kHour);
      raw.push_back(q);
    }
  }
  // Outcomes as the daemon would have recorded them on the current layout.
  const std::vector<GpuInfo> host = currentHost();
  AdviceOptions opts;
  opts.pricer = [&rates](const std::string& m, const std::string& p, int c) { return pricerFor(rates, m, p, c); };
  json records = json::array();
  struct Live {
    int64_t end;
    HeldSlot slot;
  };
  std::vector<Live> live;
  for (const ReplayRequest& q : raw) {
    std::vector<Live> still;
    for (const Live& l : live)
      if (l.end > q.at_ms) still.push_back(l);
    live = still;
    std::vector<HeldSlot> held;
    for (const Live& l : live) held.push_back(l.slot);
    Result<Allocation> a = internal("unset");
    if (q.gpu_memory_gb) {
      auto c = allocateByNeed(host, held, {*q.gpu_memory_gb, *parseWorkload(q.workload)}, MigMode::kStatic, opts.pricer);
      if (c.ok()) a = c->allocation;
    } else {
      SlotRequest req;
      req.mig_profile = q.mig_profile;
      a = allocate(host, held, req, MigMode::kStatic, "3g");
    }
    json r = {{"at_ms", q.at_ms}, {"mig_profile", q.mig_profile}, {"workload", q.workload}};
    r["gpu_memory_gb"] = q.gpu_memory_gb ? json(*q.gpu_memory_gb) : json(nullptr);
    if (a.ok()) {
      live.push_back({q.at_ms + q.duration_ms,
                      HeldSlot{a->gpu_uuid, a->device_uuid, a->placement_start, a->placement_size, a->whole, a->profile}});
      r["outcome"] = "accepted";
      r["granted_profile"] = a->profile;
      r["held_ms"] = q.duration_ms;
    } else {
      r["outcome"] = "refused_capacity";
    }
    records.push_back(r);
  }
  json host_json = json::array();
  for (const GpuInfo& g : host) {
    json layout = json::array();
    for (const MigInstance& i : g.instances) layout.push_back({{"profile", i.profile_name}, {"start", i.placement_start}});
    host_json.push_back({{"gpu_index", g.index}, {"model", "A100-SXM4-80GB"}, {"instances", layout}});
  }
  json trace = {{"_comment", "generated by: build/layout_advice_bench --write-trace " + path},
                {"window_start_ms", kStart},
                {"window_end_ms", kStart + kDays * kDay},
                {"host", host_json},
                {"records", records}};
  std::ofstream out(path);
  out << trace.dump(1) << "\n";
  std::printf("wrote %zu records to %s\n", records.size(), path.c_str());
  return out.good() ? 0 : 1;
}

int run(const std::string& trace_path, const CostRates& rates) {
  std::ifstream in(trace_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const json trace = json::parse(ss.str(), nullptr, false);
  if (trace.is_discarded()) {
    std::fprintf(stderr, "cannot read the trace %s\n", trace_path.c_str());
    return 1;
  }
  std::vector<GpuInfo> gpus;
  for (const auto& g : trace["host"]) {
    GpuInfo info = a100(g["gpu_index"].get<int>());
    for (const auto& i : g["instances"]) addInstance(info, i["profile"].get<std::string>(), i["start"].get<int>());
    gpus.push_back(info);
  }
  std::vector<DemandRecord> records;
  int64_t id = 0;
  for (const auto& r : trace["records"]) {
    DemandRecord d;
    d.id = ++id;
    d.at_ms = r["at_ms"].get<int64_t>();
    d.mig_profile = r["mig_profile"].get<std::string>();
    if (r["gpu_memory_gb"].is_number()) d.gpu_memory_gb = r["gpu_memory_gb"].get<double>();
    d.workload = r["workload"].get<std::string>();
    d.outcome = r["outcome"].get<std::string>();
    if (r.contains("held_ms")) {
      d.session_id = "s-" + std::to_string(id);
      d.session_created_ms = d.at_ms;
      d.session_ended_ms = d.at_ms + r["held_ms"].get<int64_t>();
    }
    records.push_back(d);
  }
  const int64_t end = trace["window_end_ms"].get<int64_t>();
  AdviceOptions opts;
  opts.pricer = [&rates](const std::string& m, const std::string& p, int c) { return pricerFor(rates, m, p, c); };
  const auto t0 = std::chrono::steady_clock::now();
  int64_t default_ms = 0;
  const auto requests = replayRequests(records, end, opts, &default_ms);
  auto advice = adviseLayout(gpus, requests, opts, end);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!advice.ok()) {
    std::fprintf(stderr, "advice failed: %s\n", advice.error().message.c_str());
    return 1;
  }
  int refused = 0;
  for (const DemandRecord& r : records) refused += r.outcome != "accepted";
  const LayoutAdvice& a = advice.value();
  std::printf("trace: %s, %zu requests (%d refused on the current layout), default duration %.2f h\n",
              trace_path.c_str(), records.size(), refused, static_cast<double>(default_ms) / kHour);
  for (size_t i = 0; i < a.current.gpus.size(); ++i) {
    std::string cur, pro;
    for (const auto& p : a.current.gpus[i].profiles) cur += p + " ";
    for (const auto& p : a.proposed.gpus[i].profiles) pro += p + " ";
    std::printf("GPU %d: current [%s] -> proposed [%s]\n", a.current.gpus[i].gpu_index, cur.c_str(), pro.c_str());
  }
  std::printf("current layout:  %.1f slice-hours served, %d of %d requests\n", a.current.score.served_slice_hours,
              a.current.score.served, a.current.score.requests);
  std::printf("proposed layout: %.1f slice-hours served, %d of %d requests\n", a.proposed.score.served_slice_hours,
              a.proposed.score.served, a.proposed.score.requests);
  std::printf("gain: %+.1f slice-hours (%+.1f%%), %+d requests served; %d candidates replayed in %.2f s\n",
              a.gain_slice_hours, a.gain_percent.value_or(0), a.proposed.score.served - a.current.score.served,
              a.candidates_evaluated, secs);
  return 0;
}

}  // namespace
}  // namespace sandman

int main(int argc, char** argv) {
  using namespace sandman;
  std::string trace = "data/traces/a100x4-static-30d.json", catalog_path = "data/gpu-catalog.json";
  bool write = false;
  int pos = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--write-trace" && i + 1 < argc) {
      write = true;
      trace = argv[++i];
    } else if (pos == 0) {
      trace = a;
      ++pos;
    } else {
      catalog_path = a;
    }
  }
  auto catalog = GpuCatalog::load(catalog_path);
  if (!catalog.ok()) {
    std::fprintf(stderr, "cannot load the catalog: %s\n", catalog.error().message.c_str());
    return 1;
  }
  auto rates = CostRates::parse("", std::make_shared<const GpuCatalog>(std::move(catalog).value()));
  if (!rates.ok()) {
    std::fprintf(stderr, "cannot price: %s\n", rates.error().message.c_str());
    return 1;
  }
  return write ? writeTrace(trace, rates.value()) : run(trace, rates.value());
}
