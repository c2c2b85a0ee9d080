// Allocation by need (gpu/need_allocator.h), demand recording through the
// session lifecycle (manual clock, real SQLite), its retention, and layout
// advice by replay (cost/layout_advice.h), deterministic by construction.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <mutex>

#include "api/demand_routes.h"
#include "core/history_retention.h"
#include "cost/demand_store.h"
#include "cost/layout_advice.h"
#include "gpu/need_allocator.h"
#include "support/mig_fixtures.h"
#include "support/session_harness.h"

namespace sandman {
namespace {

using testing::addMig;
using testing::migA100_80;
using testing::wholeGpu;

constexpr int64_t kHour = 3'600'000;

// List prices: A100 2.00/h, L4 0.50/h; a slice pays its compute share.
double computePrice(const std::string& model, const std::string& profile, int compute) {
  const double whole = model.find("A100") != std::string::npos ? 2.00 : 0.50;
  return profile == "whole" ? whole : whole * compute / 7.0;
}

// The same GPUs charged by memory slices (--slice-price-basis memory): 2g.20gb and 1g.20gb cost alike.
double memoryPrice(const std::string& model, const std::string& profile, int) {
  static const std::map<std::string, int> kMemSlices = {{"1g.10gb", 1}, {"1g.20gb", 2}, {"2g.20gb", 2}, {"3g.40gb", 4},
                                                        {"4g.40gb", 4}, {"7g.80gb", 8}, {"1g.10gb+me", 1}};
  const double whole = model.find("A100") != std::string::npos ? 2.00 : 0.50;
  return profile == "whole" ? whole : whole * kMemSlices.at(profile) / 8.0;
}

TEST(NeedAllocator, CheapestFittingSliceAndWhy) {
  std::vector<GpuInfo> gpus = {migA100_80(0), wholeGpu(1, "NVIDIA L4", 23034)};
  auto c = allocateByNeed(gpus, {}, {10, Workload::kInference}, MigMode::kDynamic, computePrice);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->profile, "1g.10gb");
  EXPECT_EQ(c->device, "MIG 1g.10gb on GPU 0 (NVIDIA A100-SXM4-80GB)");
  EXPECT_NEAR(c->usd_per_hour, 2.0 / 7, 1e-9);
  EXPECT_TRUE(c->allocation.create);
  EXPECT_NE(c->why.find("cheapest of"), std::string::npos) << c->why;
  EXPECT_NE(c->why.find("$0.29/h"), std::string::npos) << c->why;
  // 1g.10gb and 1g.10gb+me tie on price, memory and compute: the name decides.
  EXPECT_EQ(c->options.front().profile, "1g.10gb");

  // 22 GB: 2g.20gb (20.9 GB) is too small; the whole L4 (24.2 GB, $0.50) beats 3g.40gb ($0.86).
  c = allocateByNeed(gpus, {}, {22, Workload::kInference}, MigMode::kDynamic, computePrice);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->profile, "whole");
  EXPECT_EQ(c->device, "GPU 1 (NVIDIA L4)");
  EXPECT_TRUE(c->allocation.whole);
}

TEST(NeedAllocator, WorkloadBreaksPriceTies) {
  std::vector<GpuInfo> gpus = {migA100_80(0)};
  // By memory slices 1g.20gb and 2g.20gb both cost 0.50/h.
  auto inf = allocateByNeed(gpus, {}, {20, Workload::kInference}, MigMode::kDynamic, memoryPrice);
  auto train = allocateByNeed(gpus, {}, {20, Workload::kTraining}, MigMode::kDynamic, memoryPrice);
  ASSERT_TRUE(inf.ok() && train.ok());
  EXPECT_EQ(inf->profile, "1g.20gb") << "inference: the fewest compute slices";
  EXPECT_EQ(train->profile, "2g.20gb") << "training: more compute for the same money";
  // By compute slices the cheaper 1g.20gb wins for both: price comes first.
  train = allocateByNeed(gpus, {}, {20, Workload::kTraining}, MigMode::kDynamic, computePrice);
  ASSERT_TRUE(train.ok());
  EXPECT_EQ(train->profile, "1g.20gb");
}

