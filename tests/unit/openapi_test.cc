// The OpenAPI document is generated from the route table: a route without a
// doc is listed (marked) and named by undocumentedRoutes(), a doc without a
// route is named by staleDocs(), bare seed aliases stay out of the paths. And
// the server wired with every route module a Docker daemon serves has no such
// gap: the test lists each undocumented route by name when one appears.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "alerts/alert_engine.h"
#include "alerts/alert_store.h"
#include "api/advice_routes.h"
#include "api/alert_routes.h"
#include "api/cost_routes.h"
#include "api/dashboard_routes.h"
#include "api/demand_routes.h"
#include "api/event_hub.h"
#include "api/event_routes.h"
#include "api/gpu_device_routes.h"
#include "api/gpu_node_routes.h"
#include "api/http_server.h"
#include "api/local_node_routes.h"
#include "api/metrics_routes.h"
#include "api/openapi.h"
#include "api/telemetry_routes.h"
#include "api/workspace_routes.h"
#include "cli/web_mount.h"
#include "cost/budgets.h"
#include "cost/cost_ledger.h"
#include "cost/cost_store.h"
#include "cost/demand_store.h"
#include "core/user_keys.h"
#include "core/mig_layouts.h"
#include "core/validation.h"
#include "runtime/kube_client.h"
#include "runtime/node_cache.h"
#include "runtime/pod_cache.h"
#include "store/mig_layout_store.h"
#include "store/node_meta_store.h"
#include "support/session_harness.h"
#include "telemetry/disk_readings.h"
#include "telemetry/metrics_exporter.h"
#include "telemetry/sampler.h"
#include "workspace/workspace_usage.h"

namespace sandman {
namespace {

using nlohmann::json;

void noop(const ApiRequest&, ApiResponse&) {}

TEST(OpenApi, UndocumentedRoutesAreListedAndMarked) {
  Router r;
  for (const char* p : kApiPrefixes) {
    r.get(std::string(p) + "/things", noop);
    r.get(std::string(p) + "/things/{id}", noop);
  }
  r.get("/healthz", noop);
  r.document(std::string_view(R"json({"routes": {"GET /things": {"operationId": "listThings", "summary": "Things", "tag": "Health"},
                                "GET /gone": {"operationId": "gone", "summary": "No route", "tag": "Health"}}})json"));
  EXPECT_EQ(undocumentedRoutes(r), (std::vector<std::string>{"GET /api/v1/things/{id}", "GET /things/{id}", "GET /healthz"}));
  EXPECT_EQ(r.staleDocs(), std::vector<std::string>{"GET /gone"});

  const json doc = buildOpenApi(r, "1.2.3");
  EXPECT_EQ(doc["openapi"], "3.1.0");
  EXPECT_EQ(doc["info"]["version"], "1.2.3");
  EXPECT_FALSE(doc["paths"].contains("/things")) << "bare seed aliases are not published";
  EXPECT_EQ(doc["paths"]["/api/v1/things"]["get"]["operationId"], "listThings");
  const json& marked = doc["paths"]["/api/v1/things/{id}"]["get"];
  EXPECT_EQ(marked["x-sandman-undocumented"], true) << "listed, not hidden";
  EXPECT_EQ(marked["parameters"][0]["name"], "id");
  EXPECT_TRUE(doc["paths"]["/healthz"]["get"].contains("x-sandman-undocumented"));
}

TEST(OpenApi, ShorthandsExpandToOperations) {
  Router r;
  r.post("/api/v1/things/{id}", noop);
  r.document(std::string_view(R"json({"routes": {"POST /things/{id}": {"operationId": "makeThing", "summary": "Make", "tag": "Health",
    "body": {"type": "object", "additionalProperties": false}, "errors": [400, 409],
    "responses": {"201": {"description": "Made", "json": {"type": "object"}}}}}})json"));
  const json op = buildOpenApi(r, "0")["paths"]["/api/v1/things/{id}"]["post"];
  EXPECT_EQ(op["tags"], json::array({"Health"}));
  EXPECT_EQ(op["x-sandman-role"], "admin") << "writes are the admin's";
  EXPECT_EQ(op["parameters"][0], json::parse(R"({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}})"));
  EXPECT_EQ(op["requestBody"]["content"]["application/json"]["schema"]["additionalProperties"], false);
  EXPECT_EQ(op["responses"]["201"]["content"]["application/json"]["schema"], json::parse(R"({"type": "object"})"));
  for (const char* code : {"400", "401", "403", "409", "415", "default"}) {
    ASSERT_TRUE(op["responses"].contains(code)) << code;
    EXPECT_EQ(op["responses"][code]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error");
  }
}

