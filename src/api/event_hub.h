// EventHub: the fan-out behind GET /api/v1/events/stream. Every change worth
// a browser's attention (session, GPU sample, alert, cost) is numbered, kept
// in a bounded ring for reconnecting clients (Last-Event-ID), and queued to
// every open stream without waiting on any of them. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/http_message.h"

namespace sandman {

struct EventHubOptions {
  size_t ring = 4096;                                   // events kept for resuming
  std::chrono::milliseconds keep_alive{15000};          // ": keep-alive" comment interval
  size_t max_streams = 1000;                            // open streams at once
  // First id of this process: ids stay increasing across restarts (a client
  // resuming from an earlier run gets a reset, never someone else's events).
  uint64_t first_id = 1;
};

struct HubEvent {
  uint64_t id = 0;
  std::string type;  // session | gpu | alert | cost | reset
  std::string data;  // one line of JSON
};

class EventHub {
 public:
  explicit EventHub(EventHubOptions options = {});
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // The keep-alive thread; stop() also ends every stream.
  void start();
  void stop();

  // Numbers, keeps and fans out one event; returns its id. `data` must be one line.
  uint64_t publish(const std::string& type, std::string data);
  // Sends what a client resuming after `last_id` missed (or a reset when the
  // ring no longer reaches back that far), then every later event. False
  // (and nothing sent) when the hub is at max_streams.
  bool subscribe(std::shared_ptr<ResponseStream> stream, std::optional<uint64_t> last_id);
  // What subscribe() would send first (tests).
  std::string backlog(std::optional<uint64_t> last_id);
  // One keep-alive round: the comment to every stream, closed ones forgotten.
  void keepAlive();

  size_t streams();
  uint64_t lastId();
  static std::string format(const HubEvent& e);

 private:
  std::string backlogLocked(std::optional<uint64_t> last_id) const;  // mu_ held

  const EventHubOptions options_;
  std::mutex mu_;
  uint64_t next_id_;                                       // GUARDED_BY(mu_)
  std::deque<HubEvent> ring_;                              // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<ResponseStream>> streams_;   // GUARDED_BY(mu_)
  bool stopping_ = false;                                  // GUARDED_BY(mu_)
  std::condition_variable wake_;
  std::thread keep_alive_;
};

}  // namespace sandman