TEST(NeedAllocator, BadNeedsAndNothingFree) {
  std::vector<GpuInfo> gpus = {migA100_80(0)};
  EXPECT_EQ(allocateByNeed(gpus, {}, {0, Workload::kInference}, MigMode::kDynamic, computePrice).error().kind,
            ErrorKind::kInvalid);
  EXPECT_EQ(allocateByNeed(gpus, {}, {-3, Workload::kInference}, MigMode::kDynamic, computePrice).error().kind,
            ErrorKind::kInvalid);
  auto huge = allocateByNeed(gpus, {}, {200, Workload::kInference}, MigMode::kDynamic, computePrice);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(huge.error().message.find("7g.80gb"), std::string::npos) << huge.error().message;

  // Static: only existing instances. Two 1g.10gb, one held: 10 GB fits, 30 GB would fit a 3g that does not exist.
  gpus[0].instances.clear();
  addMig(gpus[0], "1g.10gb", 0);
  addMig(gpus[0], "1g.10gb", 1);
  std::vector<HeldSlot> held = {{gpus[0].uuid, gpus[0].instances[0].uuid, 0, 1, false, "1g.10gb"}};
  auto c = allocateByNeed(gpus, held, {10, Workload::kInference}, MigMode::kStatic, computePrice);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->allocation.device_uuid, gpus[0].instances[1].uuid);
  auto none = allocateByNeed(gpus, held, {30, Workload::kInference}, MigMode::kStatic, computePrice);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().kind, ErrorKind::kConflict);
  EXPECT_NE(none.error().message.find("3g.40gb"), std::string::npos) << none.error().message;
}

// A static host: the GPUs as given, nothing created.
class FakeGpus final : public GpuBackend {
 public:
  explicit FakeGpus(std::vector<GpuInfo> gpus) : gpus_(std::move(gpus)) {}
  std::string description() const override { return "fake"; }
  Result<std::vector<GpuInfo>> listGpus() override { return gpus_; }
  Result<MigInstance> createInstance(int, int, int) override { return unavailable("static"); }
  Status destroyInstance(int, int) override { return {}; }
  Status destroyOwnedInstance(int, const MigInstance&) override { return {}; }

 private:
  std::vector<GpuInfo> gpus_;
};

std::vector<GpuInfo> twoThreeG() {
  GpuInfo g = migA100_80(0);
  addMig(g, "3g.40gb", 0);
  addMig(g, "3g.40gb", 4);
  return {g};
}

class DemandRecording : public testing::SessionHarness {
 protected:
  void SetUp() override {
    testing::SessionHarness::SetUp();
    gpus_ = GpuLeases(&fake_, {MigMode::kStatic, "3g", false});
    gpus_.setPricer(computePrice);
    rebuild();
    demand_ = DemandStore::open(dir_ + "/sandman.db").value();
    sessions_->setDemandListener([this](const DemandEvent& e) {
      std::lock_guard l(mu_);
      events_.push_back(e);
      ASSERT_TRUE(demand_->record(demandRecordOf(e)).ok());
    });
  }

  Result<CreatedSession> ask(const std::string& user, std::optional<double> gb, std::optional<std::string> profile = {}) {
    CreateRequest r{user, std::chrono::minutes(600), std::nullopt, std::nullopt, {}};
    r.gpu.gpu_memory_gb = gb;
    r.gpu.mig_profile = profile;
    return sessions_->create(r);
  }

  FakeGpus fake_{twoThreeG()};
  DemandStorePtr demand_;
  std::mutex mu_;
  std::vector<DemandEvent> events_;
};

