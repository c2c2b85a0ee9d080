// ConnectionLimits: caps on what the gateway holds open, before and after
// login alike: connections in all and per source address, and logged-in
// connections per user. Pure bookkeeping; used by the gateway's event-loop
// thread only (not thread-safe).
#pragma once

#include <map>
#include <string>

#include "gateway/gateway_options.h"

namespace sandman {

class ConnectionLimits {
 public:
  explicit ConnectionLimits(const GatewayOptions& options) : options_(options) {}

  // A new connection from `source`: false (and why) when the gateway or the
  // source is at its cap; otherwise counted until closed().
  bool admit(const std::string& source, std::string* why);
  void closed(const std::string& source);
  // A login routed to a session: false when `user` holds the cap already;
  // otherwise counted until loggedOut().
  bool login(const std::string& user);
  void loggedOut(const std::string& user);

  int open() const { return open_; }
  int openFrom(const std::string& source) const;
  int loggedIn(const std::string& user) const;

 private:
  const GatewayOptions& options_;
  int open_ = 0;
  std::map<std::string, int> by_source_;
  std::map<std::string, int> by_user_;
};

}  // namespace sandman
