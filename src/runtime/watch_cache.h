// WatchCache<View>: one collection of Kubernetes objects (session pods, nodes)
// kept current by list-then-watch (client-go's reflector), each object held as
// a compact View. PodCache and NodeCache are this with their own views.
// Thread-safe; one thread of its own.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/log.h"
#include "common/result.h"
#include "runtime/kube_client.h"

namespace sandman {

// Knobs for tests and benchmarks; the defaults are the production values.
struct WatchCacheOptions {
  Millis backoff_min{1000};
  Millis backoff_max{30000};
  int watch_timeout_min_s = 300;  // timeoutSeconds is drawn from [min, max] per watch
  int watch_timeout_max_s = 600;
  int page_size = 500;
};

struct WatchCacheStats {
  uint64_t lists = 0, watches = 0, gone = 0, events = 0, bookmarks = 0, errors = 0;
  size_t objects = 0;
  bool synced = false;
  std::string last_error;
  uint64_t pages = 0;            // list pages fetched (continue followed)
  std::string resource_version;  // where the next watch starts
  size_t bytes = 0;              // the view's approximate bytes over the cached objects
};

namespace watch_cache_detail {
inline std::string str(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
}  // namespace watch_cache_detail

// View needs `name` and `resource_version` members. `parse` turns an object as
// the API returns it into a View; `bytes` estimates one View's memory.
template <class View>
class WatchCache {
 public:
  using Listener = std::function<void(const std::string& name, const std::optional<View>& view)>;

  // collection_path: "/api/v1/namespaces/NS/pods", "/api/v1/nodes"; kind: how logs name it ("pod", "node").
  WatchCache(KubeClient& client, std::string collection_path, std::string label_selector, std::string kind,
             std::function<View(const nlohmann::json&)> parse, std::function<size_t(const View&)> bytes)
      : client_(client),
        path_(std::move(collection_path)),
        selector_(std::move(label_selector)),
        kind_(std::move(kind)),
        parse_(std::move(parse)),
        bytes_(std::move(bytes)) {}
  ~WatchCache() { stop(); }
  WatchCache(const WatchCache&) = delete;
  WatchCache& operator=(const WatchCache&) = delete;

  void setOptions(const WatchCacheOptions& options) { options_ = options; }  // before start()
  void setListener(Listener fn) { listener_ = std::move(fn); }                // before start()