TEST(OpenApi, AnExactVersionedDocBeatsItsBareTwin) {
  Router r;
  r.get("/metrics", noop);
  r.get("/api/v1/metrics", noop);
  r.document(std::string_view(R"json({"routes": {"GET /metrics": {"operationId": "a", "summary": "A", "tag": "Telemetry"},
                                "GET /api/v1/metrics": {"operationId": "b", "summary": "B", "tag": "Telemetry"}}})json"));
  const json doc = buildOpenApi(r, "0");
  EXPECT_EQ(doc["paths"]["/metrics"]["get"]["operationId"], "a");
  EXPECT_EQ(doc["paths"]["/api/v1/metrics"]["get"]["operationId"], "b");
  EXPECT_TRUE(undocumentedRoutes(r).empty());
}

// Every "$ref" in the document names something in it.
void checkRefs(const json& doc, const json& node, const std::string& where, std::vector<std::string>* bad) {
  if (node.is_object()) {
    if (auto it = node.find("$ref"); it != node.end() && it->is_string()) {
      const std::string ref = it->get<std::string>();
      if (ref.rfind("#/", 0) != 0 || !doc.contains(json::json_pointer(ref.substr(1)))) bad->push_back(where + " " + ref);
    }
    for (const auto& [k, v] : node.items()) checkRefs(doc, v, where + "/" + k, bad);
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) checkRefs(doc, node[i], where + "/" + std::to_string(i), bad);
  }
}

// The server with every module a Docker daemon adds (as serve does), over
// real stores in a temp dir; the Kubernetes backend's node module has its own
// test below.
class OpenApiServerTest : public testing::SessionHarness {
 protected:
  void SetUp() override {
    SessionHarness::SetUp();
    const std::string db = dir_ + "/sandman.db";
    keys_ = std::make_unique<UserKeys>(*store_, clock_);
    api_ = std::make_unique<ApiServer>(ApiOptions{}, *sessions_, *keys_, runtime_, *store_);
    alert_store_ = AlertStore::open(db).value();
    alerts_ = std::make_unique<AlertEngine>(std::vector<AlertRule>{}, *alert_store_, clock_, nullptr);
    cost_ = CostStore::open(db).value();
    ledger_ = std::make_unique<CostLedger>(CostLedgerOptions{5}, *cost_, CostRates::parse("A100=2.80").value(), clock_);
    budgets_ = std::make_unique<BudgetMonitor>(*ledger_, false);
    demand_ = DemandStore::open(db).value();
    node_meta_ = NodeMetaStore::open(db).value();
    sampler_ = std::make_unique<TelemetrySampler>(SamplerOptions{}, nullptr, clock_);
    usage_ = std::make_unique<WorkspaceUsageMonitor>(WorkspaceUsageOptions{dir_}, clock_);
    disk_ = std::make_unique<DiskReader>(dir_, *usage_);
    exporter_ = std::make_unique<MetricsExporter>(MetricsOptions{}, MetricsSources{});
    web_ = std::make_unique<WebMount>(dir_ + "/no-web");

    modules_.push_back(std::make_unique<MetricsRoutes>(*exporter_, true));
    modules_.push_back(std::make_unique<TelemetryRoutes>(*sampler_, nullptr, clock_));
    modules_.push_back(std::make_unique<AlertRoutes>(*alerts_));
    modules_.push_back(std::make_unique<WorkspaceRoutes>(*usage_, *disk_, DiskPolicyView{}));
    modules_.push_back(std::make_unique<CostRoutes>(*ledger_, *budgets_));
    modules_.push_back(std::make_unique<AdviceRoutes>(*ledger_));
    modules_.push_back(std::make_unique<DemandRoutes>(*demand_, DemandRoutesOptions{}, clock_));
    modules_.push_back(std::make_unique<EventRoutes>(hub_, SessionView{}));
    modules_.push_back(std::make_unique<LocalNodeRoutes>("host-1", *node_meta_, *store_, *sampler_, clock_));
    modules_.push_back(
        std::make_unique<GpuDeviceRoutes>(*sampler_, *store_, nullptr, "host-1", node_meta_.get(), clock_, false));
    modules_.push_back(std::make_unique<DashboardRoutes>(DashboardSources{}, clock_));
    api_->addRoutes(*web_);
    for (auto& m : modules_) api_->addRoutes(*m);
  }

