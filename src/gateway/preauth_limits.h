// PreauthLimits: the gateway's defences before authentication: unauthenticated
// connections per source address, and temporary blocks after repeated auth
// failures per source address and per (user name, source address), so that
// nobody can lock a user out from elsewhere. Pure bookkeeping over an
// injected clock; used by the gateway's event-loop thread only (not
// thread-safe).
#pragma once

#include <map>
#include <string>

#include "common/clock.h"
#include "gateway/gateway_options.h"

namespace sandman {

class PreauthLimits {
 public:
  PreauthLimits(const GatewayOptions& options, const Clock& clock);

  // A new connection from `source` (an IP address): false when the source is
  // blocked or already has max_unauth_per_source unauthenticated connections;
  // otherwise counted until authenticated() or closedUnauthenticated().
  bool admit(const std::string& source, std::string* why);
  void authenticated(const std::string& source) { release(source); }
  void closedUnauthenticated(const std::string& source) { release(source); }

  bool sourceBlocked(const std::string& source);
  // `user` failed too often from `source` (only from there).
  bool userBlockedFrom(const std::string& user, const std::string& source);
  // One failed auth attempt; true when it makes the source or the (user,
  // source) pair blocked.
  bool recordFailure(const std::string& source, const std::string& user);

  int unauthenticated(const std::string& source) const;

 private:
  struct Failures {
    int count = 0;
    TimePoint window_start{};
    TimePoint blocked_until{};
  };
  void release(const std::string& source);
  bool blocked(std::map<std::string, Failures>& table, const std::string& key);
  bool fail(std::map<std::string, Failures>& table, const std::string& key);
  void prune();

  const GatewayOptions& options_;
  const Clock& clock_;
  std::map<std::string, int> unauth_;
  std::map<std::string, Failures> by_source_;
  std::map<std::string, Failures> by_user_source_;  // "user source"
  TimePoint last_prune_{};
};

}  // namespace sandman
