#include "api/event_routes.h"

#include <charconv>

#include "alerts/alert_json.h"
#include "api/telemetry_routes.h"
#include "common/log.h"
#include "common/time_format.h"

namespace sandman {

using nlohmann::json;

namespace {

std::string oneLine(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// What a session change is called on the stream.
std::string sessionAction(const Session& s, bool created) {
  if (created) return "created";
  if (s.status == SessionStatus::kEnded || s.status == SessionStatus::kFailed) {
    return s.end_reason == "deleted" ? "deleted" : "ended";
  }
  return "updated";
}

// OpenAPI operation of the stream (api/openapi.h).
constexpr std::string_view kDocs = R"json({
"routes": {
  "GET /events/stream": {"operationId": "streamEvents", "summary": "Server-Sent Events: session, gpu, alert and cost changes", "tag": "Events",
    "description": "Each event has an id: line; reconnect with Last-Event-ID (header or ?last_event_id) to resume. Event types: session, gpu, alert, cost, error.",
    "parameters": [
      {"name": "last_event_id", "in": "query", "schema": {"type": "integer", "minimum": 0}},
      {"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer", "minimum": 0}}],
    "responses": {"200": {"description": "An endless stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    "errors": [400]}
}
})json";

}  // namespace

Result<nlohmann::json> costEventJson(const std::function<Result<nlohmann::json>(const std::string&)>& get,
                                     CostLedger& ledger, TimePoint now) {
  const auto day = std::chrono::floor<std::chrono::days>(now);
  const std::chrono::year_month_day ymd{day};
  const TimePoint month_start = std::chrono::sys_days{ymd.year() / ymd.month() / 1};
  CostQuery q;
  q.group_by = "team";
  q.from_ms = toUnixMillis(month_start);
  q.to_ms = toUnixMillis(now);
  q.step = CostStep::kMonth;
  auto report = ledger.report(q);
  if (!report.ok()) return report.error();
  auto budgets = get("/api/v1/budgets");
  if (!budgets.ok()) return budgets.error();
  json list = budgets->contains("budgets") ? (*budgets)["budgets"] : json::array();
  // Cents: the figure accrues every second, and an event per cent is plenty.
  const double mtd = static_cast<double>((report->total_micros + 5000) / 10000) / 100.0;
  return json{{"month_to_date_usd", mtd}, {"budgets", std::move(list)}};
}

Result<std::optional<uint64_t>> parseLastEventId(const ApiRequest& req) {
  std::string text;
  if (req.has_param("last_event_id")) {
    text = req.get_param_value("last_event_id");
  } else if (req.has_header("last-event-id")) {
    text = req.get_header_value("last-event-id");
  } else {
    return std::optional<uint64_t>();
  }
  uint64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || text.size() > 19 || ec != std::errc() || end != text.data() + text.size()) {
    return invalid("Last-Event-ID must be a whole number, as the stream's id: lines give it");
  }
  return std::optional<uint64_t>(id);
}

EventRoutes::EventRoutes(EventHub& hub, SessionView view, CostEventSource cost,
                         std::chrono::milliseconds cost_min_interval)
    : hub_(hub), view_(std::move(view)), cost_(std::move(cost)), cost_min_interval_(cost_min_interval) {}

EventRoutes::~EventRoutes() { stop(); }

void EventRoutes::registerRoutes(Router& router) {
  for (const char* prefix : kApiPrefixes) {
    router.get(std::string(prefix) + "/events/stream", [this](const ApiRequest& q, ApiResponse& r) { stream(q, r); });
  }
  router.document(kDocs);
}

void EventRoutes::stream(const ApiRequest& req, ApiResponse& res) {
  auto last = parseLastEventId(req);
  if (!last.ok()) return sendError(res, last.error());
  res.status = 200;
  res.content_type = "text/event-stream; charset=utf-8";
  res.set_header("Cache-Control", "no-store");
  // Proxies that buffer (nginx) would hold events back otherwise.
  res.set_header("X-Accel-Buffering", "no");
  res.on_stream = [hub = &hub_, from = last.value()](std::shared_ptr<ResponseStream> s) {
    if (!hub->subscribe(s, from)) {
      s->send("event: error\ndata: {\"error\":\"too many open event streams\",\"code\":\"unavailable\"}\n\n");
      s->end();
    }
  };
}

void EventRoutes::onSession(const Session& s, bool created) {
  hub_.publish("session", oneLine({{"action", sessionAction(s, created)}, {"session", sessionToJson(s, view_)}}));
}

void EventRoutes::onSample(const TelemetrySnapshot& snap) {
  json body = TelemetryRoutes::snapshotJson(snap);
  body["at"] = body["taken_at"];
  hub_.publish("gpu", oneLine(body));
  if (!cost_) return;
  {
    std::lock_guard lock(mu_);
    sampled_ = true;
  }
  wake_.notify_one();
}

void EventRoutes::onAlert(const std::string& action, const Alert& a) {
  hub_.publish("alert", oneLine({{"action", action}, {"alert", alertJson(a)}}));
}

void EventRoutes::start() {
  if (!cost_ || cost_thread_.joinable()) return;
  cost_thread_ = std::thread([this] { costLoop(); });
}

void EventRoutes::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (cost_thread_.joinable()) cost_thread_.join();
}

// At most once per sample and once per cost_min_interval: a month's report
// is a ledger query, not free.
void EventRoutes::costLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || sampled_; });
    if (stopping_) return;
    sampled_ = false;
    lock.unlock();
    auto cost = cost_();
    if (cost.ok()) {
      std::string text = oneLine(cost.value());
      if (text != last_cost_) {
        hub_.publish("cost", text);
        last_cost_ = std::move(text);
      }
    } else {
      logWarn("event stream: cannot read the cost figures", {{"error", cost.error().message}});
    }
    lock.lock();
    wake_.wait_for(lock, cost_min_interval_, [this] { return stopping_; });
    if (stopping_) return;
  }
}

}  // namespace sandman
