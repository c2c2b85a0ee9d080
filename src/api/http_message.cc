#include "api/http_message.h"

#include "common/utf8.h"

namespace sandman {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes s ('+' is a space only in query strings); nullopt on a
// broken escape or a decoded NUL, which no path or value of ours may hold.
std::optional<std::string> decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hexValue(s[i + 1]), lo = hexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out += c;
  }
  return out;
}

}  // namespace

bool ApiRequest::has_param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return true;
  }
  return false;
}

std::string ApiRequest::get_param_value(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return {};
}

bool ApiRequest::has_header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return true;
  }
  return false;
}

std::string ApiRequest::get_header_value(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

Status parseTarget(std::string_view target, std::string* path,
                   std::vector<std::pair<std::string, std::string>>* params) {
  if (target.empty() || target[0] != '/') return invalid("the request target must be a path starting with '/'");
  size_t q = target.find('?');
  auto p = decode(target.substr(0, q), false);
  if (!p) return invalid("the request path has a broken percent escape or a NUL byte");
  if (!isValidUtf8(*p)) return invalid("the request path is not valid UTF-8");
  *path = std::move(*p);
  params->clear();
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto key = decode(pair.substr(0, eq), true);
    auto value = decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
    if (!key || !value) return invalid("the query string has a broken percent escape or a NUL byte");
    if (!isValidUtf8(*key) || !isValidUtf8(*value)) return invalid("the query string is not valid UTF-8");
    params->emplace_back(std::move(*key), std::move(*value));
  }
  return {};
}

}  // namespace sandman
