// bench/cost_report: GET /api/v1/cost?group_by=team&step=day over a year of
// history (200,000 ended sessions, inserted straight into a store and booked
// by the ledger) against the same query over one day, in one run: the year's
// median time, the day's, and their ratio. The report is what the route
// returns (ledger sums, running sessions accrued, JSON rendered).
//
//   cost_report [--sessions 200000] [--runs 7] [--catalog data/gpu-catalog.json]
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "api/cost_routes.h"
#include "common/time_format.h"
#include "cost/cost_forecast.h"
#include "cost/cost_ledger.h"
#include "cost/rightsizing.h"
#include "store/sqlite_store.h"

using namespace sandman;

namespace {

class FixedClock final : public Clock {
 public:
  explicit FixedClock(TimePoint t) : t_(t) {}
  TimePoint now() const override { return t_; }
  void sleepUntil(TimePoint) const override {}
  bool waitUntil(std::unique_lock<std::mutex>&, std::condition_variable&, TimePoint,
                 const std::function<bool()>& done) const override {
    return done();
  }

 private:
  TimePoint t_;
};

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Median seconds of `runs` reports of the query, rendered as the route renders them.
double timeReport(CostLedger& ledger, const CostQuery& q, int runs, size_t* rows, std::string* total) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto r = ledger.report(q);
    if (!r.ok()) {
      std::fprintf(stderr, "cost_report: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    std::string body = costReportJson(r.value()).dump();
    t.push_back(seconds(std::chrono::steady_clock::now() - start));
    *rows = r->lines.size();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(r->total_micros) / 1e6);
    *total = buf;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int sessions = 200000;
  int runs = 7;
  std::string catalog_path = "data/gpu-catalog.json";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--sessions") sessions = std::atoi(argv[i + 1]);
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
    if (a == "--catalog") catalog_path = argv[i + 1];
  }
  auto catalog = GpuCatalog::load(catalog_path);
  if (!catalog.ok()) {
    std::fprintf(stderr, "cost_report: %s (run from the repository root or pass --catalog)\n",
                 catalog.error().message.c_str());
    return 1;
  }
  char tmpl[] = "/tmp/sandman-cost-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  const std::string db = dir + "/sandman.db";
  int rc = 0;
  {
    auto store = SqliteStore::open(db);
    if (!store.ok()) {
      std::fprintf(stderr, "cost_report: %s\n", store.error().message.c_str());
      return 1;
    }
    // A year of sessions ending at "now": 20 teams, 200 users, 40 projects, a
    // mix of MIG slices and whole GPUs, 10 minutes to 8 hours each.
    const TimePoint now = fromUnixMillis(toUnixMillis(*parseRfc3339("2026-06-30T12:00:00Z")));
    const int64_t now_ms = toUnixMillis(now);
    const int64_t year_ms = 365 * kDayMs;
    std::mt19937_64 rng(42);
    struct Kind {
      const char* model;
      const char* profile;
      bool whole;
    };
    const Kind kinds[] = {{"NVIDIA A100-SXM4-80GB", "1g.10gb", false}, {"NVIDIA A100-SXM4-80GB", "3g.40gb", false},
                          {"NVIDIA H100 80GB HBM3", "2g.20gb", false},  {"NVIDIA H100 80GB HBM3", "7g.80gb", false},
                          {"NVIDIA H200 141GB HBM3e", "1g.18gb", false}, {"NVIDIA GeForce RTX 4090", "whole", true}};
    const auto insert_start = std::chrono::steady_clock::now();
    sqlite3* raw = nullptr;
    sqlite3_open(db.c_str(), &raw);
    sqlite3_exec(raw, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(raw,
                       "INSERT INTO sessions (id, user_id, status, image, ssh_port, user_public_key, host_public_key, "
                       "gpu_uuid, created_at, expires_at, ended_at, end_reason, gpu_slot, team, project) VALUES "
                       "(?1, ?2, 'ended', 'img', 0, 'k', 'h', ?3, ?4, ?5, ?5, 'expired', ?6, ?7, ?8)",
                       -1, &st, nullptr);
    for (int i = 0; i < sessions; ++i) {
      const int user = static_cast<int>(rng() % 200);
      const Kind& k = kinds[rng() % 6];
      const int64_t length = 600'000 + static_cast<int64_t>(rng() % (8 * 3'600'000 - 600'000));
      const int64_t start = now_ms - year_ms + static_cast<int64_t>(rng() % static_cast<uint64_t>(year_ms - length));
      char id[32];
      std::snprintf(id, sizeof id, "s-%016x", i);
      const std::string uid = "u" + std::to_string(user);
      const std::string device = "MIG-" + std::to_string(i % 512);
      const std::string slot = std::string("{\"gpu_index\":0,\"gpu_uuid\":\"GPU-x\",\"profile\":\"") + k.profile +
                               "\",\"whole\":" + (k.whole ? "true" : "false") + ",\"model\":\"" + k.model + "\"}";
      const std::string team = "team" + std::to_string(user % 20);
      const std::string project = "proj" + std::to_string(user % 40);
      sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 2, uid.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 3, device.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 4, start);
      sqlite3_bind_int64(st, 5, start + length);
      sqlite3_bind_text(st, 6, slot.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 7, team.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 8, project.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) != SQLITE_DONE) {
        std::fprintf(stderr, "cost_report: insert: %s\n", sqlite3_errmsg(raw));
        return 1;
      }
      sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_exec(raw, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(raw);
    const double insert_s = seconds(std::chrono::steady_clock::now() - insert_start);

    auto cost_store = CostStore::open(db);
    if (!cost_store.ok()) return 1;
    FixedClock clock(now);
    auto rates = CostRates::parse("", std::make_shared<GpuCatalog>(std::move(catalog).value()));
    CostLedger ledger({5}, *cost_store.value(), rates.value(), clock);
    if (!ledger.syncPrices().ok()) return 1;
    const auto book_start = std::chrono::steady_clock::now();
    auto booked = ledger.bookEnded();
    if (!booked.ok()) {
      std::fprintf(stderr, "cost_report: %s\n", booked.error().message.c_str());
      return 1;
    }
    const double book_s = seconds(std::chrono::steady_clock::now() - book_start);
    sqlite3* count_db = nullptr;
    sqlite3_open(db.c_str(), &count_db);
    sqlite3_stmt* cnt = nullptr;
    sqlite3_prepare_v2(count_db, "SELECT count(*) FROM cost_ledger", -1, &cnt, nullptr);
    sqlite3_step(cnt);
    const int64_t entries = sqlite3_column_int64(cnt, 0);
    sqlite3_finalize(cnt);
    sqlite3_close(count_db);

    CostQuery year;
    year.group_by = "team";
    year.step = CostStep::kDay;
    year.to_ms = now_ms;
    year.from_ms = now_ms - year_ms;
    CostQuery day = year;
    day.from_ms = now_ms - kDayMs;
    size_t year_rows = 0, day_rows = 0;
    std::string year_total, day_total;
    timeReport(ledger, year, 1, &year_rows, &year_total);  // warm the page cache alike for both
    const double year_s = timeReport(ledger, year, runs, &year_rows, &year_total);
    const double day_s = timeReport(ledger, day, runs * 5, &day_rows, &day_total);
    std::printf("sessions %d inserted in %.2f s; booked %lld into %lld ledger entries in %.2f s\n", sessions, insert_s,
                static_cast<long long>(booked.value()), static_cast<long long>(entries), book_s);
    std::printf("GET /api/v1/cost?group_by=team&step=day, medians:\n");
    std::printf("  one year : %8.2f ms  (%zu rows, %s USD)\n", year_s * 1e3, year_rows, year_total.c_str());
    std::printf("  one day  : %8.2f ms  (%zu rows, %s USD)\n", day_s * 1e3, day_rows, day_total.c_str());
    std::printf("  ratio year/day: %.1f\n", day_s > 0 ? year_s / day_s : 0.0);
    // The advice over the same history: the 30-day forecast per team (8
    // weeks of entries spread into hours) and right-sizing over 30 days (no
    // telemetry here, so every session is judged unknown after its peak query).
    for (const char* g : {"team", "profile"}) {
      const auto f0 = std::chrono::steady_clock::now();
      auto f = forecastCost(ledger, g, 30);
      const double f_s = seconds(std::chrono::steady_clock::now() - f0);
      if (!f.ok()) {
        std::fprintf(stderr, "cost_report: forecast: %s\n", f.error().message.c_str());
        return 1;
      }
      std::printf("GET /api/v1/cost/forecast?horizon=30d&group_by=%s: %8.2f ms (%zu groups, %.0f slice-hours, %.2f USD)\n",
                  g, f_s * 1e3, f->groups.size(), f->slice_hours, f->cost_micros / 1e6);
    }
    const auto r0 = std::chrono::steady_clock::now();
    auto rs = adviseRightsizing(ledger, now_ms - 30 * kDayMs, now_ms);
    const double r_s = seconds(std::chrono::steady_clock::now() - r0);
    if (!rs.ok()) {
      std::fprintf(stderr, "cost_report: rightsizing: %s\n", rs.error().message.c_str());
      return 1;
    }
    std::printf("GET /api/v1/advice/rightsizing (30 days): %8.2f ms (%zu sessions)\n", r_s * 1e3, rs->rows.size());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}