TEST_F(DemandRecording, AcceptedRefusedAndBadInput) {
  auto a = ask("alice", 30);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(a->allocation.has_value());
  EXPECT_EQ(a->allocation->profile, "3g.40gb");
  EXPECT_NEAR(a->allocation->usd_per_hour, 6.0 / 7, 1e-9);
  auto b = ask("bob", std::nullopt, "3g.40gb");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_FALSE(b->allocation.has_value()) << "only requests by need say why";

  auto c = ask("carol", 20);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().kind, ErrorKind::kConflict);
  auto d = ask("dave", 500);  // larger than any device: bad input, no demand
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().kind, ErrorKind::kInvalid);
  auto e = ask("erin", 10, "1g.10gb");  // both ways of asking
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().kind, ErrorKind::kInvalid);

  ASSERT_EQ(events_.size(), 3u);
  EXPECT_EQ(events_[0].outcome, DemandOutcome::kAccepted);
  EXPECT_EQ(events_[1].outcome, DemandOutcome::kAccepted);
  EXPECT_EQ(events_[2].outcome, DemandOutcome::kRefusedCapacity);
  EXPECT_NE(events_[2].reason.find("nothing with 20 GB"), std::string::npos) << events_[2].reason;

  // The held duration is read from the session once it ends.
  clock_.advance(std::chrono::minutes(90));
  ASSERT_TRUE(sessions_->stop(a->session.id, "deleted").ok());
  auto rows = demand_->list({});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].session_id, a->session.id);
  EXPECT_EQ((*rows)[0].granted_profile, "3g.40gb");
  ASSERT_TRUE((*rows)[0].gpu_memory_gb.has_value());
  EXPECT_EQ(*(*rows)[0].gpu_memory_gb, 30);
  EXPECT_EQ((*rows)[0].workload, "inference");
  ASSERT_TRUE((*rows)[0].session_ended_ms.has_value());
  EXPECT_EQ(*(*rows)[0].session_ended_ms - *(*rows)[0].session_created_ms, 90 * 60'000);
  EXPECT_FALSE((*rows)[1].session_ended_ms.has_value()) << "bob still runs";
  EXPECT_EQ((*rows)[2].outcome, "refused_capacity");

  DemandFilter refused;
  refused.outcome = "refused_capacity";
  EXPECT_EQ(demand_->list(refused)->size(), 1u);
  DemandFilter page;
  page.after_id = (*rows)[0].id;
  page.limit = 1;
  auto second = demand_->list(page);
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].user_id, "bob");
}

TEST_F(DemandRecording, RetentionPrunesOldDemand) {
  ASSERT_TRUE(ask("alice", 30).ok());
  clock_.advance(std::chrono::hours(24 * 10));
  ASSERT_TRUE(ask("bob", std::nullopt, "3g.40gb").ok());
  RetentionOptions o;
  o.sessions = Millis(0);
  o.events = Millis(0);
  o.demand = std::chrono::hours(24 * 5);
  HistoryRetention retention(o, *store_, clock_);
  auto pruned = retention.pruneOnce();
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(pruned->demand, 1);
  auto rows = demand_->list({});
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].user_id, "bob");
}

TEST(LayoutAdvice, CandidatesAreMaximalAndDistinct) {
  const GpuInfo g = migA100_80(0);
  auto layouts = candidateLayouts(g);
  std::set<std::string> names;
  for (const auto& l : layouts) {
    std::string key;
    int compute = 0;
    for (const MigProfile* p : l) {
      key += p->name + " ";
      compute += p->compute_slices;
      EXPECT_EQ(p->name.find('+'), std::string::npos) << "no media profiles";
    }
    EXPECT_LE(compute, 7);
    EXPECT_TRUE(names.insert(key).second) << "duplicate " << key;
  }
  EXPECT_TRUE(names.count("7g.80gb "));
  EXPECT_TRUE(names.count("4g.40gb 3g.40gb "));
  EXPECT_TRUE(names.count("3g.40gb 3g.40gb "));
  EXPECT_TRUE(names.count("1g.10gb 1g.10gb 1g.10gb 1g.10gb 1g.10gb 1g.10gb 1g.10gb "));
  EXPECT_FALSE(names.count("3g.40gb ")) << "not maximal";
  EXPECT_EQ(candidateLayouts(g).size(), layouts.size());
}

