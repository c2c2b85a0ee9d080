// The cost ledger: the catalog, slice shares, cutting holdings at price
// changes and UTC days, and the ledger over a real SQLite file under a
// manual clock (exact cents across a price change and a month boundary).
#include "cost/cost_ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "common/time_format.h"
#include "cost/budgets.h"
#include "cost/cost_store.h"
#include "store/sqlite_store.h"
#include "support/cost_fixtures.h"
#include "support/manual_clock.h"

namespace sandman {
namespace {

namespace fs = std::filesystem;

using testing::at;
using testing::shippedCatalog;

TEST(GpuCatalog, ShipsTheDocumentsModelsAndTheMigVariants) {
  auto c = shippedCatalog();
  ASSERT_NE(c, nullptr);
  for (const char* key : {"GTX-1080", "GTX-1080-Ti", "TITAN-Xp", "RTX-2080", "RTX-2080-Ti", "RTX-3080", "RTX-3090",
                          "RTX-4080", "RTX-4090", "V100-16GB", "V100-32GB", "A100-PCIE-40GB", "A100-SXM4-80GB",
                          "H100-PCIE-80GB", "A30-24GB", "H100-SXM5-80GB", "H100-NVL-94GB", "H200-SXM-141GB"}) {
    EXPECT_NE(c->byKey(key), nullptr) << key;
  }
  EXPECT_FALSE(c->byKey("RTX-4090")->mig);
  EXPECT_EQ(c->byKey("A30-24GB")->compute_slices, 4);
  EXPECT_EQ(c->byKey("A30-24GB")->memory_slices, 4);
  const CatalogProfile* p = c->byKey("H100-SXM5-80GB")->profile("3g.40gb");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->compute_slices, 3);
  EXPECT_EQ(p->memory_slices, 4) << "a 3g instance takes 4 of the 8 memory slices";
}

TEST(GpuCatalog, MatchesNvmlNamesOnWordBoundariesLongestFirst) {
  auto c = shippedCatalog();
  ASSERT_NE(c, nullptr);
  auto key = [&](const std::string& name) {
    const CatalogModel* m = c->find(name);
    return m != nullptr ? m->key : std::string("-");
  };
  EXPECT_EQ(key("NVIDIA A100-SXM4-40GB"), "A100-SXM4-40GB");
  EXPECT_EQ(key("NVIDIA A100 80GB PCIe"), "A100-PCIE-80GB");
  EXPECT_EQ(key("NVIDIA A100-SXM4-80GB"), "A100-SXM4-80GB");
  EXPECT_EQ(key("NVIDIA A10"), "A10-24GB") << "A10 is not an A100";
  EXPECT_EQ(key("NVIDIA A30"), "A30-24GB");
  EXPECT_EQ(key("NVIDIA H100 80GB HBM3"), "H100-SXM5-80GB");
  EXPECT_EQ(key("NVIDIA H100 PCIe"), "H100-PCIE-80GB");
  EXPECT_EQ(key("NVIDIA H100 NVL"), "H100-NVL-94GB");
  EXPECT_EQ(key("NVIDIA H200 141GB HBM3e"), "H200-SXM-141GB");
  EXPECT_EQ(key("NVIDIA L40S"), "L40S-48GB");
  EXPECT_EQ(key("NVIDIA GeForce RTX 4090"), "RTX-4090");
  EXPECT_EQ(key("NVIDIA GeForce GTX 1080 Ti"), "GTX-1080-Ti");
  EXPECT_EQ(key("Tesla V100-SXM2-32GB"), "V100-32GB");
  EXPECT_EQ(key("NVIDIA-H100-80GB-HBM3"), "H100-SXM5-80GB") << "a Kubernetes product label";
  EXPECT_EQ(key("H100_80GB"), "H100-SXM5-80GB") << "the seed's spelling";
  EXPECT_EQ(key("Some Future GPU"), "-");
}

TEST(GpuCatalog, SliceShareFollowsTheBasis) {
  auto c = shippedCatalog();
  ASSERT_NE(c, nullptr);
  const std::string a100 = "NVIDIA A100-SXM4-80GB";
  EXPECT_DOUBLE_EQ(c->share(a100, "3g.40gb", SliceBasis::kCompute), 3.0 / 7);
  EXPECT_DOUBLE_EQ(c->share(a100, "3g.40gb", SliceBasis::kMemory), 4.0 / 8);
  EXPECT_DOUBLE_EQ(c->share(a100, "3g.40gb", SliceBasis::kMax), 4.0 / 8);
  EXPECT_DOUBLE_EQ(c->share(a100, "1g.20gb", SliceBasis::kMax), 2.0 / 8) << "double-memory 1g";
  EXPECT_DOUBLE_EQ(c->share(a100, "whole", SliceBasis::kMemory), 1.0);
  EXPECT_DOUBLE_EQ(c->share("NVIDIA A30", "2g.12gb", SliceBasis::kCompute), 0.5);
}

TEST(GpuCatalog, RejectsAProfileLargerThanItsGpu) {
  auto c = GpuCatalog::parse(R"({"models":[{"key":"X","usd_per_hour":1,"mig":true,"compute_slices":7,
      "memory_slices":8,"profiles":[{"name":"8g.90gb","compute_slices":8,"memory_slices":8}]}]})", "test");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("8g.90gb"), std::string::npos) << c.error().message;
  EXPECT_FALSE(GpuCatalog::parse("[]", "test").ok());
  EXPECT_FALSE(GpuCatalog::parse(R"({"models":[{"key":"X","usd_per_hour":-1}]})", "test").ok());
}

