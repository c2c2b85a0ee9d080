// Issue 15's API surface without a daemon: node edit bodies and their strict
// refusals, filtering/sorting/paging of node lists, the Kubernetes node
// record as sandman.io/ annotations and the holds maintenance makes, MIG
// layout requests (the seeds' profile names, placements, what sessions hold),
// the documents' /gpu/overview and the dashboard's per-cluster and per-model
// figures, and the node record store.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "api/dashboard_routes.h"
#include "api/gpu_device_routes.h"
#include "api/gpu_node_routes.h"
#include "api/local_node_routes.h"
#include "api/node_listing.h"
#include "common/time_format.h"
#include "runtime/node_cache.h"
#include "store/node_meta_store.h"
#include "store/sqlite_store.h"

namespace sandman {
namespace {

using json = nlohmann::json;

ApiRequest get(std::vector<std::pair<std::string, std::string>> params) {
  ApiRequest r;
  r.method = "GET";
  r.path = "/api/v1/gpu-nodes";
  r.params = std::move(params);
  return r;
}

std::vector<json> someNodes() {
  std::vector<json> out;
  const char* status[] = {"active", "maintenance", "active", "drained", "active"};
  for (int i = 0; i < 5; ++i) {
    out.push_back({{"name", "gpu-" + std::to_string(i)},
                   {"cluster", i < 3 ? "lab-a" : "lab-b"},
                   {"status", status[i]},
                   {"description", i == 2 ? "Rack 12, the H100 box" : ""},
                   {"updated_at", i == 4 ? json("2026-12-01T10:00:00Z") : json(nullptr)},
                   {"gpu_count", 8 - i},
                   {"running_sessions", i}});
  }
  return out;
}

std::vector<std::string> names(const json& body) {
  std::vector<std::string> out;
  for (const auto& n : body["nodes"]) out.push_back(n["name"]);
  return out;
}

TEST(NodeMetaEdit, TakesKnownFieldsAndRefusesTheRest) {
  auto e = parseNodeMetaEdit(R"({"cluster":"lab-a","description":"rack 12","labels":{"rack":"r12"},"by":"ops"})", "gpu-a");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(*e->cluster, "lab-a");
  EXPECT_EQ(e->labels->at("rack"), "r12");
  EXPECT_EQ(e->by, "ops");
  for (const char* bad : {R"({"colour":"red"})", R"([1])", R"({"cluster":"has space"})", R"({"labels":{"k":1}})",
                          R"({"name":"other"})", R"({"status":"maintenance"})", R"({"description":"a\u0001b"})",
                          "not json"}) {
    auto r = parseNodeMetaEdit(bad, "gpu-a");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid) << bad;
  }
  EXPECT_TRUE(parseNodeMetaEdit(R"({"name":"gpu-a"})", "gpu-a").ok());
}

TEST(NodeStatusEdit, KnowsTheThreeStatuses) {
  for (const char* s : {"active", "maintenance", "drained"}) {
    auto e = parseNodeStatusEdit(json{{"status", s}, {"reason", "disk swap"}}.dump());
    ASSERT_TRUE(e.ok()) << s;
    EXPECT_EQ(e->status, s);
    EXPECT_EQ(e->reason, "disk swap");
  }
  auto r = parseNodeStatusEdit(R"({"status":"offline"})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("active, maintenance or drained"), std::string::npos);
  EXPECT_FALSE(parseNodeStatusEdit(R"({})").ok());
  EXPECT_FALSE(parseNodeStatusEdit(R"({"status":"active","force":true})").ok());
}

TEST(NodeListing, FiltersSortsAndPages) {
  CursorCodec codec("k");
  ApiResponse res;
  auto all = listNodes(get({}), codec, someNodes(), res);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ((*all)["total"], 5);
  EXPECT_TRUE(res.headers.empty());

  auto m = listNodes(get({{"status", "maintenance"}}), codec, someNodes(), res);
  EXPECT_EQ(names(m.value()), std::vector<std::string>{"gpu-1"});
  auto c = listNodes(get({{"cluster", "lab-b"}, {"sort", "-name"}}), codec, someNodes(), res);
  EXPECT_EQ(names(c.value()), (std::vector<std::string>{"gpu-4", "gpu-3"}));
  auto s = listNodes(get({{"search", "RACK 12"}}), codec, someNodes(), res);
  EXPECT_EQ(names(s.value()), std::vector<std::string>{"gpu-2"});
  auto g = listNodes(get({{"sort", "gpu_count"}}), codec, someNodes(), res);
  EXPECT_EQ(names(g.value()).front(), "gpu-4");
  auto changed = listNodes(get({{"changed_since", "2026-11-30T00:00:00Z"}}), codec, someNodes(), res);
  EXPECT_EQ(names(changed.value()), std::vector<std::string>{"gpu-4"});

  // Pages of two, following X-Next-Cursor, see every node once.
  std::vector<std::string> seen;
  std::vector<std::pair<std::string, std::string>> params = {{"limit", "2"}, {"sort", "-gpu_count"}};
  for (int page = 0; page < 5; ++page) {
    ApiResponse r;
    auto body = listNodes(get(params), codec, someNodes(), r);
    ASSERT_TRUE(body.ok()) << body.error().message;
    for (const auto& n : names(body.value())) seen.push_back(n);
    std::string next;
    for (const auto& [k, v] : r.headers) {
      if (k == "X-Next-Cursor") next = v;
    }
    if (next.empty()) break;
    params = {{"limit", "2"}, {"sort", "-gpu_count"}, {"cursor", next}};
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"gpu-0", "gpu-1", "gpu-2", "gpu-3", "gpu-4"}));

