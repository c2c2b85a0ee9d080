// NodeMetaStore: Sandman's own record of a GPU node (tables gpu_node_meta and
// gpu_node_events, made by SqliteStore's migrations): the cluster it is
// filed under, a description, labels, and its status (active, maintenance,
// drained), with a log of what changed. On Docker it holds the local host's
// record; a node never edited has no row (active, no metadata). Own
// connection; thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

struct sqlite3;

namespace sandman {

struct NodeMeta {
  std::string name;
  std::string cluster;
  std::string description;
  std::map<std::string, std::string> labels;
  std::string status = "active";  // active | maintenance | drained
  std::string status_reason;
  TimePoint created_at{}, updated_at{};
  std::string updated_by;
};

// What changed on a node: kind "status", "metadata" or "mig".
struct NodeEvent {
  int64_t id = 0;
  std::string node;
  TimePoint at{};
  std::string kind;
  std::string detail;  // one human sentence
  std::string by;
};

// "active", "maintenance", "drained".
bool validNodeStatus(const std::string& s);
// Whether a node in this status takes new sessions.
inline bool nodeStatusTakesSessions(const std::string& s) { return s.empty() || s == "active"; }

class NodeMetaStore {
 public:
  static Result<std::unique_ptr<NodeMetaStore>> open(const std::string& path);  // after SqliteStore::open
  ~NodeMetaStore();
  NodeMetaStore(const NodeMetaStore&) = delete;
  NodeMetaStore& operator=(const NodeMetaStore&) = delete;

  Result<std::optional<NodeMeta>> get(const std::string& name);
  Result<std::vector<NodeMeta>> list();
  // Inserts or overwrites the row, and appends `event` (when its kind is
  // set) in the same transaction.
  Status put(const NodeMeta& m, const NodeEvent& event);
  // Removes the row (kNotFound when there is none) and logs `event`.
  Status remove(const std::string& name, const NodeEvent& event);
  Status addEvent(const NodeEvent& e);
  // Newest first; node empty: every node; since: only events at or after it.
  Result<std::vector<NodeEvent>> events(const std::string& node, std::optional<TimePoint> since, size_t limit);

 private:
  NodeMetaStore(sqlite3* db, std::string path);
  Status insertEvent(const NodeEvent& e);  // under mu_
  std::mutex mu_;
  const std::string path_;
  sqlite3* db_;  // GUARDED_BY(mu_)
};

}  // namespace sandman
