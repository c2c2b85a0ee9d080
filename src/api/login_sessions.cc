#include "api/login_sessions.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <random>
#include <vector>

namespace sandman {

namespace {

std::string hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 0xf];
  }
  return out;
}

std::string sha256Hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  return hex(md, len);
}

}  // namespace

const char* toString(Role r) { return r == Role::kAdmin ? "admin" : "viewer"; }

std::string LoginSessions::create(Role role, Clock::time_point now) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    std::random_device rd;  // OpenSSL's generator failing is near impossible; the kernel's is as good
    for (auto& b : raw) b = static_cast<unsigned char>(rd());
  }
  std::string cookie = hex(raw, sizeof raw);
  std::lock_guard lock(mu_);
  evict(now);
  if (sessions_.size() >= options_.max_sessions) {
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.last_used < oldest->second.last_used) oldest = it;
    }
    sessions_.erase(oldest);
  }
  sessions_[sha256Hex(cookie)] = {role, now};
  return cookie;
}

std::optional<Role> LoginSessions::lookup(const std::string& cookie, Clock::time_point now) {
  if (cookie.size() != 64) return std::nullopt;
  const std::string key = sha256Hex(cookie);
  std::lock_guard lock(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return std::nullopt;
  if (now - it->second.last_used >= options_.idle_expiry) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_used = now;
  return it->second.role;
}

void LoginSessions::remove(const std::string& cookie) {
  const std::string key = sha256Hex(cookie);
  std::lock_guard lock(mu_);
  sessions_.erase(key);
}

size_t LoginSessions::size() {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void LoginSessions::evict(Clock::time_point now) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = now - it->second.last_used >= options_.idle_expiry ? sessions_.erase(it) : std::next(it);
  }
  for (auto it = failures_.begin(); it != failures_.end();) {
    it = now - it->second.window_start >= options_.failure_window ? failures_.erase(it) : std::next(it);
  }
}

bool LoginSessions::allowed(const std::string& source, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = failures_.find(source);
  if (it == failures_.end()) return true;
  if (now - it->second.window_start >= options_.failure_window) {
    failures_.erase(it);
    return true;
  }
  return it->second.count < options_.max_failures;
}

void LoginSessions::failed(const std::string& source, Clock::time_point now) {
  std::lock_guard lock(mu_);
  // Bounded: a flood of sources only ever holds one window's worth.
  if (failures_.size() > 65536) evict(now);
  auto& f = failures_[source];
  if (f.count == 0 || now - f.window_start >= options_.failure_window) f = {0, now};
  ++f.count;
}

std::chrono::seconds LoginSessions::retryAfter(const std::string& source, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = failures_.find(source);
  if (it == failures_.end()) return std::chrono::seconds(0);
  auto left = options_.failure_window - (now - it->second.window_start);
  return std::max(std::chrono::seconds(1), std::chrono::ceil<std::chrono::seconds>(left));
}

std::string cookieValue(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    size_t b = pos;
    while (b < end && header[b] == ' ') ++b;
    const size_t eq = header.find('=', b);
    if (eq != std::string::npos && eq < end && header.compare(b, eq - b, name) == 0 && eq - b == name.size()) {
      std::string v = header.substr(eq + 1, end - eq - 1);
      while (!v.empty() && v.back() == ' ') v.pop_back();
      return v;
    }
    pos = end + 1;
  }
  return "";
}

bool secretEquals(const std::string& a, const std::string& b) {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const char x = i < a.size() ? a[i] : 0;
    const char y = i < b.size() ? b[i] : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

}  // namespace sandman
