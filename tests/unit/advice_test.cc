// Advice from the ledger: the forecast (exact on a clean periodic series,
// beating "last week again" on a synthetic year with a stated error bound),
// the right-sizing rule, and both over a real SQLite file under a manual clock.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "common/time_format.h"
#include "cost/cost_forecast.h"
#include "cost/cost_store.h"
#include "cost/forecast.h"
#include "cost/rightsizing.h"
#include "store/sqlite_store.h"
#include "support/cost_fixtures.h"
#include "support/manual_clock.h"

namespace sandman {
namespace {

namespace fs = std::filesystem;

using testing::at;
using testing::shippedCatalog;

TEST(Forecast, HourOfWeekStartsOnMondayUtc) {
  EXPECT_EQ(hourOfWeek(at("2026-11-30T00:00:00Z")), 0);  // a Monday
  EXPECT_EQ(hourOfWeek(at("2026-12-06T23:59:00Z")), 167);
  EXPECT_EQ(hourOfWeek(at("1970-01-01T00:00:00Z")), 72);
}

TEST(Forecast, ReproducesAPeriodicSeriesWithALinearTrendExactly) {
  // 6 weeks; each week's shape the same, its total growing by 10 % of week 1.
  const int64_t start = at("2026-10-19T00:00:00Z");  // Monday
  std::vector<double> shape(kHoursPerWeek);
  for (int h = 0; h < kHoursPerWeek; ++h) shape[h] = (h % 24 >= 9 && h % 24 < 17 && h < 120) ? 1.0 : 0.1;
  std::vector<double> hist;
  for (int w = 0; w < 6; ++w) {
    for (int h = 0; h < kHoursPerWeek; ++h) hist.push_back(shape[h] * (1.0 + 0.1 * w));
  }
  const auto f = forecastSeasonal(hist, start, 2 * kHoursPerWeek);
  ASSERT_EQ(f.size(), 2u * kHoursPerWeek);
  for (int i = 0; i < 2 * kHoursPerWeek; ++i) {
    EXPECT_NEAR(f[i], shape[i % kHoursPerWeek] * (1.0 + 0.1 * (6 + i / kHoursPerWeek)), 1e-9) << i;
  }
  // The naive baseline repeats the last week, trend or not.
  const auto n = forecastLastWeek(hist, kHoursPerWeek + 1);
  EXPECT_DOUBLE_EQ(n[0], hist[5 * kHoursPerWeek]);
  EXPECT_DOUBLE_EQ(n[kHoursPerWeek], hist[5 * kHoursPerWeek]);
}

TEST(Forecast, UnderAWeekItRepeatsTheMeanDay) {
  std::vector<double> hist(48);
  for (int i = 0; i < 48; ++i) hist[i] = i % 24;
  const auto f = forecastSeasonal(hist, at("2026-11-30T00:00:00Z"), 25);
  EXPECT_DOUBLE_EQ(f[0], 0);
  EXPECT_DOUBLE_EQ(f[13], 13);
  EXPECT_DOUBLE_EQ(f[24], 0);
  EXPECT_EQ(forecastSeasonal({}, 0, 3), std::vector<double>(3, 0.0));
}

// The bound the README states: on the synthetic year (trend +30 %/year, 15 %
// hourly noise, seed 14), the last 4 weeks held out, the seasonal method's
// hourly WAPE at a 7-day horizon is under 14 % and under the naive baseline's;
// so are its whole-span WAPE and its daily MAPE.
TEST(Forecast, BeatsLastWeekAgainOnASyntheticYear) {
  const SyntheticYear year = syntheticDemandYear();
  EXPECT_EQ(year.hourly.size(), 365u * 24);
  EXPECT_EQ(syntheticDemandYear().hourly, year.hourly) << "deterministic";
  const BacktestResult r = backtest(year, 4);
  EXPECT_LT(r.seasonal_wape_7d, 0.14);
  EXPECT_LT(r.seasonal_wape_7d, r.naive_wape_7d);
  EXPECT_LT(r.seasonal_wape_all, 0.14);
  EXPECT_LT(r.seasonal_wape_all, r.naive_wape_all);
  EXPECT_LT(r.seasonal_daily_mape, r.naive_daily_mape);
  // 15 % Gaussian noise alone costs about 12 % WAPE; nothing does better.
  EXPECT_GT(r.seasonal_wape_7d, 0.10);
}

TEST(Rightsizing, TheSmallestProfileThatFitsWithHeadroom) {
  auto catalog = shippedCatalog();
  ASSERT_NE(catalog, nullptr);
  auto rates = CostRates::parse("", catalog);
  ASSERT_TRUE(rates.ok());
  const CatalogModel* a100 = catalog->byKey("A100-SXM4-80GB");
  auto fit = [&](const std::string& held, double mib, std::optional<double> util) {
    auto p = smallestFit({a100, held, mib, util}, rates.value());
    return p ? p->name : std::string("-");
  };
  EXPECT_EQ(fit("whole", 8000, 10), "1g.10gb") << "8000 x 1.2 = 9600 <= 9728 MiB; 10 % of 7 slices x 1.2 -> 1";
  EXPECT_EQ(fit("whole", 8200, 10), "1g.20gb") << "9840 MiB needs the 20 GB 1g, same compute price";
  EXPECT_EQ(fit("whole", 8000, 20), "2g.20gb") << "20 % of 7 slices x 1.2 = 1.68 -> 2 slices";
  EXPECT_EQ(fit("whole", 8000, 50), "-") << "4.2 -> 5 slices: only 7g, which costs what the whole GPU does";
  EXPECT_EQ(fit("3g.40gb", 15000, 30), "2g.20gb") << "18000 MiB; 30 % of 3 slices x 1.2 = 1.08 -> 2";
  EXPECT_EQ(fit("1g.10gb", 100, 1), "-") << "nothing is smaller than the smallest";
  EXPECT_EQ(fit("whole", 70000, 5), "-") << "84000 MiB fits no slice";
  EXPECT_FALSE(smallestFit({catalog->byKey("RTX-4090"), "whole", 100, 1}, rates.value())) << "no MIG";
  EXPECT_EQ(fit("3g.40gb", 5000, std::nullopt), "1g.10gb") << "utilisation unknown (MIG): memory alone";
}

class AdviceStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-advice-XXXXXX";
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
    ASSERT_TRUE(ledger_->syncPrices().ok());
    ASSERT_TRUE(cost_->addTeam("lab", clock_.now()).ok());
    ASSERT_TRUE(cost_->addTeam("ops", clock_.now()).ok());
    ASSERT_TRUE(ledger_->setUserOrg({"alice", "lab", {}}).ok());
    ASSERT_TRUE(ledger_->setUserOrg({"bob", "ops", {}}).ok());
    ASSERT_TRUE(ledger_->setUserOrg({"carol", "lab", {}}).ok());
    ASSERT_TRUE(ledger_->setUserOrg({"dave", "ops", {}}).ok());
  }
  void TearDown() override {
    ledger_.reset();
    cost_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Session start(const std::string& id, const std::string& user, const std::string& device,
                const std::string& profile) {
    Session s;
    s.id = id;
    s.user_id = user;
    s.status = SessionStatus::kRunning;
    s.image = "img";
    s.ssh_port = 10000 + static_cast<int>(++ports_);
    s.user_public_key = "k";
    s.host_public_key = "h";
    s.gpu_uuid = device;
    GpuSlot g;
    g.gpu_uuid = "GPU-a";
    g.profile = profile == "whole" ? "" : profile;
    g.whole = profile == "whole";
    g.model = "NVIDIA A100-SXM4-80GB";
    s.gpu = g;
    s.created_at = clock_.now();
    s.expires_at = clock_.now() + std::chrono::hours(24);
    auto payer = ledger_->payerFor(user, std::nullopt);
    EXPECT_TRUE(payer.ok());
    if (payer.ok()) s.team = payer->team;
    EXPECT_TRUE(store_->transaction([&](StoreTx& tx) { return tx.insertSession(s); }).ok());
    return s;
  }

  void end(Session& s) {
    s.status = SessionStatus::kEnded;
    s.ended_at = clock_.now();
    ASSERT_TRUE(store_->updateSession(s).ok());
  }

  // Telemetry minutes of a device over [from, from + n minutes), as the rollup writes them.
  void minutes(const std::string& device, int64_t from, int n, double mem_mib, double util_avg,
               const std::string& session_id = "") {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    for (int i = 0; i < n; ++i) {
      const std::string sql =
          "INSERT INTO gpu_samples_minute (minute, device, gpu_uuid, session_id, samples, util_avg, util_max, "
          "mem_used_max, procs_max) VALUES (" + std::to_string(from + i * 60'000LL) + ", '" + device + "', 'GPU-a', '" +
          session_id + "', 12, " +
          std::to_string(util_avg) + ", 100, " + std::to_string(mem_mib) + ", 1)";
      EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    }
    sqlite3_close(db);
  }

  std::string dir_, path_;
  int64_t ports_ = 0;
  testing::ManualClock clock_{fromUnixMillis(at("2026-11-02T09:00:00Z"))};  // a Monday
  SqliteStorePtr store_;
  CostStorePtr cost_;
  std::unique_ptr<CostLedger> ledger_;
};

TEST_F(AdviceStoreTest, RightsizingJudgesPeaksAndPricesTheSavingByTheLedger) {
  const int64_t t0 = toUnixMillis(clock_.now());
  Session small = start("s-00000000000000b1", "alice", "MIG-1", "3g.40gb");  // used 5 GB, 10 %
  Session busy = start("s-00000000000000b2", "bob", "MIG-2", "3g.40gb");     // used 30 GB
  Session blind = start("s-00000000000000b3", "carol", "MIG-3", "1g.10gb");  // no telemetry
  Session whole = start("s-00000000000000b4", "dave", "GPU-w", "whole");      // running, 16 GB, 10 %
  minutes("MIG-1", t0, 120, 5000, 10);
  minutes("MIG-2", t0, 120, 30000, 90);
  // The first minute of GPU-w is the previous holder's (it ended in it): not this session's peak.
  minutes("GPU-w", t0, 1, 70000, 100, "s-00000000000000a0");
  minutes("GPU-w", t0 + 60'000, 179, 16000, 10);
  clock_.advance(std::chrono::hours(2));
  end(small);
  end(busy);
  end(blind);
  clock_.advance(std::chrono::hours(1));

  auto r = adviseRightsizing(*ledger_, t0 - 3'600'000, toUnixMillis(clock_.now()));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->smaller, 2);
  EXPECT_EQ(r->right_sized, 1);
  EXPECT_EQ(r->unknown, 1);
  ASSERT_EQ(r->rows.size(), 4u);
  // Largest saving first: the whole GPU (3 h at 2.80 -> 1g.20gb at 2.80/7) ...
  EXPECT_EQ(r->rows[0].session.id, whole.id);
  EXPECT_EQ(r->rows[0].suggested_profile, "1g.20gb") << "19200 MiB: over 1g.10gb, fits 1g.20gb; 10 % x 7 x 1.2 -> 1";
  EXPECT_EQ(r->rows[0].cost_micros, 8'400'000);
  EXPECT_EQ(r->rows[0].suggested_cost_micros, 1'200'000);
  EXPECT_EQ(r->rows[0].saving_micros, 7'200'000);
  // ... then the 3g that used 5 GB: 2 h at 3/7 x 2.80 -> 1/7.
  EXPECT_EQ(r->rows[1].session.id, small.id);
  EXPECT_EQ(r->rows[1].suggested_profile, "1g.10gb");
  EXPECT_EQ(r->rows[1].cost_micros, 2'400'000);
  EXPECT_EQ(r->rows[1].saving_micros, 1'600'000);
  EXPECT_EQ(r->saving_micros, 8'800'000);
  EXPECT_EQ(r->rows[2].session.id, blind.id);
  EXPECT_EQ(r->rows[2].verdict, FitVerdict::kUnknown) << "no telemetry is not a fit";
  EXPECT_EQ(r->rows[3].session.id, busy.id);
  EXPECT_EQ(r->rows[3].verdict, FitVerdict::kRightSized);

  // A window that holds only the last hour: ended sessions are out, the
  // running one is charged for that hour only.
  auto last = adviseRightsizing(*ledger_, toUnixMillis(clock_.now()) - 3'600'000 + 1, toUnixMillis(clock_.now()));
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->rows.size(), 1u);
  EXPECT_EQ(last->rows[0].session.id, whole.id);
  EXPECT_NEAR(static_cast<double>(last->rows[0].saving_micros), 2'400'000, 2);
}

TEST_F(AdviceStoreTest, ForecastFromTheLedgerRepeatsTheWorkingWeek) {
  // Four weeks: alice holds a 1g.10gb 09:00-17:00 every weekday (0.40 USD/h).
  int n = 0;
  for (int week = 0; week < 4; ++week) {
    for (int day = 0; day < 7; ++day) {
      if (day < 5) {
        char id[32];
        std::snprintf(id, sizeof id, "s-%016d", ++n);
        Session s = start(id, "alice", "MIG-" + std::to_string(n), "1g.10gb");
        clock_.advance(std::chrono::hours(8));
        end(s);
        clock_.advance(std::chrono::hours(16));
      } else {
        clock_.advance(std::chrono::hours(24));
      }
    }
  }
  // Monday 09:00 again, four weeks on.
  auto f = forecastCost(*ledger_, "team", 7);
  ASSERT_TRUE(f.ok()) << f.error().message;
  ASSERT_EQ(f->groups.size(), 1u);
  EXPECT_EQ(f->groups[0].key, "lab");
  EXPECT_NEAR(f->groups[0].slice_hours, 40.0, 1e-6) << "5 days x 8 h";
  EXPECT_NEAR(f->groups[0].cost_micros, 16'000'000, 1) << "40 h at 0.40";
  EXPECT_NEAR(f->groups[0].usd_per_slice_hour, 0.40, 1e-9);
  ASSERT_EQ(f->groups[0].days.size(), 8u) << "the first and last UTC days partial";
  EXPECT_NEAR(f->groups[0].days[0].slice_hours, 8.0, 1e-6) << "Monday from 09:00";
  EXPECT_NEAR(f->groups[0].days[5].slice_hours, 0.0, 1e-6) << "Saturday";

  auto p = forecastCost(*ledger_, "profile", 30);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->groups.size(), 1u);
  EXPECT_EQ(p->groups[0].key, "1g.10gb");
  // 30 days from Monday 09:00: 4 whole weeks (160 h) + Mon, Tue (16 h).
  EXPECT_NEAR(p->slice_hours, 176.0, 1e-6);
  EXPECT_FALSE(forecastCost(*ledger_, "team", 0).ok());
}

}  // namespace
}  // namespace sandman
