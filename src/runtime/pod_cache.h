// PodCache: the session pods of one namespace and label selector, kept current
// by list-then-watch (client-go's reflector: bookmarks, re-watch from the last
// resourceVersion, relist on 410 Gone), so the gateway and the readiness wait
// read pods without asking the API server. Thread-safe; one thread of its own.
#pragma once

#include <atomic>
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
#include "common/result.h"
#include "runtime/kube_client.h"

namespace sandman {

struct PodView {   // only what Sandman needs, kept small (memory per 1,000 pods is a published figure)
  std::string name, uid, resource_version, node_name, pod_ip, phase;  // phase: Pending/Running/Succeeded/Failed
  std::string reason, message;                 // status.reason/message (e.g. DeadlineExceeded)
  std::map<std::string, std::string> labels, annotations;
  bool deleting = false;                       // metadata.deletionTimestamp set
  bool ready = false;                          // condition Ready=True
  std::string unschedulable_message;           // PodScheduled=False with reason Unschedulable: the scheduler's message
  std::string waiting_reason, waiting_message; // first container: state.waiting (ErrImagePull, ImagePullBackOff, ...)
  std::string terminated_reason, terminated_message;
  int exit_code = -1;                          // first container's terminated exit code
};

// The view of a Pod object as the API returns it; absent fields stay empty.
PodView podViewFromJson(const nlohmann::json& pod);
// Serving: Running, Ready, a pod IP and not being deleted (KubeSpawner's rule plus Ready).
bool podServing(const PodView& pod);
// Heap and inline bytes one view holds (strings past the small-string buffer, map nodes).
size_t approximateBytes(const PodView& pod);

class PodCache {
 public:
  // Knobs for tests and benchmarks; the defaults are the production values.
  struct Options {
    Millis backoff_min{1000};
    Millis backoff_max{30000};
    int watch_timeout_min_s = 300;  // timeoutSeconds is drawn from [min, max] per watch
    int watch_timeout_max_s = 600;
    int page_size = 500;
  };

  PodCache(KubeClient& client, std::string ns, std::string label_selector);
  ~PodCache();  // stops
  PodCache(const PodCache&) = delete;
  PodCache& operator=(const PodCache&) = delete;

  void setOptions(const Options& options);  // before start()
  // Its own thread: list (limit=500, follow continue), then watch (allowWatchBookmarks=true, timeoutSeconds
  // random 300-600), re-watch from the last RV when a stream ends, relist on 410 (pods missing after the relist
  // are deleted from the cache and reported), back off with jitter (1 s .. 30 s) on errors. start() after stop()
  // keeps the cache and resumes watching from the last resourceVersion, as after a dropped connection.
  void start();
  void stop();  // ends a blocked watch within about a second
  bool waitSynced(Millis timeout) const;         // first list done (and reported to the listener)
  std::optional<PodView> get(const std::string& name) const;
  std::vector<PodView> list() const;
  // Blocks until the cache changed after generation `since` (any pod added/changed/deleted, or a relist) or the
  // timeout; returns the current generation. generation() gives the current one.
  uint64_t generation() const;
  uint64_t waitForChange(uint64_t since, Millis timeout) const;
  // Called (not under the cache's lock) for each change: the pod's name and its new view, nullopt when deleted.
  void setListener(std::function<void(const std::string& name, const std::optional<PodView>& pod)> fn);  // set before start()
  struct Stats {
    uint64_t lists = 0, watches = 0, gone = 0, events = 0, bookmarks = 0, errors = 0;
    size_t pods = 0;
    bool synced = false;
    std::string last_error;
    uint64_t pages = 0;            // list pages fetched (continue followed)
    std::string resource_version;  // where the next watch starts
    size_t bytes = 0;              // approximateBytes() over the cached views
  };
  Stats stats() const;

 private:
  using Change = std::pair<std::string, std::optional<PodView>>;
  void run();
  Status relist();
  Result<KubeClient::WatchEnd> watchOnce();
  bool onEvent(const std::string& type, const nlohmann::json& object);
  void notify(const std::vector<Change>& changes);
  void recordError(const Error& e);
  void backoffWait();
  std::string collectionPath() const;
  uint64_t eventCount() const;

  KubeClient& client_;
  const std::string ns_;
  const std::string selector_;
  Options options_;
  std::function<void(const std::string&, const std::optional<PodView>&)> listener_;
  std::mt19937 rng_{std::random_device{}()};  // the thread's own
  Millis backoff_{0};                         // the thread's own

  std::atomic<bool> stop_{false};
  std::thread thread_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;          // generation_, synced_ and stop_ changes
  std::map<std::string, PodView> pods_;         // guarded by mu_
  std::string rv_;                              // guarded by mu_; empty: list first
  uint64_t generation_ = 0;                     // guarded by mu_
  bool synced_ = false;                         // guarded by mu_
  Stats stats_;                                 // guarded by mu_ (pods/synced/rv/bytes filled in by stats())
};

}  // namespace sandman