  // List (limit=page_size, follow continue), then watch (allowWatchBookmarks, timeoutSeconds random in range),
  // re-watch from the last RV when a stream ends, relist on 410 (objects missing after the relist are deleted and
  // reported), back off with jitter on errors. start() after stop() resumes from the last resourceVersion.
  void start() {
    if (thread_.joinable()) return;
    stop_ = false;
    backoff_ = Millis(0);
    thread_ = std::thread([this] { run(); });
  }
  void stop() {  // ends a blocked watch within about a second
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool waitSynced(Millis timeout) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return synced_; });
  }
  std::optional<View> get(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = objects_.find(name);
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<View> list() const {
    std::lock_guard lock(mu_);
    std::vector<View> out;
    out.reserve(objects_.size());
    for (const auto& [name, v] : objects_) out.push_back(v);
    return out;
  }
  uint64_t generation() const {
    std::lock_guard lock(mu_);
    return generation_;
  }
  // Blocks until the cache changed after generation `since` or the timeout; returns the current generation.
  uint64_t waitForChange(uint64_t since, Millis timeout) const {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return generation_ > since; });
    return generation_;
  }
  WatchCacheStats stats() const {
    std::lock_guard lock(mu_);
    WatchCacheStats s = stats_;
    s.objects = objects_.size();
    s.synced = synced_;
    s.resource_version = rv_;
    s.bytes = 0;
    for (const auto& [name, v] : objects_) s.bytes += bytes_(v);
    return s;
  }

 private:
  using Change = std::pair<std::string, std::optional<View>>;

  uint64_t eventCount() const {
    std::lock_guard lock(mu_);
    return stats_.events + stats_.bookmarks;
  }

  void run() {
    logInfo(kind_ + "_cache_start", {{"collection", path_}, {"selector", selector_}});
    while (!stop_) {
      bool need_list;
      {
        std::lock_guard lock(mu_);
        need_list = rv_.empty();
      }
      if (need_list) {
        Status st = relist();
        if (stop_) break;
        if (!st.ok()) {
          recordError(st.error());
          backoffWait();
          continue;
        }
        backoff_ = Millis(0);
      }
      auto started = std::chrono::steady_clock::now();
      uint64_t events_before = eventCount();
      auto end = watchOnce();
      if (stop_) break;
      if (!end.ok()) {
        // The resourceVersion is kept: a resumed watch loses nothing, and one
        // that is too old by then answers 410 and a relist follows.
        recordError(end.error());
        backoffWait();
        continue;
      }
      if (*end == KubeClient::WatchEnd::kGone) {
        {
          std::lock_guard lock(mu_);
          ++stats_.gone;
          rv_.clear();
        }
        logInfo(kind_ + "_cache_gone", {{"collection", path_}, {"action", "relist"}});
        continue;
      }
      // A stream the server ended at once, with nothing in it, is a fault to back off from, not a loop.
      bool quick = std::chrono::steady_clock::now() - started < std::chrono::seconds(1) &&
                   eventCount() == events_before;
      if (quick) backoffWait();
      else backoff_ = Millis(0);
    }
  }

  Status relist() {
    using watch_cache_detail::str;
    std::map<std::string, View> fresh;
    std::string rv, cont;
    uint64_t pages = 0;
    int restarts = 0;
    do {
      std::string path = path_ + "?limit=" + std::to_string(options_.page_size);
      if (!selector_.empty()) path += "&labelSelector=" + urlEncode(selector_);
      if (!cont.empty()) path += "&continue=" + urlEncode(cont);
      auto r = client_.get(path);
      if (!r.ok()) return r.error();
      if (r->status == 410 && !cont.empty() && restarts++ < 3) {
        // The continue token outlived etcd's compaction: the snapshot is gone, start over.
        fresh.clear();
        cont.clear();
        continue;
      }
      if (r->status != 200) {
        return Error{r->status >= 500 || r->status == 429 ? ErrorKind::kUnavailable : ErrorKind::kInvalid,
                     "list " + path_ + ": " + r->message()};
      }
      ++pages;
      auto items = r->body.find("items");
      if (items != r->body.end() && items->is_array()) {
        for (const auto& item : *items) {
          View v = parse_(item);
          std::string name = v.name;
          fresh.insert_or_assign(std::move(name), std::move(v));
        }
      }
      const nlohmann::json& meta = r->body.contains("metadata") ? r->body["metadata"] : nlohmann::json::object();
      rv = str(meta, "resourceVersion");
      cont = str(meta, "continue");
    } while (!cont.empty() && !stop_);
    if (stop_) return unavailable("stopped");
    if (rv.empty()) return unavailable("list " + path_ + ": no resourceVersion in the answer");

    std::vector<Change> changes;
    {
      std::lock_guard lock(mu_);
      for (const auto& [name, old] : objects_) {
        if (!fresh.count(name)) changes.emplace_back(name, std::nullopt);
      }
      for (const auto& [name, v] : fresh) {
        auto it = objects_.find(name);
        if (it == objects_.end() || it->second.resource_version != v.resource_version) changes.emplace_back(name, v);
      }
      objects_ = std::move(fresh);
      rv_ = rv;
      ++generation_;
      ++stats_.lists;
      stats_.pages += pages;
    }
    cv_.notify_all();
    notify(changes);
    {
      // Synced once the listener has heard of every listed object too.
      std::lock_guard lock(mu_);
      synced_ = true;
    }
    cv_.notify_all();
    return Status();
  }

  Result<KubeClient::WatchEnd> watchOnce() {
    std::string rv;
    {
      std::lock_guard lock(mu_);
      rv = rv_;
      ++stats_.watches;
    }
    std::uniform_int_distribution<int> timeout(options_.watch_timeout_min_s,
                                               std::max(options_.watch_timeout_min_s, options_.watch_timeout_max_s));
    std::string path = path_ + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + urlEncode(rv) +
                       "&timeoutSeconds=" + std::to_string(timeout(rng_));
    if (!selector_.empty()) path += "&labelSelector=" + urlEncode(selector_);
    return client_.watch(
        path, [this](const std::string& type, const nlohmann::json& object) { return onEvent(type, object); },
        stop_);
  }

  bool onEvent(const std::string& type, const nlohmann::json& object) {
    using watch_cache_detail::str;
    const nlohmann::json& meta = object.is_object() && object.contains("metadata") ? object["metadata"]
                                                                                   : nlohmann::json::object();
    if (type == "BOOKMARK") {
      std::string rv = str(meta, "resourceVersion");
      std::lock_guard lock(mu_);
      if (!rv.empty()) rv_ = rv;
      ++stats_.bookmarks;
      return !stop_;
    }
    std::vector<Change> changes;
    if (type == "ADDED" || type == "MODIFIED") {
      View v = parse_(object);
      if (v.name.empty()) return !stop_;
      {
        std::lock_guard lock(mu_);
        if (!v.resource_version.empty()) rv_ = v.resource_version;
        objects_.insert_or_assign(v.name, v);
        ++generation_;
        ++stats_.events;
      }
      std::string name = v.name;
      changes.emplace_back(std::move(name), std::move(v));
    } else if (type == "DELETED") {
      std::string name = str(meta, "name");
      std::string rv = str(meta, "resourceVersion");
      {
        std::lock_guard lock(mu_);
        if (!rv.empty()) rv_ = rv;
        objects_.erase(name);
        ++generation_;
        ++stats_.events;
      }
      changes.emplace_back(name, std::nullopt);
    } else {
      return !stop_;  // an event type of a later API: nothing to apply
    }
    cv_.notify_all();
    notify(changes);
    return !stop_;
  }

  void notify(const std::vector<Change>& changes) {
    if (!listener_) return;
    for (const auto& [name, v] : changes) listener_(name, v);
  }

  void recordError(const Error& e) {
    {
      std::lock_guard lock(mu_);
      ++stats_.errors;
      stats_.last_error = e.message;
    }
    logWarn(kind_ + "_cache_error", {{"collection", path_}, {"error", e.message}});
  }

  void backoffWait() {
    backoff_ = backoff_.count() == 0 ? options_.backoff_min : std::min(backoff_ * 2, options_.backoff_max);
    // Jitter: replicas that lost the API server together do not come back in step.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    Millis wait(static_cast<Millis::rep>(static_cast<double>(backoff_.count()) * jitter(rng_)));
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait, [&] { return stop_.load(); });
  }

  KubeClient& client_;
  const std::string path_;
  const std::string selector_;
  const std::string kind_;
  const std::function<View(const nlohmann::json&)> parse_;
  const std::function<size_t(const View&)> bytes_;
  WatchCacheOptions options_;
  Listener listener_;
  std::mt19937 rng_{std::random_device{}()};  // the thread's own
  Millis backoff_{0};                         // the thread's own

  std::atomic<bool> stop_{false};
  std::thread thread_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // generation_, synced_ and stop_ changes
  std::map<std::string, View> objects_;  // guarded by mu_
  std::string rv_;                       // guarded by mu_; empty: list first
  uint64_t generation_ = 0;              // guarded by mu_
  bool synced_ = false;                  // guarded by mu_
  WatchCacheStats stats_;                // guarded by mu_ (objects/synced/rv/bytes filled in by stats())
};

}  // namespace sandman
