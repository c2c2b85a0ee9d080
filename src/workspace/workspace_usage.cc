#include "workspace/workspace_usage.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "common/log.h"
#include "workspace/project_quota.h"

namespace sandman {

WorkspaceUsageMonitor::WorkspaceUsageMonitor(WorkspaceUsageOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

WorkspaceUsageMonitor::~WorkspaceUsageMonitor() { stop(); }

void WorkspaceUsageMonitor::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void WorkspaceUsageMonitor::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void WorkspaceUsageMonitor::run() {
  TimePoint next = clock_.now();
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    runCycle();
    next += options_.interval;
    if (const TimePoint now = clock_.now(); next < now) next = now;
    std::unique_lock lock(mu_);
    if (clock_.waitUntil(lock, wake_, next, [this] { return stopping_; })) return;
  }
}

// Directories directly under the root; dot-names and symlinks are not workspaces.
std::vector<std::string> WorkspaceUsageMonitor::listWorkspaces() const {
  std::vector<std::string> out;
  DIR* d = ::opendir(options_.root.c_str());
  if (d == nullptr) return out;  // not made yet: no workspaces
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    struct stat st {};
    const std::string path = options_.root + "/" + e->d_name;
    if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool WorkspaceUsageMonitor::countByQuota(const std::string& user_id, WorkspaceUsage* out) const {
  if (!options_.quota_enforced) return false;
  const std::string dir = options_.root + "/" + user_id;
  auto project = ProjectQuota::projectOf(dir);
  if (!project.ok() || project.value() == 0) return false;  // not tagged yet: walk it
  auto used = ProjectQuota::usage(dir, project.value());
  if (!used.ok()) return false;
  out->used_bytes = used.value();
  out->method = "project_quota";
  return true;
}

// Spends this cycle's budget on the walks due, resuming the one in progress.
void WorkspaceUsageMonitor::walkSome(const std::vector<std::string>& present) {
  size_t budget = options_.files_per_cycle;
  const std::set<std::string> alive(present.begin(), present.end());
  while (budget > 0) {
    if (!walk_) {
      if (due_.empty()) return;  // this pass is finished; the next cycle starts another
      walking_ = due_.back();
      due_.pop_back();
      if (alive.count(walking_) == 0) continue;
      walk_ = std::make_unique<TreeUsageWalk>(options_.root + "/" + walking_);
    }
    const size_t before = budget;
    auto finished = walk_->step(&budget);
    walked_.fetch_add(before - budget);
    if (!finished.ok()) {
      logWarn("workspace usage: cannot measure", {{"user", walking_}, {"error", finished.error().message}});
      walk_.reset();
      continue;
    }
    if (!finished.value()) return;  // budget spent; resumed next cycle
    {
      std::lock_guard lock(mu_);
      auto it = table_.find(walking_);
      if (it != table_.end()) {
        it->second.used_bytes = walk_->bytes();
        it->second.measured = true;
        it->second.measured_at = clock_.now();
        it->second.method = "walk";
      }
    }
    walk_.reset();
  }
}

void WorkspaceUsageMonitor::runCycle() {
  std::lock_guard cycle(cycle_mu_);
  const std::vector<std::string> present = listWorkspaces();
  std::vector<std::string> to_walk;
  std::map<std::string, WorkspaceUsage> counted;
  for (const auto& user : present) {
    WorkspaceUsage u;
    if (countByQuota(user, &u)) {
      counted[user] = u;
    } else {
      to_walk.push_back(user);
    }
  }
  const TimePoint now = clock_.now();
  {
    std::lock_guard lock(mu_);
    std::map<std::string, WorkspaceUsage> next;
    for (const auto& user : present) {
      auto old = table_.find(user);
      WorkspaceUsage u = old != table_.end() ? old->second : WorkspaceUsage{};
      u.user_id = user;
      if (auto c = counted.find(user); c != counted.end()) {
        u.used_bytes = c->second.used_bytes;
        u.method = c->second.method;
        u.measured = true;
        u.measured_at = now;
      }
      next[user] = u;
    }
    table_ = std::move(next);  // workspaces removed from disk drop out
  }
  if (!walk_ && due_.empty()) {
    // A new pass: newly seen workspaces first, so they get a figure soon.
    std::vector<std::string> fresh, known;
    {
      std::lock_guard lock(mu_);
      for (const auto& user : to_walk) (table_[user].measured ? known : fresh).push_back(user);
    }
    due_ = known;  // taken from the back: fresh ones go last in the vector
    due_.insert(due_.end(), fresh.rbegin(), fresh.rend());
  }
  walkSome(present);
  cycles_.fetch_add(1);
}

std::vector<WorkspaceUsage> WorkspaceUsageMonitor::all() const {
  std::lock_guard lock(mu_);
  std::vector<WorkspaceUsage> out;
  out.reserve(table_.size());
  for (const auto& [_, u] : table_) out.push_back(u);
  return out;
}

std::optional<WorkspaceUsage> WorkspaceUsageMonitor::get(const std::string& user_id) const {
  std::lock_guard lock(mu_);
  auto it = table_.find(user_id);
  if (it == table_.end()) return std::nullopt;
  return it->second;
}

}  // namespace sandman
