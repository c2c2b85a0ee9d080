// WorkspaceUsageMonitor: how much each user's workspace holds, measured in the
// background and cheaply: where project quotas are enforced, the kernel's
// count for the workspace's project id (two syscalls, no walk); elsewhere an
// incremental st_blocks walk of at most files_per_cycle entries per cycle,
// one workspace after another, each total replaced when its walk completes.
// Thread-safe: its own thread (or runCycle) writes; readers copy.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "workspace/tree_usage.h"

namespace sandman {

struct WorkspaceUsageOptions {
  std::string root;                      // --workspace-root
  Millis interval = std::chrono::seconds(30);  // --workspace-usage-interval: one cycle per interval
  size_t files_per_cycle = 20000;        // walk budget per cycle (where there are no quotas)
  uint64_t quota_bytes = 0;              // --workspace-quota; 0: none
  bool quota_enforced = false;           // project quotas are enforced on root's file system
};

struct WorkspaceUsage {
  std::string user_id;
  uint64_t used_bytes = 0;
  bool measured = false;     // false until its first count or walk completes
  TimePoint measured_at{};
  std::string method;        // "project_quota" or "walk"
  // At or past the quota (with enforcement, writes fail from there on).
  bool overQuota(uint64_t quota_bytes) const { return quota_bytes > 0 && measured && used_bytes >= quota_bytes; }
};

class WorkspaceUsageMonitor {
 public:
  WorkspaceUsageMonitor(WorkspaceUsageOptions options, const Clock& clock);
  ~WorkspaceUsageMonitor();  // stops
  WorkspaceUsageMonitor(const WorkspaceUsageMonitor&) = delete;
  WorkspaceUsageMonitor& operator=(const WorkspaceUsageMonitor&) = delete;

  void start();  // first cycle at once
  void stop();   // idempotent
  // One cycle on the caller's thread.
  void runCycle();

  // Every workspace found under the root, by user id.
  std::vector<WorkspaceUsage> all() const;
  std::optional<WorkspaceUsage> get(const std::string& user_id) const;
  const WorkspaceUsageOptions& options() const { return options_; }
  uint64_t cycles() const { return cycles_.load(); }
  // Entries the walks have visited since start (what the cheapness costs).
  uint64_t walkedEntries() const { return walked_.load(); }

 private:
  std::vector<std::string> listWorkspaces() const;
  bool countByQuota(const std::string& user_id, WorkspaceUsage* out) const;
  void walkSome(const std::vector<std::string>& present);
  void run();

  const WorkspaceUsageOptions options_;
  const Clock& clock_;

  mutable std::mutex mu_;
  std::map<std::string, WorkspaceUsage> table_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                        // GUARDED_BY(mu_)
  std::condition_variable wake_;
  std::thread thread_;

  std::mutex cycle_mu_;  // one cycle at a time; guards the walk state below
  std::vector<std::string> due_;           // workspaces whose walk is still to come this pass
  std::unique_ptr<TreeUsageWalk> walk_;    // the walk in progress
  std::string walking_;                    // whose
  std::atomic<uint64_t> cycles_{0};
  std::atomic<uint64_t> walked_{0};
};

}  // namespace sandman
