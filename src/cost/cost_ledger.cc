#include "cost/cost_ledger.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include "common/log.h"
#include "common/time_format.h"

namespace sandman {
namespace {

constexpr int kBookBatch = 200;

int computeCountOf(const std::string& profile) {
  if (profile.size() < 2 || profile[1] != 'g' || profile[0] < '1' || profile[0] > '9') return 0;
  return profile[0] - '0';
}

struct Totals {
  double cost = 0;
  double idle_cost = 0;
  double held_ms = 0;
  double idle_ms = 0;
};

CostLine lineOf(const std::string& key, int64_t bucket, const Totals& t) {
  return {key, bucket, std::llround(t.cost), std::llround(t.idle_cost), t.held_ms / 3.6e6, t.idle_ms / 3.6e6};
}

// A holding's value of a report column (user_id, team, ...); throws
// std::out_of_range for another name, as the callers' column lists allow none.
const std::string& holdingField(const Holding& h, const std::string& column) {
  const std::map<std::string, const std::string*> values = {
      {"user_id", &h.user_id}, {"team", &h.team},       {"project", &h.project},
      {"gpu_model", &h.gpu_model}, {"profile", &h.profile}, {"session_id", &h.session_id}};
  return *values.at(column);
}

}  // namespace

Status validateOrgName(const std::string& what, const std::string& name) {
  static const std::regex kName("^[a-z0-9][a-z0-9._-]{0,62}$");
  if (!std::regex_match(name, kName)) {
    return invalid(what + " name must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a "
                          "letter or digit (got '" + name.substr(0, 64) + "')");
  }
  return {};
}

std::string costColumn(const std::string& group_by) {
  if (group_by == "user" || group_by == "user_id") return "user_id";
  if (group_by == "session" || group_by == "session_id") return "session_id";
  if (group_by == "team" || group_by == "project" || group_by == "gpu_model" || group_by == "profile") return group_by;
  return "";
}

CostLedger::CostLedger(CostLedgerOptions options, CostStore& store, CostRates rates, const Clock& clock)
    : options_(options), store_(store), rates_(std::move(rates)), clock_(clock) {}

Result<Payer> CostLedger::payerFor(const std::string& user_id, const std::optional<std::string>& project) {
  if (project) {
    if (Status s = validateOrgName("project", *project); !s.ok()) return s.error();
  }
  auto org = store_.userOrg(user_id);
  if (!org.ok()) return org.error();
  Payer p;
  if (org->has_value()) {
    const UserOrg& o = **org;
    p.team = o.team;
    if (project) {
      if (std::find(o.projects.begin(), o.projects.end(), *project) == o.projects.end()) {
        return invalid("user " + user_id + " is not in project " + *project + "; add it with PUT /api/v1/users/" +
                       user_id + " {\"projects\": [...]} or leave project out");
      }
      p.project = *project;
    } else if (!o.projects.empty()) {
      p.project = o.projects.front();
    }
  } else if (project) {
    return invalid("user " + user_id + " is in no project; add " + *project + " with PUT /api/v1/users/" + user_id +
                   " {\"projects\": [\"" + *project + "\"]} or leave project out");
  }
  if (p.team.empty() && !p.project.empty()) {
    auto all = store_.projects();
    if (!all.ok()) return all.error();
    for (const auto& pr : all.value()) {
      if (pr.name == p.project) p.team = pr.team;
    }
  }
  return p;
}

Result<UserOrg> CostLedger::setUserOrg(UserOrg org) {
  if (!org.team.empty()) {
    if (Status s = validateOrgName("team", org.team); !s.ok()) return s.error();
    auto teams = store_.teams();
    if (!teams.ok()) return teams.error();
    if (std::none_of(teams->begin(), teams->end(), [&](const Team& t) { return t.name == org.team; })) {
      return invalid("no team " + org.team + "; create it first with POST /api/v1/teams {\"name\": \"" + org.team +
                     "\"}");
    }
  }
  std::vector<std::string> unique;
  if (!org.projects.empty()) {
    auto projects = store_.projects();
    if (!projects.ok()) return projects.error();
    for (const auto& name : org.projects) {
      if (Status s = validateOrgName("project", name); !s.ok()) return s.error();
      if (std::none_of(projects->begin(), projects->end(), [&](const Project& p) { return p.name == name; })) {
        return invalid("no project " + name + "; create it first with POST /api/v1/projects {\"name\": \"" + name +
                       "\"}");
      }
      if (std::find(unique.begin(), unique.end(), name) == unique.end()) unique.push_back(name);
    }
  }
  org.projects = std::move(unique);
  if (Status s = store_.putUserOrg(org, clock_.now()); !s.ok()) return s.error();
  return org;
}

Result<int> CostLedger::syncPrices() {
  const GpuCatalog* catalog = rates_.catalog();
  if (catalog == nullptr) return 0;
  const int64_t now = toUnixMillis(clock_.now());
  int changed = 0;
  for (const auto& m : catalog->models()) {
    const double rate = rates_.wholeGpuPerHour(m.key);
    auto h = store_.priceHistory(m.key);
    if (!h.ok()) return h.error();
    if (!h->empty() && h->back().usd_per_hour == rate) continue;
    const bool overridden = rate != m.usd_per_hour;
    PriceRow row{m.key, h->empty() ? 0 : now, rate, overridden ? "--gpu-hourly-rates" : "catalog"};
    if (!h->empty() && h->back().from_ms >= now) continue;  // a price set for later stays
    if (Status s = store_.addPrice(row, clock_.now()); !s.ok()) return s.error();
    ++changed;
  }
  std::lock_guard lock(mu_);
  histories_.clear();
  return changed;
}

Status CostLedger::setPrice(const std::string& model, double usd_per_hour, std::optional<TimePoint> from) {
  if (!std::isfinite(usd_per_hour) || usd_per_hour < 0) return invalid("usd_per_hour must be a number >= 0");
  if (model.empty() || model.size() > 128) return invalid("model must be 1-128 characters");
  const TimePoint now = clock_.now();
  const TimePoint at = from.value_or(now);
  if (at < now) return invalid("a price applies from now or later, never to the past (effective_from)");
  const std::string key = rates_.modelKey(model);
  if (Status s = store_.addPrice({key, toUnixMillis(at), usd_per_hour, "api"}, now); !s.ok()) return s;
  std::lock_guard lock(mu_);
  histories_.erase(key);
  return {};
}

Result<std::vector<PricePoint>> CostLedger::history(const std::string& model_key, const std::string& model_name) {
  {
    std::lock_guard lock(mu_);
    auto it = histories_.find(model_key);
    if (it != histories_.end()) return it->second;
  }
  auto h = store_.priceHistory(model_key);
  if (!h.ok()) return h.error();
  if (h->empty()) {
    // A model the catalog does not know: priced by the rates from the beginning.
    PriceRow row{model_key, 0, rates_.wholeGpuPerHour(model_name), "--gpu-hourly-rates"};
    if (Status s = store_.addPrice(row, clock_.now()); !s.ok() && s.error().kind != ErrorKind::kConflict) {
      return s.error();
    }
    h = store_.priceHistory(model_key);
    if (!h.ok()) return h.error();
  }
  std::lock_guard lock(mu_);
  histories_[model_key] = h.value();
  return h;
}

Result<std::optional<Holding>> CostLedger::holdingOf(const CostSession& s, int64_t end_ms) {
  if (!s.slot) return std::optional<Holding>();
  const GpuSlot& g = *s.slot;
  std::string model_name = !g.model.empty() ? g.model : g.product;
  if (model_name.empty()) model_name = "unknown";
  Holding h;
  h.session_id = s.id;
  h.user_id = s.user_id;
  h.team = s.team;
  h.project = s.project;
  h.device = s.device.empty() ? g.gpu_uuid : s.device;
  h.gpu_model = rates_.modelKey(model_name);
  h.profile = g.whole || g.profile.empty() ? "whole" : g.profile;
  h.share = rates_.share(model_name, h.profile, computeCountOf(h.profile));
  h.start_ms = s.created_ms;
  h.end_ms = std::max(s.created_ms, end_ms);
  return std::optional<Holding>(std::move(h));
}

Result<std::vector<LedgerEntry>> CostLedger::price(const Holding& h) {
  // The history is keyed by the catalog key; the rates need a name they match.
  auto prices = history(h.gpu_model, h.gpu_model);
  if (!prices.ok()) return prices.error();
  std::vector<Span> idle;
  if (!h.device.empty() && h.end_ms > h.start_ms) {
    auto spans = store_.idleSpans(h.device, h.start_ms, h.end_ms, options_.idle_utilization);
    if (!spans.ok()) return spans.error();
    idle = std::move(spans).value();
  }
  return priceHolding(h, prices.value(), idle);
}

Result<int> CostLedger::bookEnded() {
  std::lock_guard lock(book_mu_);
  int booked = 0;
  for (;;) {
    auto batch = store_.unbookedSessions(kBookBatch);
    if (!batch.ok()) return batch.error();
    std::vector<std::pair<std::string, std::vector<LedgerEntry>>> priced_batch;
    for (const auto& s : batch.value()) {
      auto h = holdingOf(s, s.ended_ms.value_or(s.created_ms));
      if (!h.ok()) return h.error();
      std::vector<LedgerEntry> entries;
      if (h->has_value()) {
        auto priced = price(**h);
        if (!priced.ok()) return priced.error();
        entries = std::move(priced).value();
      }
      priced_batch.emplace_back(s.id, std::move(entries));
    }
    if (Status st = store_.bookAll(priced_batch); !st.ok()) return st.error();
    booked += static_cast<int>(priced_batch.size());
    {
      std::lock_guard lock(mu_);
      if (booked_) {
        for (const auto& [id, entries] : priced_batch) {
          for (const auto& e : entries) {
            auto& t = (*booked_)[{e.h.user_id, e.h.team, e.h.project, e.h.gpu_model}];
            t.first += e.cost_micros;
            t.second += e.idle_cost_micros;
          }
        }
      }
    }
    if (batch->size() < static_cast<size_t>(kBookBatch)) return booked;
  }
}

Result<CostReport> CostLedger::report(const CostQuery& q) {
  const std::string column = costColumn(q.group_by);
  if (column.empty()) {
    return invalid("group_by must be one of user, team, project, gpu_model, profile, session (got '" +
                   q.group_by.substr(0, 32) + "')");
  }
  std::string filter_column;
  if (!q.filter_by.empty()) {
    filter_column = costColumn(q.filter_by);
    if (filter_column.empty()) return invalid("cannot filter cost by '" + q.filter_by.substr(0, 32) + "'");
  }
  if (q.to_ms <= q.from_ms) return invalid("to must be after from");
  if (auto b = bookEnded(); !b.ok()) return b.error();

  std::map<std::pair<int64_t, std::string>, Totals> cells;
  std::map<std::string, Totals> per_key;
  auto add = [&](const std::string& key, int64_t day_ms, double cost, double idle_cost, double held, double idle) {
    for (Totals* t : {&cells[{bucketStart(day_ms, q.step), key}], &per_key[key]}) {
      t->cost += cost;
      t->idle_cost += idle_cost;
      t->held_ms += held;
      t->idle_ms += idle;
    }
  };
  auto days = store_.sumByDay(column, q.from_ms, q.to_ms, filter_column, q.filter);
  if (!days.ok()) return days.error();
  for (const auto& d : days.value()) add(d.key, d.day_ms, d.cost_micros, d.idle_cost_micros, d.held_ms, d.idle_ms);

  CostReport r;
  r.query = q;
  auto running = runningHoldings(q.from_ms, q.to_ms);
  if (!running.ok()) return running.error();
  for (const auto& held : running.value()) {
    if (!filter_column.empty() && holdingField(held, filter_column) != q.filter) continue;
    auto entries = price(held);
    if (!entries.ok()) return entries.error();
    ++r.running_sessions;
    for (const auto& e : entries.value()) {
      add(holdingField(held, column), bucketStart(e.h.start_ms, CostStep::kDay), static_cast<double>(e.cost_micros),
          static_cast<double>(e.idle_cost_micros), static_cast<double>(e.h.end_ms - e.h.start_ms),
          static_cast<double>(e.idle_ms));
    }
  }
  for (const auto& [k, t] : cells) r.lines.push_back(lineOf(k.second, k.first, t));
  for (const auto& [k, t] : per_key) {
    r.totals.push_back(lineOf(k, q.from_ms, t));
    r.total_micros += r.totals.back().cost_micros;
    r.idle_total_micros += r.totals.back().idle_cost_micros;
  }
  return r;
}

Result<std::map<std::string, HourlyUsage>> CostLedger::hourly(const std::string& group_by, int64_t from_ms,
                                                              int64_t to_ms) {
  const std::string column = costColumn(group_by);
  if (column.empty()) return invalid("cannot group cost by '" + group_by.substr(0, 32) + "'");
  if (to_ms <= from_ms || (to_ms - from_ms) % 3'600'000 != 0) return invalid("hourly: a window of whole hours");
  if (auto b = bookEnded(); !b.ok()) return b.error();
  const size_t hours = static_cast<size_t>((to_ms - from_ms) / 3'600'000);
  std::map<std::string, HourlyUsage> out;
  auto spread = [&](const std::string& key, int64_t start, int64_t end, double cost) {
    const int64_t s = std::max(start, from_ms), e = std::min(end, to_ms);
    if (e <= s || end <= start) return;
    HourlyUsage& u = out[key];
    if (u.held_hours.empty()) {
      u.held_hours.assign(hours, 0.0);
      u.cost_micros.assign(hours, 0.0);
    }
    const double per_ms = cost / static_cast<double>(end - start);
    for (int64_t t = s; t < e;) {
      const size_t i = static_cast<size_t>((t - from_ms) / 3'600'000);
      const int64_t next = std::min(e, from_ms + static_cast<int64_t>(i + 1) * 3'600'000);
      u.held_hours[i] += static_cast<double>(next - t) / 3.6e6;
      u.cost_micros[i] += per_ms * static_cast<double>(next - t);
      t = next;
    }
  };
  auto entries = store_.entriesBetween(column, from_ms, to_ms);
  if (!entries.ok()) return entries.error();
  for (const auto& e : entries.value()) spread(e.key, e.start_ms, e.end_ms, static_cast<double>(e.cost_micros));
  auto running = runningHoldings(from_ms, to_ms);
  if (!running.ok()) return running.error();
  for (const auto& held : running.value()) {
    auto priced = price(held);
    if (!priced.ok()) return priced.error();
    for (const auto& e : priced.value()) {
      spread(holdingField(held, column), e.h.start_ms, e.h.end_ms, static_cast<double>(e.cost_micros));
    }
  }
  return out;
}

Result<std::vector<Holding>> CostLedger::runningHoldings(int64_t from_ms, int64_t to_ms) {
  std::vector<Holding> out;
  const int64_t now = toUnixMillis(clock_.now());
  if (now <= from_ms) return out;
  auto active = store_.activeSessions();
  if (!active.ok()) return active.error();
  for (const auto& s : active.value()) {
    auto h = holdingOf(s, now);
    if (!h.ok()) return h.error();
    if (!h->has_value()) continue;
    Holding held = **h;
    held.start_ms = std::max(held.start_ms, from_ms);
    held.end_ms = std::min(held.end_ms, to_ms);
    if (held.end_ms > held.start_ms) out.push_back(std::move(held));
  }
  return out;
}

Result<std::vector<CostCounter>> CostLedger::counters() {
  if (auto b = bookEnded(); !b.ok()) return b.error();
  std::map<PayerKey, std::pair<int64_t, int64_t>> totals;
  {
    // Under the booking lock: no entry is booked between the sum and its use.
    std::lock_guard book(book_mu_);
    bool loaded = false;
    {
      std::lock_guard lock(mu_);
      loaded = booked_.has_value();
    }
    if (!loaded) {
      auto rows = store_.bookedTotals();
      if (!rows.ok()) return rows.error();
      std::map<PayerKey, std::pair<int64_t, int64_t>> sums;
      for (const auto& r : rows.value()) sums[{r.user_id, r.team, r.project, r.gpu_model}] = {r.cost_micros, r.idle_cost_micros};
      std::lock_guard lock(mu_);
      booked_ = std::move(sums);
    }
    std::lock_guard lock(mu_);
    totals = *booked_;
  }
  auto active = store_.activeSessions();
  if (!active.ok()) return active.error();
  const int64_t now = toUnixMillis(clock_.now());
  for (const auto& s : active.value()) {
    auto h = holdingOf(s, now);
    if (!h.ok()) return h.error();
    if (!h->has_value()) continue;
    auto entries = price(**h);
    if (!entries.ok()) return entries.error();
    for (const auto& e : entries.value()) {
      auto& t = totals[{e.h.user_id, e.h.team, e.h.project, e.h.gpu_model}];
      t.first += e.cost_micros;
      t.second += e.idle_cost_micros;
    }
  }
  std::vector<CostCounter> out;
  for (const auto& [k, v] : totals) {
    out.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), v.first, v.second});
  }
  return out;
}

