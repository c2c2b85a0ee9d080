// kube_watch_bench: the PodCache side of bench/kube_watch/run (see there). Talks
// to the API server named by SANDMAN_TEST_KUBE_* (bench/kube_watch/run sets them with tests/k8s/lib.sh).
//   kube_watch_bench create NS COUNT   session-shaped pods sess-0..COUNT-1 in NS (made if missing)
//   kube_watch_bench cold NS           one cold start: list + watch until synced, then a probe
//                                      change through the watch; prints one JSON line
//   kube_watch_bench memory NS         RSS before the cache and once synced (malloc_trim'd), and
//                                      the views' byte count; prints one JSON line
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "runtime/kube_client.h"
#include "runtime/pod_cache.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using sandman::KubeClient;
using sandman::KubeConfig;
using sandman::PodCache;

constexpr const char* kSelector = "app.kubernetes.io/managed-by=sandman,sandman.io/instance=bench";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

KubeConfig config() {
  KubeConfig c;
  c.server = env("SANDMAN_TEST_KUBE_SERVER");
  c.ca_file = env("SANDMAN_TEST_KUBE_CA");
  c.client_cert_file = env("SANDMAN_TEST_KUBE_CERT");
  c.client_key_file = env("SANDMAN_TEST_KUBE_KEY");
  return c;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

long rssKb() {
  std::ifstream in("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  in >> pages_total >> pages_resident;
  return pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// Shaped like a Sandman session pod: its labels and annotations, a restricted
// spec. Only what the view keeps counts toward the cache's memory; the rest
// counts toward list and watch bytes.
json sessionPod(const std::string& name, int i) {
  std::string user = "user" + std::to_string(i % 97);
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", name},
        {"labels",
         {{"app.kubernetes.io/name", "sandman"},
          {"app.kubernetes.io/managed-by", "sandman"},
          {"sandman.io/instance", "bench"},
          {"component", "session"},
          {"sandman.io/user", user},
          {"sandman.io/session", name.substr(5)}}},
        {"annotations",
         {{"sandman.io/expires-at", "2030-01-01T00:00:00Z"}, {"sandman.io/gpu-resource", "nvidia.com/mig-1g.10gb"}}}}},
      {"spec",
       {{"automountServiceAccountToken", false},
        {"enableServiceLinks", false},
        {"restartPolicy", "Never"},
        {"activeDeadlineSeconds", 90000},
        {"securityContext",
         {{"runAsNonRoot", true}, {"runAsUser", 20999}, {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
        {"containers",
         json::array({{{"name", "sshd"},
                       {"image", "sandman-workspace:latest"},
                       {"ports", json::array({{{"containerPort", 2222}}})},
                       {"resources",
                        {{"requests", {{"nvidia.com/mig-1g.10gb", "1"}}}, {"limits", {{"nvidia.com/mig-1g.10gb", "1"}}}}},
                       {"securityContext",
                        {{"allowPrivilegeEscalation", false},
                         {"readOnlyRootFilesystem", true},
                         {"capabilities", {{"drop", json::array({"ALL"})}}}}}}})}}}};
}

int create(const std::string& ns, int count) {
  KubeClient client(config());
  auto r = client.create("/api/v1/namespaces", {{"metadata", {{"name", ns}}}});
  if (!r.ok() || (r->status != 201 && r->status != 409)) {
    std::fprintf(stderr, "namespace %s: %s\n", ns.c_str(), r.ok() ? r->message().c_str() : r.error().message.c_str());
    return 1;
  }
  (void)client.create("/api/v1/namespaces/" + ns + "/serviceaccounts", {{"metadata", {{"name", "default"}}}});
  std::atomic<int> next{0}, failed{0};
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        std::string name = "sess-" + std::to_string(i);
        auto c = client.create("/api/v1/namespaces/" + ns + "/pods", sessionPod(name, i));
        if (!c.ok() || (c->status != 201 && c->status != 409)) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  std::fprintf(stderr, "created %d pods in %s in %.0f ms (%d failed)\n", count, ns.c_str(), ms(Clock::now() - t0),
               failed.load());
  return failed == 0 ? 0 : 1;
}

int cold(const std::string& ns) {
  auto t0 = Clock::now();
  KubeClient client(config());
  PodCache cache(client, ns, kSelector);
  cache.start();
  if (!cache.waitSynced(std::chrono::seconds(120))) {
    std::fprintf(stderr, "not synced: %s\n", cache.stats().last_error.c_str());
    return 1;
  }
  auto synced = Clock::now();
  auto synced_epoch_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  // The watch is open once a change made now reaches the cache through it.
  auto pods = cache.list();
  if (pods.empty()) return 1;
  std::string probe = pods.front().name;
  std::string old_rv = pods.front().resource_version;
  auto p0 = Clock::now();
  auto r = client.patchMerge("/api/v1/namespaces/" + ns + "/pods/" + probe,
                             {{"metadata", {{"annotations", {{"bench", std::to_string(p0.time_since_epoch().count())}}}}}});
  if (!r.ok() || r->status != 200) return 1;
  auto p1 = Clock::now();
  uint64_t gen = cache.generation();
  while (true) {
    auto v = cache.get(probe);
    if (v && v->resource_version != old_rv) break;
    if (Clock::now() - p0 > std::chrono::seconds(30)) return 1;
    gen = cache.waitForChange(gen, std::chrono::milliseconds(100));
  }
  auto seen = Clock::now();
  auto s = cache.stats();
  json out{{"pods", s.pods},          {"pages", s.pages},
           {"synced_ms", ms(synced - t0)}, {"patch_ms", ms(p1 - p0)},
           {"probe_ms", ms(seen - p0)}, {"watches", s.watches},
           {"synced_epoch_us", synced_epoch_us}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int memory(const std::string& ns) {
  KubeClient client(config());
  // TLS and curl set-up are not the cache's: paid before the baseline.
  auto warm = client.get("/api/v1/namespaces/" + ns);
  if (!warm.ok()) return 1;
  malloc_trim(0);
  long before = rssKb();
  PodCache cache(client, ns, kSelector);
  cache.start();
  if (!cache.waitSynced(std::chrono::seconds(120))) return 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the watch connected, its buffers in place
  malloc_trim(0);
  long after = rssKb();
  auto s = cache.stats();
  json out{{"pods", s.pods}, {"rss_before_kb", before}, {"rss_after_kb", after}, {"rss_delta_kb", after - before},
           {"view_bytes", s.bytes}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sandman::initLogging(sandman::LogFormat::kText);
  if (env("SANDMAN_TEST_KUBE_SERVER").empty() || argc < 3) {
    std::fprintf(stderr, "usage: %s create NS COUNT | cold NS | memory NS  (with SANDMAN_TEST_KUBE_* set)\n", argv[0]);
    return 2;
  }
  std::string mode = argv[1], ns = argv[2];
  if (mode == "create" && argc == 4) return create(ns, std::atoi(argv[3]));
  if (mode == "cold") return cold(ns);
  if (mode == "memory") return memory(ns);
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
