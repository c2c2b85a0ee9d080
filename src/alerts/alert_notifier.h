// AlertNotifier: delivers firing and resolved alerts to a JSON webhook and to
// Alertmanager's v2 API from one worker thread, with a bounded queue and
// exponential back-off, so the sampler thread never waits on a receiver.
// Thread-safe: the AlertSink calls queue and return; the worker sends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "alerts/alert_engine.h"
#include "common/clock.h"
#include "common/http_client.h"

namespace sandman {

struct NotifierOptions {
  std::string webhook_url;       // empty: no webhook
  std::string alertmanager_url;  // base URL; empty: no Alertmanager
  Millis first_backoff{1000};    // 1 s, 2 s, 4 s ... between attempts
  Millis max_backoff{60000};
  int max_attempts = 8;      // then the delivery is dropped with an error line
  size_t max_queue = 1000;   // per receiver; the oldest delivery goes first
  Millis resend_interval{60000};  // firing alerts re-posted to Alertmanager
  long timeout_ms = 5000;    // per HTTP attempt
};

class AlertNotifier final : public AlertSink {
 public:
  // clock stamps Alertmanager's endsAt; both must outlive the notifier.
  AlertNotifier(NotifierOptions options, const Clock& clock);
  ~AlertNotifier() override;  // stops
  AlertNotifier(const AlertNotifier&) = delete;
  AlertNotifier& operator=(const AlertNotifier&) = delete;

  void start();
  // Joins the worker (an attempt in flight finishes, at most timeout_ms);
  // what is still queued is dropped with one log line. Idempotent.
  void stop();

  void alertChanged(const Alert& a) override;
  void alertStillFiring(const Alert& a) override;

  struct Stats {
    uint64_t delivered = 0;  // 2xx answers
    uint64_t retries = 0;    // attempts after a failure
    uint64_t dropped = 0;    // gave up, refused (4xx) or pushed out of a full queue
  };
  Stats stats() const;
  // Deliveries waiting or in flight, both receivers together (tests poll it to 0).
  size_t queued() const;

 private:
  struct Job {
    std::string body;
    std::string what;  // for log lines: "firing GpuOverheating #12"
    int attempts = 0;
    TimePoint due{};  // on the injected clock
  };
  struct Receiver {
    std::string name;  // "webhook" | "alertmanager"
    std::string url;
    std::deque<Job> queue;  // FIFO: a resolved never overtakes its firing
  };

  void enqueue(Receiver& r, Job job);   // mu_ held
  void enqueueAlertmanager(const std::vector<Alert>& alerts, const std::string& what);  // mu_ held
  void run();
  // Sends one job (mu_ not held); true when done with it (sent or refused).
  bool attempt(const Receiver& r, Job& job);

  const NotifierOptions options_;
  const Clock& clock_;
  HttpClient http_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  Receiver webhook_;       // GUARDED_BY(mu_)
  Receiver alertmanager_;  // GUARDED_BY(mu_)
  std::map<int64_t, Alert> am_firing_;  // GUARDED_BY(mu_): re-sent every resend_interval
  TimePoint next_resend_{};  // GUARDED_BY(mu_)
  Stats stats_;            // GUARDED_BY(mu_)
  size_t in_flight_ = 0;   // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  uint64_t changes_ = 0;   // GUARDED_BY(mu_): bumped with every wake_ notification
  bool started_ = false;
  std::thread worker_;
};

}  // namespace sandman
