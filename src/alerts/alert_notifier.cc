#include "alerts/alert_notifier.h"

#include <algorithm>

#include "alerts/alert_json.h"
#include "common/log.h"
#include "common/redact.h"

namespace sandman {
namespace {


enum class Outcome { kSent, kRefused, kRetry };

std::string describe(const Alert& a) {
  return std::string(alertStateName(a.state)) + " " + a.rule + " #" + std::to_string(a.id);
}

// A receiver that is down or overloaded may recover; one that says the
// request is wrong (400, 404, 401) will say it again, so that is final.
bool retryable(long status) { return status >= 500 || status == 429 || status == 408; }

std::string trimmedBody(const std::string& b) { return b.substr(0, 200); }

}  // namespace

AlertNotifier::AlertNotifier(NotifierOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  webhook_.name = "webhook";
  webhook_.url = options_.webhook_url;
  alertmanager_.name = "alertmanager";
  if (!options_.alertmanager_url.empty()) {
    std::string base = options_.alertmanager_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    alertmanager_.url = base + "/api/v2/alerts";
  }
}

AlertNotifier::~AlertNotifier() { stop(); }

void AlertNotifier::start() {
  std::lock_guard lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  worker_ = std::thread([this] { run(); });
}

void AlertNotifier::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    ++changes_;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::lock_guard lock(mu_);
  size_t left = webhook_.queue.size() + alertmanager_.queue.size();
  if (left > 0) logWarn("alert deliveries dropped at shutdown", {{"queued", std::to_string(left)}});
}

void AlertNotifier::alertChanged(const Alert& a) {
  {
    std::lock_guard lock(mu_);
    if (!webhook_.url.empty()) {
      nlohmann::json body = alertJson(a);
      body["status"] = alertStateName(a.state);  // what this delivery announces
      enqueue(webhook_, Job{body.dump(), describe(a)});
    }
    if (!alertmanager_.url.empty()) {
      if (a.state == AlertState::kFiring) {
        if (am_firing_.empty()) next_resend_ = clock_.now() + options_.resend_interval;
        am_firing_[a.id] = a;
      } else {
        am_firing_.erase(a.id);
      }
      enqueueAlertmanager({a}, describe(a));
    }
    ++changes_;
  }
  wake_.notify_all();
}

void AlertNotifier::alertStillFiring(const Alert& a) {
  {
    std::lock_guard lock(mu_);
    if (alertmanager_.url.empty()) return;
    if (am_firing_.empty()) next_resend_ = clock_.now() + options_.resend_interval;
    am_firing_[a.id] = a;
    enqueueAlertmanager({a}, "restored " + describe(a));
    ++changes_;
  }
  wake_.notify_all();
}

void AlertNotifier::enqueueAlertmanager(const std::vector<Alert>& alerts, const std::string& what) {
  // A firing alert stays valid for four re-send intervals: a daemon that dies
  // lets it lapse in Alertmanager instead of paging forever.
  TimePoint valid_until = clock_.now() + 4 * options_.resend_interval;
  enqueue(alertmanager_, Job{alertmanagerAlerts(alerts, valid_until).dump(), what});
}

void AlertNotifier::enqueue(Receiver& r, Job job) {
  job.due = clock_.now();
  r.queue.push_back(std::move(job));
  while (r.queue.size() > options_.max_queue) {
    logWarn("alert delivery queue full; dropped the oldest",
            {{"receiver", r.name}, {"alert", r.queue.front().what}, {"max_queue", std::to_string(options_.max_queue)}});
    r.queue.pop_front();
    ++stats_.dropped;
  }
}

