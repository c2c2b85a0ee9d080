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
#include "runtime/watch_cache.h"

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
  using Options = WatchCacheOptions;

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
  WatchCache<PodView> cache_;  // the reflector, shared with NodeCache
};

}  // namespace sandman
