#include "runtime/pod_cache.h"

#include <algorithm>

#include "common/log.h"

namespace sandman {
namespace {

using json = nlohmann::json;

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& field(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

std::map<std::string, std::string> stringMap(const json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) out.emplace(k, v.get<std::string>());
  }
  return out;
}

size_t stringBytes(const std::string& s) {
  // Strings up to the small-string capacity live inside the object itself.
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}

size_t mapBytes(const std::map<std::string, std::string>& m) {
  // A red-black tree node: three pointers and a colour, then the pair.
  constexpr size_t kNode = 4 * sizeof(void*) + sizeof(std::pair<const std::string, std::string>);
  size_t n = 0;
  for (const auto& [k, v] : m) n += kNode + stringBytes(k) + stringBytes(v);
  return n;
}

}  // namespace

PodView podViewFromJson(const json& pod) {
  PodView v;
  const json& meta = field(pod, "metadata");
  v.name = str(meta, "name");
  v.uid = str(meta, "uid");
  v.resource_version = str(meta, "resourceVersion");
  v.labels = stringMap(field(meta, "labels"));
  v.annotations = stringMap(field(meta, "annotations"));
  v.deleting = !str(meta, "deletionTimestamp").empty();
  v.node_name = str(field(pod, "spec"), "nodeName");
  const json& status = field(pod, "status");
  v.pod_ip = str(status, "podIP");
  v.phase = str(status, "phase");
  v.reason = str(status, "reason");
  v.message = str(status, "message");
  const json& conditions = field(status, "conditions");
  if (conditions.is_array()) {
    for (const auto& c : conditions) {
      std::string type = str(c, "type");
      std::string state = str(c, "status");
      if (type == "Ready") v.ready = state == "True";
      if (type == "PodScheduled" && state == "False" && str(c, "reason") == "Unschedulable") {
        v.unschedulable_message = str(c, "message");
      }
    }
  }
  const json& containers = field(status, "containerStatuses");
  if (containers.is_array() && !containers.empty()) {
    const json& state = field(containers[0], "state");
    const json& waiting = field(state, "waiting");
    v.waiting_reason = str(waiting, "reason");
    v.waiting_message = str(waiting, "message");
    const json& terminated = field(state, "terminated");
    if (terminated.is_object()) {
      v.terminated_reason = str(terminated, "reason");
      v.terminated_message = str(terminated, "message");
      const json& code = field(terminated, "exitCode");
      if (code.is_number_integer()) v.exit_code = code.get<int>();
    }
  }
  return v;
}

bool podServing(const PodView& pod) {
  return pod.phase == "Running" && pod.ready && !pod.pod_ip.empty() && !pod.deleting;
}

size_t approximateBytes(const PodView& p) {
  size_t n = sizeof(PodView);
  for (const std::string* s : {&p.name, &p.uid, &p.resource_version, &p.node_name, &p.pod_ip, &p.phase, &p.reason,
                               &p.message, &p.unschedulable_message, &p.waiting_reason, &p.waiting_message,
                               &p.terminated_reason, &p.terminated_message}) {
    n += stringBytes(*s);
  }
  return n + mapBytes(p.labels) + mapBytes(p.annotations);
}

// --- PodCache -------------------------------------------------------------------------------

PodCache::PodCache(KubeClient& client, std::string ns, std::string label_selector)
    : client_(client), ns_(std::move(ns)), selector_(std::move(label_selector)) {}

PodCache::~PodCache() { stop(); }

void PodCache::setOptions(const Options& options) { options_ = options; }

void PodCache::setListener(std::function<void(const std::string&, const std::optional<PodView>&)> fn) {
  listener_ = std::move(fn);
}

void PodCache::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  backoff_ = Millis(0);
  thread_ = std::thread([this] { run(); });
}

void PodCache::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool PodCache::waitSynced(Millis timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return synced_; });
}

std::optional<PodView> PodCache::get(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = pods_.find(name);
  if (it == pods_.end()) return std::nullopt;
  return it->second;
}

std::vector<PodView> PodCache::list() const {
  std::lock_guard lock(mu_);
  std::vector<PodView> out;
  out.reserve(pods_.size());
  for (const auto& [name, pod] : pods_) out.push_back(pod);
  return out;
}

uint64_t PodCache::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

uint64_t PodCache::waitForChange(uint64_t since, Millis timeout) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return generation_ > since; });
  return generation_;
}

PodCache::Stats PodCache::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.pods = pods_.size();
  s.synced = synced_;
  s.resource_version = rv_;
  s.bytes = 0;
  for (const auto& [name, pod] : pods_) s.bytes += approximateBytes(pod);
  return s;
}

uint64_t PodCache::eventCount() const {
  std::lock_guard lock(mu_);
  return stats_.events + stats_.bookmarks;
}

std::string PodCache::collectionPath() const { return "/api/v1/namespaces/" + urlEncode(ns_) + "/pods"; }

