// The alert notifier against a real HTTP receiver on loopback (cpp-httplib in
// this process): webhook retries with back-off after a 500, refusals are not
// retried, Alertmanager v2 bodies, periodic re-send of firing alerts, the
// bounded queue, and a slow receiver never blocking the caller.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include "alerts/alert_notifier.h"
#include "common/time_format.h"
#include "support/manual_clock.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// A receiver that records request bodies per path and answers with a script.
class Receiver {
 public:
  Receiver() {
    server_.Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      int status = 200;
      {
        std::lock_guard lock(mu_);
        bodies_[req.path].push_back(req.body);
        auto& script = scripts_[req.path];
        if (!script.empty()) {
          status = script.front();
          script.erase(script.begin());
        }
      }
      if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_.load()));
      res.status = status;
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    // Bound: connections wait in the backlog until the loop accepts them.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  void script(const std::string& path, std::vector<int> statuses) {
    std::lock_guard lock(mu_);
    scripts_[path] = std::move(statuses);
  }
  std::vector<std::string> bodies(const std::string& path) {
    std::lock_guard lock(mu_);
    return bodies_[path];
  }
  std::atomic<int> delay_ms_{0};

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> bodies_;
  std::map<std::string, std::vector<int>> scripts_;
};

template <typename Pred>
bool eventually(Pred pred, Millis within = 5000ms) {
  auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

Alert firing(int64_t id, TimePoint at) {
  Alert a;
  a.id = id;
  a.rule = "GpuOverheating";
  a.severity = "critical";
  a.fingerprint = "GpuOverheating/GPU-a";
  a.labels = {{"gpu", "0"}, {"gpu_uuid", "GPU-a"}, {"session_id", "s-0123456789abcdef"}, {"user_id", "alice"}};
  a.state = AlertState::kFiring;
  a.value = 91;
  a.summary = "GPU 0 at 91 C";
  a.pending_at = at - 5min;
  a.fired_at = at;
  return a;
}

NotifierOptions fastOptions() {
  NotifierOptions o;
  o.first_backoff = 20ms;
  o.max_backoff = 100ms;
  o.resend_interval = 60s;
  o.timeout_ms = 2000;
  return o;
}

TEST(AlertNotifier, WebhookIsRetriedAfterA500AndCarriesTheAlert) {
  Receiver rx;
  rx.script("/hook", {500});
  testing::ManualClock clock;
  NotifierOptions o = fastOptions();
  o.webhook_url = rx.url("/hook");
  AlertNotifier n(o, clock);
  n.start();
  const TimePoint fired = clock.now();
  n.alertChanged(firing(7, fired));
  // The back-off runs on the manual clock: it passes only as the test moves it.
  ASSERT_TRUE(eventually([&] { return rx.bodies("/hook").size() == 1; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(rx.bodies("/hook").size(), 1u) << "retried before the back-off passed on the clock";
  ASSERT_TRUE(eventually([&] {
    clock.advance(25ms);
    return rx.bodies("/hook").size() == 2 && n.queued() == 0;
  }));
  auto s = n.stats();
  EXPECT_EQ(s.retries, 1u);
  EXPECT_EQ(s.delivered, 1u);
  json body = json::parse(rx.bodies("/hook")[1]);
  EXPECT_EQ(body["status"], "firing");
  EXPECT_EQ(body["id"], 7);
  EXPECT_EQ(body["rule"], "GpuOverheating");
  EXPECT_EQ(body["labels"]["user_id"], "alice");
  EXPECT_EQ(body["fired_at"], formatRfc3339(fired));
}

TEST(AlertNotifier, RefusalsAreNotRetriedAndAnUnreachableReceiverIsGivenUp) {
  Receiver rx;
  rx.script("/hook", {400});
  testing::ManualClock clock;
  NotifierOptions o = fastOptions();
  o.webhook_url = rx.url("/hook");
  AlertNotifier n(o, clock);
  n.start();
  n.alertChanged(firing(1, clock.now()));
  ASSERT_TRUE(eventually([&] { return n.queued() == 0 && n.stats().dropped == 1; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(rx.bodies("/hook").size(), 1u);

  NotifierOptions dead = fastOptions();
  dead.webhook_url = "http://127.0.0.1:1/hook";  // nothing listens on port 1
  dead.max_attempts = 3;
  AlertNotifier d(dead, clock);
  d.start();
  d.alertChanged(firing(2, clock.now()));
  ASSERT_TRUE(eventually([&] {
    clock.advance(25ms);
    return d.stats().dropped == 1;
  }));
  EXPECT_EQ(d.stats().retries, 2u);
}

TEST(AlertNotifier, AlertmanagerGetsV2AlertsResendsFiringAndEndsResolved) {
  Receiver rx;
  testing::ManualClock clock;
  NotifierOptions o = fastOptions();
  o.alertmanager_url = rx.url("") + "/";  // a trailing slash is tolerated
  o.resend_interval = 150ms;
  AlertNotifier n(o, clock);
  n.start();
  Alert a = firing(3, clock.now());
  const TimePoint first_sent = clock.now();
  n.alertChanged(a);
  ASSERT_TRUE(eventually([&] { return rx.bodies("/api/v2/alerts").size() == 1; }));
  ASSERT_TRUE(eventually([&] {
    clock.advance(50ms);
    return rx.bodies("/api/v2/alerts").size() >= 3;
  }, 3000ms)) << "firing alerts are re-sent every resend_interval (of the clock)";
  json first = json::parse(rx.bodies("/api/v2/alerts")[0]);
  ASSERT_TRUE(first.is_array());
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0]["labels"]["alertname"], "GpuOverheating");
  EXPECT_EQ(first[0]["labels"]["severity"], "critical");
  EXPECT_EQ(first[0]["labels"]["gpu_uuid"], "GPU-a");
  EXPECT_EQ(first[0]["annotations"]["summary"], "GPU 0 at 91 C");
  EXPECT_EQ(first[0]["startsAt"], formatRfc3339(*a.fired_at));
  EXPECT_EQ(first[0]["endsAt"], formatRfc3339(first_sent + 4 * o.resend_interval));

  clock.advance(1min);
  a.state = AlertState::kResolved;
  a.resolved_at = clock.now();
  n.alertChanged(a);
  ASSERT_TRUE(eventually([&] {
    auto b = rx.bodies("/api/v2/alerts");
    return json::parse(b.back())[0]["endsAt"] == formatRfc3339(*a.resolved_at);
  }));
  size_t after_resolve = rx.bodies("/api/v2/alerts").size();
  for (int i = 0; i < 10; ++i) {
    clock.advance(50ms);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(rx.bodies("/api/v2/alerts").size(), after_resolve) << "resolved alerts are not re-sent";
}

TEST(AlertNotifier, RestoredFiringAlertsGoToAlertmanagerOnly) {
  Receiver rx;
  testing::ManualClock clock;
  NotifierOptions o = fastOptions();
  o.alertmanager_url = rx.url("");
  o.webhook_url = rx.url("/hook");
  AlertNotifier n(o, clock);
  n.start();
  n.alertStillFiring(firing(4, clock.now()));
  ASSERT_TRUE(eventually([&] { return rx.bodies("/api/v2/alerts").size() == 1 && n.queued() == 0; }));
  EXPECT_TRUE(rx.bodies("/hook").empty()) << "no second webhook notification after a restart";
}

TEST(AlertNotifier, ASlowReceiverNeverBlocksTheCallerAndTheQueueDropsTheOldest) {
  Receiver rx;
  rx.delay_ms_ = 500;
  testing::ManualClock clock;
  NotifierOptions o = fastOptions();
  o.webhook_url = rx.url("/hook");
  o.max_queue = 3;
  AlertNotifier n(o, clock);
  n.start();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 1; i <= 10; ++i) n.alertChanged(firing(i, clock.now()));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
  ASSERT_TRUE(eventually([&] { return n.queued() == 0; }, 10000ms));
  auto s = n.stats();
  EXPECT_GE(s.dropped, 6u);
  EXPECT_EQ(s.delivered + s.dropped, 10u);
  // The newest survive: the last delivered is alert 10.
  EXPECT_EQ(json::parse(rx.bodies("/hook").back())["id"], 10);
  n.stop();
}

}  // namespace
}  // namespace sandman