// A day of demand for 3g-sized work on a host laid out as seven 1g.10gb.
std::vector<DemandRecord> threeGDemand() {
  std::vector<DemandRecord> out;
  int64_t id = 0;
  for (int i = 0; i < 24; ++i) {
    DemandRecord r;
    r.id = ++id;
    r.at_ms = i * kHour;
    static const char* const kUsers[] = {"u0", "u1", "u2", "u3", "u4"};  // "u" + to_string: a false GCC 12 warning
    r.user_id = kUsers[i % 5];
    if (i % 3 == 0) {
      r.mig_profile = "1g.10gb";
      r.outcome = "accepted";
      r.session_id = "s-" + std::to_string(i);
      r.session_created_ms = r.at_ms;
      r.session_ended_ms = r.at_ms + 2 * kHour;
    } else if (i % 3 == 1) {
      r.mig_profile = "3g.40gb";
      r.outcome = "refused_capacity";
    } else {
      r.gpu_memory_gb = 35;
      r.workload = "training";
      r.outcome = "refused_capacity";
    }
    out.push_back(r);
  }
  DemandRecord budget;
  budget.id = ++id;
  budget.at_ms = 5 * kHour;
  budget.mig_profile = "3g.40gb";
  budget.outcome = "refused_budget";
  out.push_back(budget);
  return out;
}

TEST(LayoutAdvice, ReplayRequestsUseSessionDurationsAndAMedianDefault) {
  AdviceOptions o;
  int64_t def = 0;
  auto reqs = replayRequests(threeGDemand(), 30 * kHour, o, &def);
  EXPECT_EQ(def, 2 * kHour) << "the accepted ones' median";
  EXPECT_EQ(reqs.size(), 24u) << "refused for budget: not the layout's doing";
  for (const auto& r : reqs) EXPECT_EQ(r.duration_ms, 2 * kHour);
  int64_t none = 0;
  replayRequests({}, kHour, o, &none);
  EXPECT_EQ(none, o.fallback_duration_ms);
}

TEST(LayoutAdvice, ProposesTheLayoutThatServesMoreAndIsDeterministic) {
  GpuInfo g = migA100_80(0);
  for (int s = 0; s < 7; ++s) addMig(g, "1g.10gb", s);
  std::vector<GpuInfo> gpus = {g};
  AdviceOptions o;
  o.pricer = computePrice;
  const int64_t end = 26 * kHour;
  auto reqs = replayRequests(threeGDemand(), end, o, nullptr);
  auto a = adviseLayout(gpus, reqs, o, end);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a->change);
  EXPECT_EQ(a->current.score.served, 8) << "only the 1g.10gb requests";
  EXPECT_NEAR(a->current.score.served_slice_hours, 8 * 2.0, 1e-9);
  EXPECT_GT(a->proposed.score.served_slice_hours, a->current.score.served_slice_hours);
  EXPECT_GT(a->gain_slice_hours, 0);
  ASSERT_TRUE(a->gain_percent.has_value());
  EXPECT_NEAR(*a->gain_percent, a->gain_slice_hours / 16.0 * 100, 1e-9);
  ASSERT_EQ(a->proposed.gpus.size(), 1u);
  const auto& p = a->proposed.gpus[0].profiles;
  EXPECT_NE(std::find(p.begin(), p.end(), "3g.40gb"), p.end());
  EXPECT_GT(a->candidates_evaluated, 10);

  // Same demand, same answer, whatever order the records came in.
  auto records = threeGDemand();
  std::reverse(records.begin(), records.end());
  auto again = adviseLayout(gpus, replayRequests(records, end, o, nullptr), o, end);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(layoutAdviceJson(a.value()).dump(), layoutAdviceJson(again.value()).dump());
}

TEST(LayoutAdvice, NoMigGpuIsInvalidAndCurrentBestIsKept) {
  AdviceOptions o;
  EXPECT_EQ(adviseLayout({wholeGpu(0, "NVIDIA L4", 23034)}, {}, o, kHour).error().kind, ErrorKind::kInvalid);
  GpuInfo g = migA100_80(0);
  addMig(g, "7g.80gb", 0);
  auto a = adviseLayout({g}, {}, o, kHour);  // no demand: nothing beats the current layout
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->change);
  EXPECT_EQ(a->proposed.gpus[0].profiles, std::vector<std::string>{"7g.80gb"});
  EXPECT_FALSE(a->gain_percent.has_value());
}

}  // namespace
}  // namespace sandman