Result<double> CostLedger::slotPriceNow(const std::string& model_name, const std::string& profile,
                                        int compute_slices) {
  // Read only (never history(), which may record a price): this runs inside
  // the reservation's transaction on the main connection.
  const std::string key = rates_.modelKey(model_name);
  std::vector<PricePoint> prices;
  {
    std::lock_guard lock(mu_);
    if (auto it = histories_.find(key); it != histories_.end()) prices = it->second;
  }
  if (prices.empty()) {
    auto h = store_.priceHistory(key);
    if (!h.ok()) return h.error();
    prices = std::move(h).value();
  }
  const int64_t now = toUnixMillis(clock_.now());
  double whole = prices.empty() ? rates_.wholeGpuPerHour(model_name) : prices.front().usd_per_hour;
  for (const PricePoint& p : prices) {
    if (p.from_ms <= now) whole = p.usd_per_hour;
  }
  return whole * rates_.share(model_name, profile, compute_slices);
}

Result<int64_t> CostLedger::monthToDate(BudgetScope scope, const std::string& name, TimePoint at) {
  const int64_t ms = toUnixMillis(at);
  CostQuery q;
  q.group_by = toString(scope);
  q.from_ms = bucketStart(ms, CostStep::kMonth);
  q.to_ms = nextBucket(q.from_ms, CostStep::kMonth);
  q.step = CostStep::kMonth;
  q.filter_by = toString(scope);
  q.filter = name;
  auto r = report(q);
  if (!r.ok()) return r.error();
  return r->total_micros;
}

}  // namespace sandman
