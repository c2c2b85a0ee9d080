#include "gateway/connection_limits.h"

namespace sandman {
namespace {

int countOf(const std::map<std::string, int>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

void release(std::map<std::string, int>& m, const std::string& key) {
  auto it = m.find(key);
  if (it != m.end() && --it->second <= 0) m.erase(it);
}

}  // namespace

bool ConnectionLimits::admit(const std::string& source, std::string* why) {
  if (open_ >= options_.max_connections) {
    *why = "gateway at its connection cap";
    return false;
  }
  int& n = by_source_[source];
  if (n >= options_.max_connections_per_source) {
    if (n == 0) by_source_.erase(source);
    *why = "too many open connections from this source";
    return false;
  }
  ++n;
  ++open_;
  return true;
}

void ConnectionLimits::closed(const std::string& source) {
  if (open_ > 0) --open_;
  release(by_source_, source);
}

bool ConnectionLimits::login(const std::string& user) {
  int& n = by_user_[user];
  if (n >= options_.max_connections_per_user) {
    if (n == 0) by_user_.erase(user);
    return false;
  }
  ++n;
  return true;
}

void ConnectionLimits::loggedOut(const std::string& user) { release(by_user_, user); }

int ConnectionLimits::openFrom(const std::string& source) const { return countOf(by_source_, source); }
int ConnectionLimits::loggedIn(const std::string& user) const { return countOf(by_user_, user); }

}  // namespace sandman