TEST(CostRatesOverCatalog, OverridesWinCatalogPricesFillTheRest) {
  auto c = shippedCatalog();
  ASSERT_NE(c, nullptr);
  auto r = CostRates::parse("A100=2.80", c);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->wholeGpuPerHour("NVIDIA A100 80GB PCIe"), 2.80);
  EXPECT_DOUBLE_EQ(r->wholeGpuPerHour("NVIDIA H100 80GB HBM3"), c->byKey("H100-SXM5-80GB")->usd_per_hour);
  EXPECT_DOUBLE_EQ(r->slotPerHour("NVIDIA A100-SXM4-80GB", "1g.10gb", 1), 0.40);
  auto mem = CostRates::parse("A100=2.80", c, SliceBasis::kMemory);
  ASSERT_TRUE(mem.ok());
  EXPECT_DOUBLE_EQ(mem->slotPerHour("NVIDIA A100-SXM4-80GB", "3g.40gb", 3), 1.40);
  EXPECT_EQ(r->modelKey("NVIDIA A100 80GB PCIe"), "A100-PCIE-80GB");
  EXPECT_EQ(r->modelKey("Some Future GPU"), "Some Future GPU");
}

TEST(LedgerMath, BucketsAreUtcDaysMondayWeeksAndCalendarMonths) {
  const int64_t t = at("2026-03-04T15:30:00Z");  // a Wednesday
  EXPECT_EQ(bucketStart(t, CostStep::kDay), at("2026-03-04T00:00:00Z"));
  EXPECT_EQ(bucketStart(t, CostStep::kWeek), at("2026-03-02T00:00:00Z"));
  EXPECT_EQ(bucketStart(t, CostStep::kMonth), at("2026-03-01T00:00:00Z"));
  EXPECT_EQ(nextBucket(at("2026-12-01T00:00:00Z"), CostStep::kMonth), at("2027-01-01T00:00:00Z"));
  EXPECT_EQ(nextBucket(at("2028-02-01T00:00:00Z"), CostStep::kMonth), at("2028-03-01T00:00:00Z"));
  EXPECT_EQ(bucketStart(at("2026-03-01T00:00:00Z"), CostStep::kWeek), at("2026-02-23T00:00:00Z"));
}