  for (auto bad : std::vector<std::pair<std::string, std::string>>{
           {"status", "broken"}, {"sort", "colour"}, {"limit", "0"}, {"changed_since", "yesterday"}, {"cursor", "x"}}) {
    auto r = listNodes(get({bad}), codec, someNodes(), res);
    ASSERT_FALSE(r.ok()) << bad.first;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  }
}

TEST(NodeRecord, RefusalNamesTheNodeAndItsStatus) {
  NodeMeta m = defaultNodeMeta("gpu-a", "local");
  m.status = "maintenance";
  m.status_reason = "PSU swap";
  m.updated_by = "ops";
  Error e = nodeRefusal(m);
  EXPECT_EQ(e.kind, ErrorKind::kConflict);
  EXPECT_NE(e.message.find("node gpu-a is in maintenance (PSU swap), set by ops"), std::string::npos) << e.message;
  EXPECT_TRUE(nodeStatusTakesSessions("active"));
  EXPECT_FALSE(nodeStatusTakesSessions("drained"));
}

TEST(NodeRecord, KubernetesAnnotationsRoundTripAndHoldTheNode) {
  NodeMeta m = defaultNodeMeta("gpu-a", "lab-a");
  m.description = "rack 12";
  m.labels = {{"rack", "r12"}};
  m.status = "maintenance";
  m.status_reason = "PSU swap";
  m.updated_by = "ops";
  m.updated_at = fromUnixMillis(1795000000000);
  json patch = nodeMetaPatch(m);
  json node = {{"metadata", {{"name", "gpu-a"}, {"annotations", patch["metadata"]["annotations"]}}}};
  node["metadata"]["annotations"]["other.io/x"] = "ignored";
  NodeView v = nodeViewFromJson(node);
  EXPECT_EQ(v.sandman_annotations.count("other.io/x"), 0u);
  bool stored = false;
  NodeMeta back = nodeMetaFromAnnotations(v, &stored);
  EXPECT_TRUE(stored);
  EXPECT_EQ(back.cluster, "lab-a");
  EXPECT_EQ(back.description, "rack 12");
  EXPECT_EQ(back.labels, m.labels);
  EXPECT_EQ(back.status, "maintenance");
  EXPECT_EQ(back.updated_by, "ops");
  NodeHolds holds = maintenanceHolds({v});
  ASSERT_EQ(holds.count("gpu-a"), 1u);
  EXPECT_NE(holds["gpu-a"].find("maintenance"), std::string::npos);

  // Active removes the status annotation; a hand-edited unknown status holds.
  m.status = "active";
  EXPECT_TRUE(nodeMetaPatch(m)["metadata"]["annotations"]["sandman.io/status"].is_null());
  v.sandman_annotations["sandman.io/status"] = "offline";
  EXPECT_EQ(nodeMetaFromAnnotations(v, &stored).status, "maintenance");
  NodeView plain;
  plain.name = "gpu-b";
  EXPECT_EQ(nodeMetaFromAnnotations(plain, &stored).status, "active");
  EXPECT_FALSE(stored);
  EXPECT_TRUE(maintenanceHolds({plain}).empty());
}

