#include "api/list_query.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <cmath>
#include <random>

#include "common/time_format.h"
#include "common/utf8.h"

namespace sandman {
namespace {

constexpr size_t kMacBytes = 16;        // 128 bits of HMAC-SHA256: forging one is hopeless
constexpr size_t kMaxCursorChars = 512;  // keys are short; anything longer is not ours
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kB64[(acc << (6 - bits)) & 63];
  return out;
}

// Strict: only the URL-safe alphabet, no padding, and the canonical form
// (unused trailing bits zero), so one byte string has exactly one cursor.
std::optional<std::string> unbase64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-') v = 62;
    else if (c == '_') v = 63;
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string randomSecret() {
  std::random_device rd;  // getrandom(2) on Linux
  std::string s(32, '\0');
  for (auto& c : s) c = static_cast<char>(rd() & 0xff);
  return s;
}

std::optional<int64_t> parseWhole(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

// Query values re-emitted in a Link target: unreserved characters as they are.
std::string percentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Error badCursor() {
  return invalid(
      "cursor is not valid for this listing: pass the X-Next-Cursor of the previous page unchanged, with the same "
      "filters (a cursor also expires when the daemon restarts); to start over, leave cursor out");
}

std::string timeParamsPart(const ApiRequest& req) {
  return "\nfrom=" + req.get_param_value("from") + "\nto=" + req.get_param_value("to");
}

}  // namespace

Result<TimePoint> parseTimeParam(const std::string& name, const std::string& v) {
  if (!v.empty() && v.size() <= 20 && v.find_first_not_of("0123456789.") == std::string::npos) {
    double secs = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
    if (ec == std::errc() && end == v.data() + v.size() && secs < 1e11) {
      return fromUnixMillis(static_cast<int64_t>(std::llround(secs * 1000.0)));
    }
  }
  if (auto t = parseRfc3339(v)) return *t;
  return invalid("'" + name + "' must be RFC 3339 UTC (2026-11-23T12:00:00Z) or unix seconds, not '" +
                 printableExcerpt(v, 40) + "'");
}

Result<int64_t> parseDateOrTime(const std::string& name, const std::string& text) {
  std::optional<TimePoint> t;
  if (text.size() == 10) t = parseRfc3339(text + "T00:00:00Z");
  if (!t) t = parseRfc3339(text);
  if (!t) {
    return invalid("'" + name + "' must be an RFC 3339 time (2026-03-01T00:00:00Z) or a date (2026-03-01), got '" +
                   printableExcerpt(text, 40) + "'");
  }
  return toUnixMillis(*t);
}

CursorCodec::CursorCodec() : secret_(randomSecret()) {}

CursorCodec::CursorCodec(std::string secret) : secret_(std::move(secret)) {}

std::string CursorCodec::mac(std::string_view listing, std::string_view key) const {
  // The listing and the key, separated by a byte neither can hold.
  std::string msg;
  msg.reserve(listing.size() + key.size() + 1);
  msg.append(listing).push_back('\0');
  msg.append(key);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), kMacBytes);
}

std::string CursorCodec::encode(std::string_view listing, std::string_view key) const {
  return base64url(mac(listing, key) + std::string(key));
}

Result<std::string> CursorCodec::decode(std::string_view listing, std::string_view cursor) const {
  if (cursor.empty() || cursor.size() > kMaxCursorChars) return badCursor();
  auto raw = unbase64url(cursor);
  if (!raw || raw->size() <= kMacBytes) return badCursor();
  std::string key = raw->substr(kMacBytes);
  std::string want = mac(listing, key);
  if (CRYPTO_memcmp(want.data(), raw->data(), kMacBytes) != 0) return badCursor();
  return key;
}

Result<ListQuery> parseListQuery(const ApiRequest& req, const CursorCodec& codec, const std::string& listing) {
  ListQuery q;
  if (req.has_param("limit")) {
    auto n = parseWhole(req.get_param_value("limit"), 7);
    if (!n || *n < 1 || *n > static_cast<int64_t>(kMaxPageLimit)) {
      return invalid("limit must be a whole number from 1 to " + std::to_string(kMaxPageLimit) + " (got '" +
                     printableExcerpt(req.get_param_value("limit"), 20) + "')");
    }
    q.limit = static_cast<size_t>(*n);
  }
  for (const char* name : {"from", "to"}) {
    if (!req.has_param(name)) continue;
    auto t = parseTimeParam(name, req.get_param_value(name));
    if (!t.ok()) return t.error();
    (std::string_view(name) == "from" ? q.from : q.to) = t.value();
  }
  if (q.from && q.to && *q.from >= *q.to) return invalid("'from' must be earlier than 'to'");
  if (req.has_param("cursor")) {
    auto key = codec.decode(listing + timeParamsPart(req), req.get_param_value("cursor"));
    if (!key.ok()) return key.error();
    q.after = std::move(key).value();
  }
  return q;
}

std::string nextCursor(const ApiRequest& req, const CursorCodec& codec, const std::string& listing,
                       std::string_view last_key) {
  return codec.encode(listing + timeParamsPart(req), last_key);
}

void setNextPage(const ApiRequest& req, const std::string& cursor, ApiResponse& res) {
  std::string target;
  for (size_t start = 0; start < req.path.size();) {  // each segment encoded, slashes kept
    size_t slash = req.path.find('/', start);
    if (slash == std::string::npos) slash = req.path.size();
    target += percentEncode(std::string_view(req.path).substr(start, slash - start));
    if (slash < req.path.size()) target += '/';
    start = slash + 1;
  }
  char sep = '?';
  for (const auto& [name, value] : req.params) {
    if (name == "cursor") continue;
    target += sep + percentEncode(name) + "=" + percentEncode(value);
    sep = '&';
  }
  target += sep + std::string("cursor=") + cursor;
  res.set_header("Link", "<" + target + ">; rel=\"next\"");
  res.set_header("X-Next-Cursor", cursor);
}

std::string sessionKeyText(int64_t created_ms, std::string_view id) {
  return std::to_string(created_ms) + "." + std::string(id);
}

Result<std::pair<int64_t, std::string>> parseSessionKeyText(std::string_view key) {
  auto dot = key.find('.');
  if (dot == std::string_view::npos) return badCursor();
  auto ms = parseWhole(key.substr(0, dot), 15);
  if (!ms) return badCursor();
  return std::make_pair(*ms, std::string(key.substr(dot + 1)));
}

Result<int64_t> parseRowKeyText(std::string_view key) {
  auto id = parseWhole(key, 18);
  if (!id) return badCursor();
  return *id;
}

}  // namespace sandman