  std::unique_ptr<UserKeys> keys_;
  std::unique_ptr<ApiServer> api_;
  std::unique_ptr<AlertStore> alert_store_;
  std::unique_ptr<AlertEngine> alerts_;
  std::unique_ptr<CostStore> cost_;
  std::unique_ptr<CostLedger> ledger_;
  std::unique_ptr<BudgetMonitor> budgets_;
  std::unique_ptr<DemandStore> demand_;
  std::unique_ptr<NodeMetaStore> node_meta_;
  std::unique_ptr<TelemetrySampler> sampler_;
  std::unique_ptr<WorkspaceUsageMonitor> usage_;
  std::unique_ptr<DiskReader> disk_;
  std::unique_ptr<MetricsExporter> exporter_;
  std::unique_ptr<WebMount> web_;
  EventHub hub_;
  std::vector<std::unique_ptr<RouteModule>> modules_;
};

TEST_F(OpenApiServerTest, EveryRouteIsDocumented) {
  const Router& router = api_->router();
  std::string missing;
  for (const auto& r : undocumentedRoutes(router)) missing += "\n  " + r;
  EXPECT_TRUE(missing.empty()) << "routes without an OpenAPI doc (add one beside the route):" << missing;
  std::string stale;
  for (const auto& k : router.staleDocs()) stale += "\n  " + k;
  EXPECT_TRUE(stale.empty()) << "docs that name no route:" << stale;
}