GpuInfo a100() {
  GpuInfo g;
  g.index = 0;
  g.uuid = "GPU-aaaa";
  g.name = "NVIDIA A100-SXM4-40GB";
  g.mig_enabled = true;
  g.memory_slice_count = 8;
  g.profiles = {{19, "1g.5gb", 1, 1, 4864, 7, {0, 1, 2, 3, 4, 5, 6}},
                {14, "2g.10gb", 2, 2, 9856, 3, {0, 2, 4}},
                {9, "3g.20gb", 3, 4, 19968, 2, {0, 4}},
                {0, "7g.40gb", 7, 8, 40192, 1, {0}}};
  return g;
}

TEST(MigRequest, AcceptsTheSeedsNamesAndStrictObjects) {
  EXPECT_EQ(normalizeMigProfile("H100_2G20GB"), "2g.20gb");
  EXPECT_EQ(normalizeMigProfile("A100_1G10GB_ME"), "1g.10gb+me");
  EXPECT_EQ(normalizeMigProfile("3g.40gb"), "3g.40gb");
  auto seed = parseMigRequest(R"(["A100_3G20GB", "2g.10gb"])");
  ASSERT_TRUE(seed.ok());
  EXPECT_EQ(seed->items[0].profile, "3g.20gb");
  auto obj = parseMigRequest(R"({"instances":[{"profile":"1g.5gb","placement_start":6}],"replace":true})");
  ASSERT_TRUE(obj.ok());
  EXPECT_EQ(obj->items[0].placement_start, 6);
  EXPECT_TRUE(obj->replace);
  for (const char* bad : {"[]", "{}", R"({"profiles":["1g.5gb"],"instances":[]})", R"({"profiles":"1g.5gb"})",
                          R"({"profiles":["1g.5gb"],"colour":1})", R"([{"profile":"1g.5gb","placement_start":-1}])",
                          R"([7])", "nope"}) {
    auto r = parseMigRequest(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid) << bad;
  }
}

TEST(MigPlan, PlacesChecksAndRefusesWhatSessionsHold) {
  GpuInfo g = a100();
  auto plan = planMigLayout(g, parseMigRequest(R"(["3g.20gb","2g.10gb","1g.5gb"])").value(), {});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  ASSERT_EQ(plan->create.size(), 3u);
  EXPECT_EQ(plan->create[0].placement_start, 0);
  EXPECT_EQ(plan->create[1].placement_start, 4);
  EXPECT_EQ(plan->create[2].placement_start, 6);

  auto unknown = planMigLayout(g, parseMigRequest(R"(["4g.20gb"])").value(), {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(unknown.error().message.find("it offers: 1g.5gb, 2g.10gb, 3g.20gb, 7g.40gb"), std::string::npos);
  auto badStart = planMigLayout(g, parseMigRequest(R"([{"profile":"2g.10gb","placement_start":1}])").value(), {});
  ASSERT_FALSE(badStart.ok());
  EXPECT_NE(badStart.error().message.find("valid starts: 0, 2, 4"), std::string::npos);
  auto full = planMigLayout(g, parseMigRequest(R"(["7g.40gb","1g.5gb"])").value(), {});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().kind, ErrorKind::kConflict);

  // An existing instance a session holds: placement over it and replace are 409.
  MigInstance held;
  held.uuid = "MIG-held";
  held.profile_name = "1g.5gb";
  held.placement_start = 0;
  held.placement_size = 1;
  g.instances = {held};
  std::vector<HeldSlot> slots = {{"GPU-aaaa", "MIG-held", 0, 1, false, "1g.5gb"}};
  auto over = planMigLayout(g, parseMigRequest(R"([{"profile":"3g.20gb","placement_start":0}])").value(), slots);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().kind, ErrorKind::kConflict);
  EXPECT_NE(over.error().message.find("held by a session (MIG-held)"), std::string::npos);
  auto replace = planMigLayout(g, parseMigRequest(R"({"profiles":["7g.40gb"],"replace":true})").value(), slots);
  ASSERT_FALSE(replace.ok());
  EXPECT_EQ(replace.error().kind, ErrorKind::kConflict);
  // Beside it is fine; unheld instances are replaced.
  auto beside = planMigLayout(g, parseMigRequest(R"(["3g.20gb"])").value(), slots);
  ASSERT_TRUE(beside.ok());
  EXPECT_EQ(beside->create[0].placement_start, 4);
  auto replaced = planMigLayout(g, parseMigRequest(R"({"profiles":["7g.40gb"],"replace":true})").value(), {});
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->destroy.size(), 1u);
}

