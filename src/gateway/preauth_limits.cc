#include "gateway/preauth_limits.h"

namespace sandman {

PreauthLimits::PreauthLimits(const GatewayOptions& options, const Clock& clock)
    : options_(options), clock_(clock) {}

bool PreauthLimits::admit(const std::string& source, std::string* why) {
  prune();
  if (sourceBlocked(source)) {
    *why = "source blocked after repeated authentication failures";
    return false;
  }
  int& n = unauth_[source];
  if (n >= options_.max_unauth_per_source) {
    *why = "too many unauthenticated connections from this source";
    return false;
  }
  ++n;
  return true;
}

void PreauthLimits::release(const std::string& source) {
  auto it = unauth_.find(source);
  if (it == unauth_.end()) return;
  if (--it->second <= 0) unauth_.erase(it);
}

int PreauthLimits::unauthenticated(const std::string& source) const {
  auto it = unauth_.find(source);
  return it == unauth_.end() ? 0 : it->second;
}

bool PreauthLimits::sourceBlocked(const std::string& source) { return blocked(by_source_, source); }
bool PreauthLimits::userBlockedFrom(const std::string& user, const std::string& source) {
  return blocked(by_user_source_, user + " " + source);
}

bool PreauthLimits::blocked(std::map<std::string, Failures>& table, const std::string& key) {
  auto it = table.find(key);
  return it != table.end() && clock_.now() < it->second.blocked_until;
}

bool PreauthLimits::recordFailure(const std::string& source, const std::string& user) {
  bool newly = fail(by_source_, source);
  if (!user.empty()) newly = fail(by_user_source_, user + " " + source) || newly;
  return newly;
}

// Failures count within a window of block_for; reaching the limit blocks the
// key for block_for and starts a fresh count.
bool PreauthLimits::fail(std::map<std::string, Failures>& table, const std::string& key) {
  TimePoint now = clock_.now();
  Failures& f = table[key];
  if (now < f.blocked_until) return false;
  if (f.count == 0 || now - f.window_start > options_.block_for) {
    f.count = 0;
    f.window_start = now;
  }
  if (++f.count < options_.block_after_failures) return false;
  f.count = 0;
  f.blocked_until = now + options_.block_for;
  return true;
}

// Drops expired entries at most once a minute, so that a scan of many source
// addresses does not grow the tables without bound.
void PreauthLimits::prune() {
  TimePoint now = clock_.now();
  if (now - last_prune_ < std::chrono::minutes(1)) return;
  last_prune_ = now;
  for (auto* table : {&by_source_, &by_user_source_}) {
    for (auto it = table->begin(); it != table->end();) {
      bool idle = now >= it->second.blocked_until && now - it->second.window_start > options_.block_for;
      it = idle ? table->erase(it) : std::next(it);
    }
  }
}

}  // namespace sandman
