// kube_nodes_bench: the NodeCache side of bench/kube_nodes/run (see there).
// `cold`: a NodeCache from nothing until synced (every node listed, the watch
// about to open), then one node change seen through the watch, then the
// /gpu-nodes answer built from the cache. One JSON line on stdout.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "api/gpu_node_routes.h"
#include "common/log.h"
#include "runtime/kube_client.h"
#include "runtime/node_cache.h"
#include "runtime/node_inventory.h"

namespace {

using json = nlohmann::json;
using sandman::KubeClient;
using sandman::KubeConfig;
using sandman::NodeCache;
using Clock = std::chrono::steady_clock;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int cold() {
  auto t0 = Clock::now();
  KubeConfig c;
  c.server = env("SANDMAN_TEST_KUBE_SERVER");
  c.ca_file = env("SANDMAN_TEST_KUBE_CA");
  c.client_cert_file = env("SANDMAN_TEST_KUBE_CERT");
  c.client_key_file = env("SANDMAN_TEST_KUBE_KEY");
  KubeClient client(c);
  NodeCache cache(client);
  cache.start();
  if (!cache.waitSynced(std::chrono::seconds(120))) {
    std::fprintf(stderr, "not synced: %s\n", cache.stats().last_error.c_str());
    return 1;
  }
  auto synced = Clock::now();
  auto synced_epoch_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  auto nodes = cache.list();
  if (nodes.empty()) return 1;
  const std::string probe = nodes.front().name;
  const std::string old_rv = nodes.front().resource_version;
  auto p0 = Clock::now();
  auto r = client.patchMerge("/api/v1/nodes/" + probe,
                             {{"metadata", {{"annotations", {{"sandman.bench/probe", std::to_string(p0.time_since_epoch().count())}}}}}});
  if (!r.ok() || r->status != 200) return 1;
  uint64_t gen = cache.generation();
  while (true) {
    auto v = cache.get(probe);
    if (v && v->resource_version != old_rv) break;
    if (Clock::now() - p0 > std::chrono::seconds(30)) return 1;
    gen = cache.waitForChange(gen, std::chrono::milliseconds(100));
  }
  auto seen = Clock::now();
  // What GET /gpu-nodes does with the cache: views, usage, fits, JSON text.
  auto b0 = Clock::now();
  auto inventory = sandman::clusterNodes(cache.list(), {}, {});
  json list = json::array();
  int64_t gpus = 0, units = 0;
  for (const auto& n : inventory) {
    list.push_back(sandman::gpuNodeJson(n, false));
    gpus += n.node.gpu_count;
    for (const auto& [res, a] : n.node.allocatable) units += a;
  }
  json body = {{"nodes", list}, {"fits_now", sandman::fitsJson(sandman::fitsNow(inventory))}};
  std::string text = body.dump();
  auto b1 = Clock::now();
  auto s = cache.stats();
  json out{{"nodes", s.objects},        {"gpu_nodes", inventory.size()}, {"gpus", gpus},
           {"gpu_units", units},        {"pages", s.pages},              {"synced_ms", ms(synced - t0)},
           {"probe_ms", ms(seen - p0)}, {"gpu_nodes_ms", ms(b1 - b0)},   {"gpu_nodes_bytes", text.size()},
           {"view_bytes", s.bytes},     {"synced_epoch_us", synced_epoch_us}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sandman::initLogging(sandman::LogFormat::kText);
  if (env("SANDMAN_TEST_KUBE_SERVER").empty() || argc < 2 || std::string(argv[1]) != "cold") {
    std::fprintf(stderr, "usage: %s cold  (with SANDMAN_TEST_KUBE_* set)\n", argv[0]);
    return 2;
  }
  return cold();
}
