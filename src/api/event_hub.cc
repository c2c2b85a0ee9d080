#include "api/event_hub.h"

#include <algorithm>

namespace sandman {

EventHub::EventHub(EventHubOptions options) : options_(options), next_id_(std::max<uint64_t>(options.first_id, 1)) {}

EventHub::~EventHub() { stop(); }

void EventHub::start() {
  keep_alive_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      if (wake_.wait_for(lock, options_.keep_alive, [this] { return stopping_; })) break;
      lock.unlock();
      keepAlive();
      lock.lock();
    }
  });
}

void EventHub::stop() {
  std::vector<std::shared_ptr<ResponseStream>> open;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    open.swap(streams_);
  }
  wake_.notify_all();
  if (keep_alive_.joinable()) keep_alive_.join();
  for (auto& s : open) s->end();
}

std::string EventHub::format(const HubEvent& e) {
  return "id: " + std::to_string(e.id) + "\nevent: " + e.type + "\ndata: " + e.data + "\n\n";
}

uint64_t EventHub::publish(const std::string& type, std::string data) {
  // An SSE data line ends at a newline: a second line would be a new field.
  std::replace(data.begin(), data.end(), '\n', ' ');
  std::lock_guard lock(mu_);
  HubEvent e{next_id_++, type, std::move(data)};
  const std::string text = format(e);
  ring_.push_back(std::move(e));
  while (ring_.size() > options_.ring) ring_.pop_front();
  // Under the lock, so every stream sees events in id order with no gap
  // against subscribe(); send() only queues.
  std::erase_if(streams_, [&](const std::shared_ptr<ResponseStream>& s) { return !s->send(text); });
  return next_id_ - 1;
}

std::string EventHub::backlogLocked(std::optional<uint64_t> last_id) const {
  // retry: how long an EventSource waits before reconnecting.
  std::string out = ": connected\nretry: 3000\n\n";
  if (!last_id) return out;
  const uint64_t last = next_id_ - 1;
  const uint64_t oldest = ring_.empty() ? next_id_ : ring_.front().id;
  if (*last_id == last) return out;
  if (*last_id > last || *last_id + 1 < oldest) {
    // Older than the ring (or from a different run): the client must reload
    // its state; what follows is live. The reset carries the current id, so
    // the client's next reconnect resumes from here.
    if (last >= options_.first_id) out += "id: " + std::to_string(last) + "\n";
    out += "event: reset\ndata: {\"reason\":\"" +
           std::string(*last_id > last ? "unknown event id" : "events since then are no longer kept") +
           "\",\"last_event_id\":" + std::to_string(last) + "}\n\n";
    return out;
  }
  for (const auto& e : ring_) {
    if (e.id > *last_id) out += format(e);
  }
  return out;
}

std::string EventHub::backlog(std::optional<uint64_t> last_id) {
  std::lock_guard lock(mu_);
  return backlogLocked(last_id);
}

bool EventHub::subscribe(std::shared_ptr<ResponseStream> stream, std::optional<uint64_t> last_id) {
  std::lock_guard lock(mu_);
  if (stopping_ || streams_.size() >= options_.max_streams) return false;
  if (!stream->send(backlogLocked(last_id))) return true;
  streams_.push_back(std::move(stream));
  return true;
}

void EventHub::keepAlive() {
  std::lock_guard lock(mu_);
  std::erase_if(streams_, [](const std::shared_ptr<ResponseStream>& s) { return !s->send(": keep-alive\n\n"); });
}

size_t EventHub::streams() {
  std::lock_guard lock(mu_);
  std::erase_if(streams_, [](const std::shared_ptr<ResponseStream>& s) { return !s->isOpen(); });
  return streams_.size();
}

uint64_t EventHub::lastId() {
  std::lock_guard lock(mu_);
  return next_id_ - 1;
}

}  // namespace sandman
