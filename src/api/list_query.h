// ListQuery: what every API listing accepts (limit, an opaque cursor, from/to)
// parsed and checked, the cursor codec, and the headers that point a client
// at the next page. Thread-safe: CursorCodec is immutable once built.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "api/http_message.h"
#include "common/clock.h"
#include "common/result.h"

namespace sandman {

inline constexpr size_t kDefaultPageLimit = 100;
inline constexpr size_t kMaxPageLimit = 1000;

// RFC 3339 in UTC ("2026-11-23T12:00:00Z", fraction optional) or unix
// seconds ("1795000000", fraction optional); kInvalid naming `name` otherwise.
Result<TimePoint> parseTimeParam(const std::string& name, const std::string& value);
// RFC 3339, or a bare date ("2026-03-01": UTC midnight), as unix ms; kInvalid
// naming `name` otherwise (the cost and advice windows, a price's start).
Result<int64_t> parseDateOrTime(const std::string& name, const std::string& text);

// Cursors are the key of a page's last row, sealed with an HMAC under a
// secret of this process: opaque to clients, bound to the listing (route and
// filters) that issued them, and any edited byte is refused. A daemon restart
// picks a new secret, so a client starts again from the first page.
class CursorCodec {
 public:
  CursorCodec();  // a random secret
  explicit CursorCodec(std::string secret);
  // base64url (no padding) of the MAC and the key.
  std::string encode(std::string_view listing, std::string_view key) const;
  // The key, or kInvalid for a cursor that is malformed, edited, from another
  // listing or from an earlier run of the daemon.
  Result<std::string> decode(std::string_view listing, std::string_view cursor) const;

 private:
  std::string mac(std::string_view listing, std::string_view key) const;
  const std::string secret_;
};

struct ListQuery {
  size_t limit = kDefaultPageLimit;
  std::optional<std::string> after;  // the key sealed in ?cursor=, verified
  std::optional<TimePoint> from;     // inclusive
  std::optional<TimePoint> to;       // exclusive
};

// limit (1..1000, default 100), from, to, cursor. `listing` names the route
// and its own filters (their values as given), so a cursor is honoured only
// with the filters that produced it; from/to are added here.
Result<ListQuery> parseListQuery(const ApiRequest& req, const CursorCodec& codec, const std::string& listing);

// The cursor a route returns with a page, sealed for the same listing.
std::string nextCursor(const ApiRequest& req, const CursorCodec& codec, const std::string& listing,
                       std::string_view last_key);

// Link: <same path and query, cursor=next>; rel="next", and X-Next-Cursor.
void setNextPage(const ApiRequest& req, const std::string& cursor, ApiResponse& res);

// Keys of the two kinds of listing: "<created_at ms>.<id>" and a row id.
std::string sessionKeyText(int64_t created_ms, std::string_view id);
Result<std::pair<int64_t, std::string>> parseSessionKeyText(std::string_view key);
Result<int64_t> parseRowKeyText(std::string_view key);

}  // namespace sandman