TEST_F(OpenApiServerTest, TheDocumentKeepsItsContract) {
  const json doc = buildOpenApi(api_->router(), "0.1.0");
  const std::set<std::string> tags = {"Sessions", "Users",     "GPUs",   "Telemetry", "Alerts", "Cost",
                                      "Advice",   "Nodes",     "Dashboard", "Events", "Auth",   "Health"};
  const std::regex camel("[a-z][A-Za-z0-9]*");
  const std::regex capture("\\{([^}]+)\\}");
  std::set<std::string> ids;
  size_t operations = 0;
  for (const auto& [path, item] : doc["paths"].items()) {
    EXPECT_TRUE(path.rfind("/api/v1/", 0) == 0 || path == "/healthz" || path == "/readyz" || path == "/metrics" ||
                path == "/openapi.json")
        << path;
    for (const auto& [method, op] : item.items()) {
      ++operations;
      const std::string where = method + " " + path;
      const std::string id = op.value("operationId", "");
      EXPECT_TRUE(std::regex_match(id, camel)) << where << ": " << id;
      EXPECT_TRUE(ids.insert(id).second) << where << ": operationId " << id << " is used twice";
      ASSERT_EQ(op["tags"].size(), 1u) << where;
      EXPECT_TRUE(tags.count(op["tags"][0].get<std::string>())) << where << ": tag " << op["tags"][0];
      EXPECT_FALSE(op.value("summary", "").empty()) << where;
      EXPECT_TRUE(op["x-sandman-role"] == "viewer" || op["x-sandman-role"] == "admin") << where;
      std::set<std::string> declared;
      for (const auto& p : op.value("parameters", json::array())) {
        const json& param = p.contains("$ref") ? doc.at(json::json_pointer(p["$ref"].get<std::string>().substr(1))) : p;
        if (param["in"] == "path" && param.value("required", false)) declared.insert(param["name"].get<std::string>());
      }
      for (std::sregex_iterator it(path.begin(), path.end(), capture), end; it != end; ++it) {
        EXPECT_TRUE(declared.count((*it)[1].str())) << where << ": path parameter " << (*it)[1].str();
      }
      EXPECT_FALSE(op["responses"].empty()) << where;
    }
  }
  EXPECT_GE(operations, 70u);
  EXPECT_TRUE(doc["paths"].contains("/openapi.json"));
  EXPECT_TRUE(doc["paths"].contains("/api/v1/openapi.json"));
  EXPECT_FALSE(doc["paths"].contains("/sessions")) << "bare aliases stay out";
  EXPECT_FALSE(doc["paths"].contains("/")) << "the dashboard's files stay out";
  std::vector<std::string> bad;
  checkRefs(doc, doc, "#", &bad);
  EXPECT_TRUE(bad.empty()) << "unresolved $ref: " << json(bad).dump();
  EXPECT_EQ(doc["components"]["securitySchemes"]["cookie"]["name"], "sandman_session");
}

// The Kubernetes backend's node module (with MIG layouts) in place of the
// local one: its routes are documented too. Nothing here talks to a cluster
// (no cache or controller is started).
TEST_F(OpenApiServerTest, TheKubernetesNodeRoutesAreDocumented) {
  KubeConfig config;
  config.server = "https://127.0.0.1:1";
  KubeClient client(config);
  NodeCache nodes(client);
  PodCache pods(client, "sandman", "app=sandman-session");
  auto layout_store = MigLayoutStore::open(dir_ + "/sandman.db");
  ASSERT_TRUE(layout_store.ok()) << layout_store.error().message;
  MigLayouts layouts(client, nodes, pods, *layout_store.value(), clock_);
  GpuNodeRoutes routes(nodes, pods, &layouts, &client, node_meta_.get(), &clock_);
  ApiServer api(ApiOptions{}, *sessions_, *keys_, runtime_, *store_);
  api.addRoutes(routes);
  std::string missing;
  for (const auto& r : undocumentedRoutes(api.router())) missing += "\n  " + r;
  EXPECT_TRUE(missing.empty()) << "routes without an OpenAPI doc:" << missing;
  EXPECT_TRUE(api.router().staleDocs().empty()) << json(api.router().staleDocs()).dump();
  EXPECT_TRUE(buildOpenApi(api.router(), "0")["paths"].contains("/api/v1/gpu-nodes/{name}/mig-layout/approve"));
}

// The document's copy of the reserved user names says no more than the code.
TEST(OpenApi, ReservedUserIdsAreRefused) {
  const json& reserved = commonOpenApiSchemas()["ReservedUserId"]["enum"];
  ASSERT_GT(reserved.size(), 50u);
  for (const auto& name : reserved) EXPECT_FALSE(validateUserId(name.get<std::string>()).ok()) << name;
  EXPECT_TRUE(validateUserId("alice").ok());
}

TEST_F(OpenApiServerTest, ServedAtBothPathsAsAnyGet) {
  for (const char* path : {"/openapi.json", "/api/v1/openapi.json"}) {
    ApiRequest req;
    req.method = "GET";
    req.target = req.path = path;
    req.remote_addr = "127.0.0.1";
    ApiResponse res;
    api_->handle(req, res);
    EXPECT_EQ(res.status, 200) << path;
    EXPECT_EQ(json::parse(res.body)["openapi"], "3.1.0");
  }
}

}  // namespace
}  // namespace sandman