TEST(LedgerMath, AHoldingIsCutAtPriceChangesAndMidnights) {
  Holding h;
  h.session_id = "s-1";
  h.share = 1.0 / 7;
  h.start_ms = at("2026-01-31T22:00:00Z");
  h.end_ms = at("2026-02-01T02:00:00Z");
  const std::vector<PricePoint> prices = {{0, 2.80}, {at("2026-01-31T23:00:00Z"), 3.50}};
  const std::vector<Span> idle = {{at("2026-01-31T23:50:00Z"), at("2026-02-01T00:10:00Z")}};
  auto e = priceHolding(h, prices, idle);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].cost_micros, 400'000) << "1 h of 1/7 of 2.80";
  EXPECT_EQ(e[1].cost_micros, 500'000) << "1 h of 1/7 of 3.50";
  EXPECT_EQ(e[2].h.start_ms, at("2026-02-01T00:00:00Z"));
  EXPECT_EQ(e[2].cost_micros, 1'000'000) << "2 h in February";
  EXPECT_EQ(e[1].idle_ms, 600'000);
  EXPECT_EQ(e[2].idle_ms, 600'000);
  EXPECT_EQ(e[1].idle_cost_micros, 83'333);
}

class CostLedgerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-cost-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/sandman.db";
    auto s = SqliteStore::open(path_);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
    auto c = CostStore::open(path_);
    ASSERT_TRUE(c.ok()) << c.error().message;
    cost_ = std::move(c).value();
    auto rates = CostRates::parse("A100=2.80", shippedCatalog());
    ASSERT_TRUE(rates.ok());
    ledger_ = std::make_unique<CostLedger>(CostLedgerOptions{5}, *cost_, rates.value(), clock_);
  }
  void TearDown() override {
    ledger_.reset();
    cost_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Session slice(const std::string& id, const std::string& user, const std::string& device, int port) {
    Session s;
    s.id = id;
    s.user_id = user;
    s.status = SessionStatus::kRunning;
    s.image = "img";
    s.ssh_port = port;
    s.user_public_key = "k";
    s.host_public_key = "h";
    s.gpu_uuid = device;
    GpuSlot g;
    g.gpu_uuid = "GPU-a";
    g.profile = "1g.10gb";
    g.model = "NVIDIA A100-SXM4-80GB";
    s.gpu = g;
    s.created_at = clock_.now();
    s.expires_at = clock_.now() + std::chrono::hours(24);
    auto payer = ledger_->payerFor(user, std::nullopt);
    EXPECT_TRUE(payer.ok());
    if (payer.ok()) {
      s.team = payer->team;
      s.project = payer->project;
    }
    EXPECT_TRUE(store_->transaction([&](StoreTx& tx) { return tx.insertSession(s); }).ok());
    return s;
  }

  void end(Session& s) {
    s.status = SessionStatus::kEnded;
    s.ended_at = clock_.now();
    ASSERT_TRUE(store_->updateSession(s).ok());
  }

  // Telemetry minutes of a device, as the sampler's rollup writes them.
  void minute(const std::string& device, const std::string& when, int procs, double util) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const std::string sql = "INSERT INTO gpu_samples_minute (minute, device, gpu_uuid, samples, util_max, procs_max) "
                            "VALUES (" + std::to_string(at(when)) + ", '" + device + "', 'GPU-a', 12, " +
                            std::to_string(util) + ", " + std::to_string(procs) + ")";
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }

  CostReport report(const std::string& group_by, CostStep step, const std::string& from, const std::string& to) {
    CostQuery q;
    q.group_by = group_by;
    q.step = step;
    q.from_ms = at(from);
    q.to_ms = at(to);
    auto r = ledger_->report(q);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : CostReport{};
  }

  std::string dir_, path_;
  testing::ManualClock clock_{fromUnixMillis(at("2026-01-31T22:00:00Z"))};
  SqliteStorePtr store_;
  CostStorePtr cost_;
  std::unique_ptr<CostLedger> ledger_;
};

TEST_F(CostLedgerStoreTest, ExactCentsAcrossAPriceChangeAndAMonthBoundary) {
  ASSERT_TRUE(ledger_->syncPrices().ok());
  ASSERT_TRUE(cost_->addTeam("lab", clock_.now()).ok());
  ASSERT_TRUE(cost_->addProject({"llm", "lab", clock_.now()}).ok());
  ASSERT_TRUE(ledger_->setUserOrg({"alice", "lab", {"llm"}}).ok());
  Session s = slice("s-00000000000000a1", "alice", "MIG-1", 10001);
  EXPECT_EQ(s.team, "lab");
  EXPECT_EQ(s.project, "llm");
  // Idle 23:00-23:10 (no process, under 5 %), busy at 23:10 (a process).
  for (int m = 0; m < 10; ++m) minute("MIG-1", "2026-01-31T23:0" + std::to_string(m) + ":00Z", 0, 1.0);
  minute("MIG-1", "2026-01-31T23:10:00Z", 1, 0.0);

  clock_.advance(std::chrono::hours(1));
  ASSERT_TRUE(ledger_->setPrice("NVIDIA A100-SXM4-80GB", 3.50, std::nullopt).ok());
  EXPECT_FALSE(ledger_->setPrice("A100-SXM4-80GB", 1.0, clock_.now() - std::chrono::minutes(1)).ok())
      << "a price never applies to the past";

  clock_.advance(std::chrono::minutes(30));
  CostReport running = report("team", CostStep::kDay, "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z");
  EXPECT_EQ(running.running_sessions, 1);
  EXPECT_EQ(running.total_micros, 650'000) << "accrued at query time: 1 h at 0.40 + 30 min at 0.50";

  clock_.advance(std::chrono::hours(2) + std::chrono::minutes(30));  // 02:00 on 1 February
  end(s);
  auto booked = ledger_->bookEnded();
  ASSERT_TRUE(booked.ok());
  EXPECT_EQ(booked.value(), 1);
  EXPECT_EQ(ledger_->bookEnded().value(), 0) << "booked once";

  CostReport months = report("team", CostStep::kMonth, "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z");
  EXPECT_EQ(months.running_sessions, 0);
  ASSERT_EQ(months.lines.size(), 2u);
  EXPECT_EQ(months.lines[0].key, "lab");
  EXPECT_EQ(months.lines[0].bucket_ms, at("2026-01-01T00:00:00Z"));
  EXPECT_EQ(months.lines[0].cost_micros, 900'000) << "January: 0.40 + 0.50";
  EXPECT_EQ(months.lines[1].cost_micros, 1'000'000) << "February: 2 h at 0.50";
  EXPECT_EQ(months.total_micros, 1'900'000);
  EXPECT_EQ(months.lines[0].idle_cost_micros, 83'333) << "10 idle minutes at 0.50/h";
  EXPECT_NEAR(months.lines[0].held_hours, 2.0, 1e-9);

  // A window that cuts an entry is charged pro rata.
  CostReport part = report("project", CostStep::kDay, "2026-02-01T01:00:00Z", "2026-02-01T01:30:00Z");
  ASSERT_EQ(part.lines.size(), 1u);
  EXPECT_EQ(part.lines[0].key, "llm");
  EXPECT_EQ(part.lines[0].cost_micros, 250'000);

  auto mtd = ledger_->monthToDate(BudgetScope::kProject, "llm", clock_.now());
  ASSERT_TRUE(mtd.ok());
  EXPECT_EQ(mtd.value(), 1'000'000) << "February so far";
}

TEST_F(CostLedgerStoreTest, APayerMustBeOneOfTheUsersProjects) {
  ASSERT_TRUE(cost_->addTeam("lab", clock_.now()).ok());
  ASSERT_TRUE(cost_->addProject({"llm", "lab", clock_.now()}).ok());
  ASSERT_TRUE(cost_->addProject({"vision", "", clock_.now()}).ok());
  EXPECT_FALSE(ledger_->setUserOrg({"bob", "nolab", {}}).ok()) << "unknown team";
  EXPECT_FALSE(ledger_->setUserOrg({"bob", "", {"nope"}}).ok()) << "unknown project";
  EXPECT_FALSE(ledger_->setUserOrg({"bob", "", {"Bad Name"}}).ok());
  ASSERT_TRUE(ledger_->setUserOrg({"bob", "", {"vision", "llm", "vision"}}).ok());
  auto org = cost_->userOrg("bob");
  ASSERT_TRUE(org.ok() && org->has_value());
  EXPECT_EQ((*org)->projects, (std::vector<std::string>{"vision", "llm"})) << "duplicates dropped, order kept";
  auto p = ledger_->payerFor("bob", std::nullopt);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->project, "vision") << "the first project by default";
  auto named = ledger_->payerFor("bob", std::string("llm"));
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->team, "lab") << "no team of his own: the project's";
  auto other = ledger_->payerFor("carol", std::string("llm"));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().kind, ErrorKind::kInvalid);
  auto nobody = ledger_->payerFor("carol", std::nullopt);
  ASSERT_TRUE(nobody.ok());
  EXPECT_EQ(nobody->project, "");
}

}  // namespace
}  // namespace sandman

