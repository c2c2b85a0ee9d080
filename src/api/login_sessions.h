// Browser logins: a token exchanged once for an opaque cookie, so the page
// never keeps the token itself. Sessions live in memory only, keyed by a
// hash of the cookie (a leaked process dump shows no usable id), expire after
// 12 h idle and are bounded in number; failed logins are rate-limited per
// source address. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace sandman {

enum class Role { kViewer, kAdmin };
const char* toString(Role r);

struct LoginOptions {
  std::chrono::milliseconds idle_expiry = std::chrono::hours(12);
  size_t max_sessions = 4096;  // beyond it the least recently used session goes
  int max_failures = 10;       // failed logins per source per window before 429
  std::chrono::milliseconds failure_window = std::chrono::minutes(1);
};

class LoginSessions {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LoginSessions(LoginOptions options = {}) : options_(options) {}

  // A fresh cookie value (256 random bits, hex) for `role`.
  std::string create(Role role, Clock::time_point now = Clock::now());
  // The role of a live session, touching its idle timer; nullopt when unknown or expired.
  std::optional<Role> lookup(const std::string& cookie, Clock::time_point now = Clock::now());
  void remove(const std::string& cookie);
  size_t size();

  // Failed-login accounting: allowed() is false while `source` has used up
  // its failures in the current window; retryAfter() says for how long.
  bool allowed(const std::string& source, Clock::time_point now = Clock::now());
  void failed(const std::string& source, Clock::time_point now = Clock::now());
  std::chrono::seconds retryAfter(const std::string& source, Clock::time_point now = Clock::now());

 private:
  struct Entry {
    Role role;
    Clock::time_point last_used;
  };
  struct Failures {
    int count = 0;
    Clock::time_point window_start;
  };
  void evict(Clock::time_point now);  // mu_ held

  const LoginOptions options_;
  std::mutex mu_;
  std::map<std::string, Entry> sessions_;      // sha256(cookie) hex -> entry; GUARDED_BY(mu_)
  std::map<std::string, Failures> failures_;   // by source; GUARDED_BY(mu_)
};

// The value of cookie `name` in a Cookie header ("a=1; sandman_session=x"), or "".
std::string cookieValue(const std::string& header, const std::string& name);
// Compares two secrets in time independent of where they differ.
bool secretEquals(const std::string& a, const std::string& b);

}  // namespace sandman
