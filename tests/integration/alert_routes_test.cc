// The alert API over real HTTP (Sandman's listener on loopback, cpp-httplib's client) with the engine on
// SQLite in a temp dir: listing by state, parameter validation, acks (200,
// idempotent, 404, 400) and the rule listing, under /api/v1 and bare.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <thread>

#include "api/alert_routes.h"
#include "store/sqlite_store.h"
#include "support/manual_clock.h"
#include "support/route_server.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class AlertRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-alert-routes-XXXXXX";
    dir_ = mkdtemp(tmpl);
    sessions_store_ = SqliteStore::open(dir_ + "/sandman.db").value();
    store_ = AlertStore::open(dir_ + "/sandman.db").value();
    AlertRule hot{"Hot", AlertMetric::kTemperature, CompareOp::kGt, 85, 1min, "critical", AlertScope::kGpu,
                  "GPU {{gpu}} at {{value}} C"};
    engine_ = std::make_unique<AlertEngine>(std::vector<AlertRule>{hot}, *store_, clock_, nullptr);
    ASSERT_TRUE(engine_->restore().ok());
    routes_ = std::make_unique<AlertRoutes>(*engine_);
    routes_->registerRoutes(server_.router());
    port_ = server_.start();
    ASSERT_NE(port_, 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
  }
  void TearDown() override {
    server_.stop();
    std::filesystem::remove_all(dir_);
  }

  void sample(int gpus_hot) {
    TelemetrySnapshot s;
    s.taken_at = clock_.now();
    for (int i = 0; i < 3; ++i) {
      DeviceReading d;
      d.uuid = d.gpu_uuid = "GPU-" + std::to_string(i);
      d.gpu_index = i;
      d.temperature_c = i < gpus_hot ? 90 : 40;
      s.gpus.push_back(d);
    }
    engine_->evaluate(s);
  }

  std::pair<int, json> get(const std::string& path) {
    auto r = client_->Get(path);
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  std::pair<int, json> post(const std::string& path, const std::string& body) {
    auto r = client_->Post(path, body, "application/json");
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  std::string dir_;
  testing::ManualClock clock_;
  std::unique_ptr<SqliteStore> sessions_store_;
  std::unique_ptr<AlertStore> store_;
  std::unique_ptr<AlertEngine> engine_;
  std::unique_ptr<AlertRoutes> routes_;
  testing::RouteServer server_;
  int port_ = 0;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(AlertRoutesTest, ListsActiveByDefaultAndFiltersByState) {
  sample(2);
  clock_.advance(1min);
  sample(2);  // both firing
  sample(1);  // GPU-1 resolves
  clock_.advance(5s);
  sample(3);  // GPU-1 and GPU-2 pending
  auto [code, body] = get("/api/v1/alerts");
  ASSERT_EQ(code, 200);
  EXPECT_EQ(body["state"], "active");
  EXPECT_EQ(body["count"], 3);
  auto [c2, firing] = get("/api/v1/alerts?state=firing");
  ASSERT_EQ(c2, 200);
  ASSERT_EQ(firing["count"], 1);
  EXPECT_EQ(firing["alerts"][0]["labels"]["gpu_uuid"], "GPU-0");
  EXPECT_EQ(firing["alerts"][0]["summary"], "GPU 0 at 90 C");
  EXPECT_TRUE(firing["alerts"][0]["resolved_at"].is_null());
  auto [c3, pending] = get("/alerts?state=pending");  // the seed's bare path
  ASSERT_EQ(c3, 200);
  EXPECT_EQ(pending["count"], 2);
  auto [c4, resolved] = get("/api/v1/alerts?state=resolved");
  ASSERT_EQ(c4, 200);
  ASSERT_EQ(resolved["count"], 1);
  EXPECT_EQ(resolved["alerts"][0]["state"], "resolved");
  EXPECT_FALSE(resolved["alerts"][0]["resolved_at"].is_null());
  auto [c5, all] = get("/api/v1/alerts?state=all&limit=2");
  ASSERT_EQ(c5, 200);
  EXPECT_EQ(all["count"], 2);
  EXPECT_GT(all["alerts"][0]["id"].get<int64_t>(), all["alerts"][1]["id"].get<int64_t>()) << "newest first";
}

TEST_F(AlertRoutesTest, BadParametersAre400WithAnErrorBody) {
  for (const char* q : {"?state=open", "?limit=0", "?limit=abc", "?limit=1001", "?limit=-1"}) {
    auto [code, body] = get(std::string("/api/v1/alerts") + q);
    EXPECT_EQ(code, 400) << q;
    EXPECT_EQ(body["code"], "invalid") << q;
    EXPECT_TRUE(body["error"].is_string()) << q;
  }
  auto [code, body] = get("/api/v1/alerts/abc");
  EXPECT_EQ(code, 400);
}

TEST_F(AlertRoutesTest, AckIsRecordedIdempotentAnd404ForUnknownIds) {
  sample(1);
  clock_.advance(1min);
  sample(1);
  auto [c0, list] = get("/api/v1/alerts");
  ASSERT_EQ(list["count"], 1);
  std::string id = std::to_string(list["alerts"][0]["id"].get<int64_t>());
  EXPECT_TRUE(list["alerts"][0]["acked_at"].is_null());

  auto [c1, acked] = post("/api/v1/alerts/" + id + "/ack", R"({"by":"alice"})");
  ASSERT_EQ(c1, 200);
  EXPECT_EQ(acked["acked_by"], "alice");
  EXPECT_FALSE(acked["acked_at"].is_null());
  auto [c2, again] = post("/api/v1/alerts/" + id + "/ack", "");
  ASSERT_EQ(c2, 200);
  EXPECT_EQ(again["acked_by"], "alice") << "a second ack keeps the first";
  auto [c3, one] = get("/api/v1/alerts/" + id);
  ASSERT_EQ(c3, 200);
  EXPECT_EQ(one["acked_by"], "alice");

  auto [c4, missing] = post("/api/v1/alerts/999999/ack", "");
  EXPECT_EQ(c4, 404);
  EXPECT_EQ(missing["code"], "not_found");
  EXPECT_EQ(post("/api/v1/alerts/x1/ack", "").first, 400);
  EXPECT_EQ(post("/api/v1/alerts/" + id + "/ack", R"({"who":"a"})").first, 400);
  EXPECT_EQ(post("/api/v1/alerts/" + id + "/ack", "not json").first, 400);
  EXPECT_EQ(post("/api/v1/alerts/" + id + "/ack", R"({"by":""})").first, 400);
}

TEST_F(AlertRoutesTest, RulesAreListedInTheFileFormat) {
  auto [code, body] = get("/api/v1/alerts/rules");
  ASSERT_EQ(code, 200);
  ASSERT_EQ(body["rules"].size(), 1u);
  EXPECT_EQ(body["rules"][0]["name"], "Hot");
  EXPECT_EQ(body["rules"][0]["for"], "1m");
}

}  // namespace
}  // namespace sandman