TelemetrySnapshot snapshot() {
  TelemetrySnapshot s;
  DeviceReading g0;
  g0.uuid = g0.gpu_uuid = "GPU-0";
  g0.model_name = "NVIDIA A100-SXM4-40GB";
  g0.mig_enabled = true;
  g0.temperature_c = 60;
  DeviceReading g1;
  g1.uuid = g1.gpu_uuid = "GPU-1";
  g1.gpu_index = 1;
  g1.model_name = "NVIDIA H100 80GB HBM3";
  g1.utilization_pct = 80;
  g1.temperature_c = 70;
  g1.session_id = "s-1";
  DeviceReading m0;
  m0.uuid = "MIG-0";
  m0.gpu_uuid = "GPU-0";
  m0.is_mig = true;
  m0.utilization_pct = 40;
  m0.session_id = "s-2";
  DeviceReading m1 = m0;
  m1.uuid = "MIG-1";
  m1.utilization_pct.reset();
  m1.session_id.clear();
  s.gpus = {g0, g1};
  s.instances = {m0, m1};
  return s;
}

TEST(GpuOverview, UsesTheDocumentsFieldNames) {
  TelemetrySnapshot s = snapshot();
  json o = gpuOverviewJson(&s, 2);
  EXPECT_EQ(o["totalGpuDevices"], 2);
  EXPECT_EQ(o["activeAllocations"], 2);
  EXPECT_EQ(o["totalMigInstances"], 2);
  EXPECT_EQ(o["availableMigInstances"], 1);
  EXPECT_DOUBLE_EQ(o["overallGpuUtilization"].get<double>(), 60.0);
  EXPECT_EQ(o["devicesByModel"]["NVIDIA H100 80GB HBM3"], 1);
  json empty = gpuOverviewJson(nullptr, 0);
  EXPECT_TRUE(empty["overallGpuUtilization"].is_null());
}

TEST(DashboardStats, PerClusterAndPerModel) {
  json c = clusterStatsJson(someNodes());
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0]["cluster"], "lab-a");
  EXPECT_EQ(c[0]["nodes"], 3);
  EXPECT_EQ(c[0]["maintenance"], 1);
  EXPECT_EQ(c[0]["gpus"], 8 + 7 + 6);
  EXPECT_EQ(c[1]["drained"], 1);
  EXPECT_EQ(c[1]["running_sessions"], 3 + 4);
  TelemetrySnapshot s = snapshot();
  json m = modelStatsJson(&s);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0]["model"], "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(m[0]["mig_instances"], 2);
  EXPECT_EQ(m[0]["devices_in_use"], 1);
  EXPECT_DOUBLE_EQ(m[0]["avg_utilization_pct"].get<double>(), 40.0);
  EXPECT_EQ(m[1]["devices_in_use"], 1);
}

TEST(NodeMetaStore, KeepsTheRecordAndItsChanges) {
  const std::string dir = ::testing::TempDir() + "/node-meta-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  const std::string db = dir + "/state.db";
  auto store = SqliteStore::open(db);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto meta = NodeMetaStore::open(db);
  ASSERT_TRUE(meta.ok()) << meta.error().message;
  EXPECT_FALSE(meta.value()->get("host-a").value().has_value());
  NodeMeta m = defaultNodeMeta("host-a", "local");
  m.status = "maintenance";
  m.labels = {{"rack", "r1"}};
  m.created_at = m.updated_at = fromUnixMillis(1000);
  ASSERT_TRUE(meta.value()->put(m, {0, "host-a", fromUnixMillis(1000), "status", "active -> maintenance", "ops"}).ok());
  m.status = "bogus";
  EXPECT_FALSE(meta.value()->put(m, {}).ok());  // the CHECK constraint
  auto back = meta.value()->get("host-a").value();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->status, "maintenance");
  EXPECT_EQ(back->labels.at("rack"), "r1");
  auto events = meta.value()->events("", fromUnixMillis(0), 10).value();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].by, "ops");
  EXPECT_TRUE(meta.value()->events("", fromUnixMillis(2000), 10).value().empty());
  EXPECT_EQ(meta.value()->remove("nope", {}).error().kind, ErrorKind::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sandman