namespace sandman {
namespace {

TEST(BudgetForecast, MonthToDatePlusTheRecentDailyRateTimesTheDaysLeft) {
  // 70 USD so far, 70 USD in the last 7 days, 10 days left: 70 + 10 x 10.
  EXPECT_EQ(forecastMonthEnd(70'000'000, 70'000'000, 7 * kDayMs, 10 * kDayMs), 170'000'000);
  EXPECT_EQ(forecastMonthEnd(5'000'000, 5'000'000, 1'800'000, 20 * kDayMs), 5'000'000) << "under an hour: no rate";
  EXPECT_EQ(forecastMonthEnd(5'000'000, 0, 7 * kDayMs, 20 * kDayMs), 5'000'000) << "stopped spending";
}

TEST_F(CostLedgerStoreTest, ASpentBudgetRefusesOnlyWhenBlocking) {
  ASSERT_TRUE(ledger_->syncPrices().ok());
  ASSERT_TRUE(cost_->addTeam("lab", clock_.now()).ok());
  ASSERT_TRUE(ledger_->setUserOrg({"alice", "lab", {}}).ok());
  clock_.advance(std::chrono::hours(24));  // 1 February, 22:00: the whole spend falls in one month
  Session s = slice("s-00000000000000b1", "alice", "MIG-2", 10002);
  clock_.advance(std::chrono::hours(10));  // 4.00 USD at 0.40/h
  Budget b;
  b.scope = BudgetScope::kTeam;
  b.name = "lab";
  b.usd_per_month = 5;
  b.created_at = clock_.now();
  ASSERT_TRUE(cost_->putBudget(b).ok());
  BudgetMonitor block(*ledger_, true);
  BudgetMonitor warn(*ledger_, false);
  auto st = block.statuses();
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->size(), 1u);
  EXPECT_EQ((*st)[0].used_micros, 4'000'000);
  EXPECT_NEAR((*st)[0].used_ratio, 0.8, 1e-9);
  EXPECT_TRUE(block.admit("alice", "lab", "", "create").ok()) << "80 % is a warning, not a refusal";
  clock_.advance(std::chrono::hours(3));  // 5.20 USD
  Status refused = block.admit("alice", "lab", "", "create");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kOverBudget);
  EXPECT_NE(refused.error().details.find("\"budget\":\"team/lab\""), std::string::npos) << refused.error().details;
  EXPECT_TRUE(warn.admit("alice", "lab", "", "create").ok());
  EXPECT_TRUE(block.admit("bob", "other", "", "create").ok()) << "another team's spend is not lab's";
  auto readings = block.readings();
  ASSERT_EQ(readings.size(), 1u);
  EXPECT_EQ(readings[0].budget, "team/lab");
  EXPECT_NEAR(readings[0].used_usd, 5.2, 1e-9);
}

}  // namespace
}  // namespace sandman