bool AlertNotifier::attempt(const Receiver& r, Job& job) {
  HttpRequest req;
  req.method = "POST";
  req.url = r.url;
  req.body = job.body;
  req.headers = {"Content-Type: application/json", "User-Agent: sandman-alerts"};
  req.timeout_ms = options_.timeout_ms;
  ++job.attempts;
  auto resp = http_.send(req);
  Outcome outcome;
  std::string detail;
  if (!resp.ok()) {
    outcome = Outcome::kRetry;
    detail = resp.error().message;
  } else if (resp->status >= 200 && resp->status < 300) {
    outcome = Outcome::kSent;
  } else {
    outcome = retryable(resp->status) ? Outcome::kRetry : Outcome::kRefused;
    detail = "HTTP " + std::to_string(resp->status) + ": " + trimmedBody(resp->body);
  }
  std::lock_guard lock(mu_);
  switch (outcome) {
    case Outcome::kSent:
      ++stats_.delivered;
      logInfo("alert delivered", {{"receiver", r.name}, {"alert", job.what}, {"attempt", std::to_string(job.attempts)}});
      return true;
    case Outcome::kRefused:
      ++stats_.dropped;
      logError("alert delivery refused; not retried (check the receiver URL and its logs)",
               {{"receiver", r.name}, {"url", redactUrl(r.url)}, {"alert", job.what}, {"error", detail}});
      return true;
    case Outcome::kRetry:
      break;
  }
  if (job.attempts >= options_.max_attempts) {
    ++stats_.dropped;
    logError("alert delivery failed; giving up",
             {{"receiver", r.name}, {"url", redactUrl(r.url)}, {"alert", job.what},
              {"attempts", std::to_string(job.attempts)}, {"error", detail}});
    return true;
  }
  int64_t factor = int64_t{1} << std::min(job.attempts - 1, 20);
  Millis backoff = std::min(options_.first_backoff * factor, options_.max_backoff);
  job.due = clock_.now() + backoff;
  ++stats_.retries;
  logWarn("alert delivery failed; will retry",
          {{"receiver", r.name}, {"alert", job.what}, {"attempt", std::to_string(job.attempts)},
           {"retry_in_ms", std::to_string(backoff.count())}, {"error", detail}});
  return false;
}

void AlertNotifier::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = clock_.now();
    bool resending = !alertmanager_.url.empty() && !am_firing_.empty();
    if (resending && now >= next_resend_) {
      // Only when nothing is waiting: a queued post refreshes them anyway.
      if (alertmanager_.queue.empty()) {
        std::vector<Alert> firing;
        for (const auto& [_, a] : am_firing_) firing.push_back(a);
        enqueueAlertmanager(firing, "re-send of " + std::to_string(firing.size()) + " firing");
      }
      next_resend_ = now + options_.resend_interval;
    }
    Receiver* ready = nullptr;
    auto wake_at = TimePoint::max();
    for (Receiver* r : {&webhook_, &alertmanager_}) {
      if (r->queue.empty()) continue;
      if (r->queue.front().due <= now) {
        if (ready == nullptr) ready = r;
      } else {
        wake_at = std::min(wake_at, r->queue.front().due);
      }
    }
    if (ready == nullptr) {
      if (resending) wake_at = std::min(wake_at, next_resend_);
      // Back-off and re-send waits run on the injected clock (a test's
      // manual clock moves them); a new alert or stop() ends any wait.
      const uint64_t seen = changes_;
      if (wake_at == TimePoint::max()) {
        wake_.wait(lock, [&] { return changes_ != seen; });
      } else {
        clock_.waitUntil(lock, wake_, wake_at, [&] { return changes_ != seen; });
      }
      continue;
    }
    // Out of the queue while in flight, so a full queue cannot drop it
    // from under the sender; a retry goes back to the front (order kept).
    Job job = std::move(ready->queue.front());
    ready->queue.pop_front();
    Receiver target{ready->name, ready->url, {}};
    ++in_flight_;
    lock.unlock();
    bool done = attempt(target, job);
    lock.lock();
    --in_flight_;
    if (!done) ready->queue.push_front(std::move(job));
  }
}

AlertNotifier::Stats AlertNotifier::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t AlertNotifier::queued() const {
  std::lock_guard lock(mu_);
  return webhook_.queue.size() + alertmanager_.queue.size() + in_flight_;
}

}  // namespace sandman
