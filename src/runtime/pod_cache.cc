#include "runtime/pod_cache.h"

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
    : cache_(client, "/api/v1/namespaces/" + urlEncode(ns) + "/pods", std::move(label_selector), "pod",
             podViewFromJson, [](const PodView& p) { return approximateBytes(p); }) {}

PodCache::~PodCache() { stop(); }

void PodCache::setOptions(const Options& options) { cache_.setOptions(options); }

void PodCache::setListener(std::function<void(const std::string&, const std::optional<PodView>&)> fn) {
  cache_.setListener(std::move(fn));
}

void PodCache::start() { cache_.start(); }
void PodCache::stop() { cache_.stop(); }
bool PodCache::waitSynced(Millis timeout) const { return cache_.waitSynced(timeout); }
std::optional<PodView> PodCache::get(const std::string& name) const { return cache_.get(name); }
std::vector<PodView> PodCache::list() const { return cache_.list(); }
uint64_t PodCache::generation() const { return cache_.generation(); }
uint64_t PodCache::waitForChange(uint64_t since, Millis timeout) const { return cache_.waitForChange(since, timeout); }

PodCache::Stats PodCache::stats() const {
  WatchCacheStats w = cache_.stats();
  Stats s;
  s.lists = w.lists;
  s.watches = w.watches;
  s.gone = w.gone;
  s.events = w.events;
  s.bookmarks = w.bookmarks;
  s.errors = w.errors;
  s.pods = w.objects;
  s.synced = w.synced;
  s.last_error = w.last_error;
  s.pages = w.pages;
  s.resource_version = w.resource_version;
  s.bytes = w.bytes;
  return s;
}

}  // namespace sandman