void PodCache::run() {
  logInfo("pod_cache_start", {{"namespace", ns_}, {"selector", selector_}});
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
      logInfo("pod_cache_gone", {{"namespace", ns_}, {"action", "relist"}});
      continue;
    }
    // A stream the server ended at once, with nothing in it, is a fault to back off from, not a loop.
    bool quick = std::chrono::steady_clock::now() - started < std::chrono::seconds(1) &&
                 eventCount() == events_before;
    if (quick) backoffWait();
    else backoff_ = Millis(0);
  }
}

Status PodCache::relist() {
  std::map<std::string, PodView> fresh;
  std::string rv, cont;
  uint64_t pages = 0;
  int restarts = 0;
  do {
    std::string path = collectionPath() + "?limit=" + std::to_string(options_.page_size);
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
                   "list pods in " + ns_ + ": " + r->message()};
    }
    ++pages;
    const json& items = r->body.contains("items") ? r->body["items"] : json::array();
    for (const auto& item : items) {
      PodView v = podViewFromJson(item);
      std::string name = v.name;
      fresh.insert_or_assign(std::move(name), std::move(v));
    }
    const json& meta = r->body.contains("metadata") ? r->body["metadata"] : json::object();
    rv = str(meta, "resourceVersion");
    cont = str(meta, "continue");
  } while (!cont.empty() && !stop_);
  if (stop_) return unavailable("stopped");
  if (rv.empty()) return unavailable("list pods in " + ns_ + ": no resourceVersion in the answer");

  std::vector<Change> changes;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, old] : pods_) {
      if (!fresh.count(name)) changes.emplace_back(name, std::nullopt);
    }
    for (const auto& [name, pod] : fresh) {
      auto it = pods_.find(name);
      if (it == pods_.end() || it->second.resource_version != pod.resource_version) changes.emplace_back(name, pod);
    }
    pods_ = std::move(fresh);
    rv_ = rv;
    ++generation_;
    ++stats_.lists;
    stats_.pages += pages;
  }
  cv_.notify_all();
  notify(changes);
  {
    // Synced once the listener has heard of every listed pod too.
    std::lock_guard lock(mu_);
    synced_ = true;
  }
  cv_.notify_all();
  return Status();
}

Result<KubeClient::WatchEnd> PodCache::watchOnce() {
  std::string rv;
  {
    std::lock_guard lock(mu_);
    rv = rv_;
    ++stats_.watches;
  }
  std::uniform_int_distribution<int> timeout(options_.watch_timeout_min_s,
                                             std::max(options_.watch_timeout_min_s, options_.watch_timeout_max_s));
  std::string path = collectionPath() + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + urlEncode(rv) +
                     "&timeoutSeconds=" + std::to_string(timeout(rng_));
  if (!selector_.empty()) path += "&labelSelector=" + urlEncode(selector_);
  return client_.watch(
      path, [this](const std::string& type, const json& object) { return onEvent(type, object); }, stop_);
}

bool PodCache::onEvent(const std::string& type, const json& object) {
  const json& meta = field(object, "metadata");
  if (type == "BOOKMARK") {
    std::string rv = str(meta, "resourceVersion");
    std::lock_guard lock(mu_);
    if (!rv.empty()) rv_ = rv;
    ++stats_.bookmarks;
    return !stop_;
  }
  std::vector<Change> changes;
  if (type == "ADDED" || type == "MODIFIED") {
    PodView v = podViewFromJson(object);
    if (v.name.empty()) return !stop_;
    {
      std::lock_guard lock(mu_);
      if (!v.resource_version.empty()) rv_ = v.resource_version;
      pods_.insert_or_assign(v.name, v);
      ++generation_;
      ++stats_.events;
    }
    changes.emplace_back(v.name, std::move(v));
  } else if (type == "DELETED") {
    std::string name = str(meta, "name");
    std::string rv = str(meta, "resourceVersion");
    {
      std::lock_guard lock(mu_);
      if (!rv.empty()) rv_ = rv;
      pods_.erase(name);
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

void PodCache::notify(const std::vector<Change>& changes) {
  if (!listener_) return;
  for (const auto& [name, pod] : changes) listener_(name, pod);
}

void PodCache::recordError(const Error& e) {
  {
    std::lock_guard lock(mu_);
    ++stats_.errors;
    stats_.last_error = e.message;
  }
  logWarn("pod_cache_error", {{"namespace", ns_}, {"error", e.message}});
}

void PodCache::backoffWait() {
  backoff_ = backoff_.count() == 0 ? options_.backoff_min : std::min(backoff_ * 2, options_.backoff_max);
  // Jitter: replicas that lost the API server together do not come back in step.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  Millis wait(static_cast<Millis::rep>(static_cast<double>(backoff_.count()) * jitter(rng_)));
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [&] { return stop_.load(); });
}

}  // namespace sandman
