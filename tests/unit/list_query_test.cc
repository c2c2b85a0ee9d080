// What every API listing accepts: limit bounds, from/to, and the sealed
// cursor (round trip; any edit, another listing or another daemon run is a
// clean kInvalid), plus the Link / X-Next-Cursor headers of a page.
#include "api/list_query.h"

#include <gtest/gtest.h>

#include "common/time_format.h"

namespace sandman {
namespace {

ApiRequest get(std::vector<std::pair<std::string, std::string>> params, std::string path = "/api/v1/sessions") {
  ApiRequest r;
  r.method = "GET";
  r.path = std::move(path);
  r.params = std::move(params);
  return r;
}

TEST(CursorCodec, RoundTripsAKeyForItsListing) {
  CursorCodec codec;
  const std::string c = codec.encode("sessions\nuser_id=alice", "1795000000123.s-00000000000000ff");
  EXPECT_EQ(c.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  EXPECT_EQ(c.find("s-00000000000000ff"), std::string::npos);  // opaque, not the key in clear
  auto key = codec.decode("sessions\nuser_id=alice", c);
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key.value(), "1795000000123.s-00000000000000ff");
}

TEST(CursorCodec, RefusesEveryEditedCharacter) {
  CursorCodec codec;
  const std::string c = codec.encode("events\ns-1", "42");
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < c.size(); ++i) {
    std::string t = c;
    t[i] = alphabet[(alphabet.find(t[i]) + 1) % alphabet.size()];
    auto r = codec.decode("events\ns-1", t);
    ASSERT_FALSE(r.ok()) << "edit at " << i << " accepted";
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  }
  EXPECT_FALSE(codec.decode("events\ns-1", c.substr(0, c.size() - 1)).ok());  // cut short
  EXPECT_FALSE(codec.decode("events\ns-1", c + "A").ok());                    // grown
}

TEST(CursorCodec, RefusesGarbageOtherListingsAndOtherRuns) {
  CursorCodec codec;
  const std::string c = codec.encode("connections\ns-1", "7");
  EXPECT_FALSE(codec.decode("connections\ns-2", c).ok());  // another session's listing
  EXPECT_FALSE(codec.decode("events\ns-1", c).ok());       // another route
  EXPECT_FALSE(CursorCodec().decode("connections\ns-1", c).ok());  // a restarted daemon (new secret)
  for (const char* bad : {"", "!!!!", "abc=", "a b", "A", "AAAA", "%41%41"}) {
    auto r = codec.decode("connections\ns-1", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
    EXPECT_NE(r.error().message.find("cursor"), std::string::npos);
  }
  EXPECT_FALSE(codec.decode("connections\ns-1", std::string(600, 'A')).ok());
  // The same secret decodes the same cursor (what a test with a fixed secret relies on).
  CursorCodec a("fixed secret"), b("fixed secret");
  EXPECT_TRUE(b.decode("x", a.encode("x", "1")).ok());
}

TEST(ListQuery, LimitDefaultsTo100AndAcceptsOneTo1000) {
  CursorCodec codec;
  auto q = parseListQuery(get({}), codec, "sessions");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->limit, 100u);
  EXPECT_FALSE(q->after);
  EXPECT_EQ(parseListQuery(get({{"limit", "1"}}), codec, "sessions")->limit, 1u);
  EXPECT_EQ(parseListQuery(get({{"limit", "1000"}}), codec, "sessions")->limit, 1000u);
  for (const char* bad : {"0", "1001", "-1", "", "abc", "1e3", "10.5", " 5", "99999999999999999999"}) {
    auto r = parseListQuery(get({{"limit", bad}}), codec, "sessions");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
    EXPECT_NE(r.error().message.find("1 to 1000"), std::string::npos) << r.error().message;
  }
}

TEST(ListQuery, FromAndToTakeRfc3339OrUnixSecondsInOrder) {
  CursorCodec codec;
  auto q = parseListQuery(get({{"from", "1795000000"}, {"to", "2026-11-23T12:00:00Z"}}), codec, "s");
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(toUnixMillis(*q->from), 1795000000000);
  EXPECT_EQ(q->to, parseRfc3339("2026-11-23T12:00:00Z"));
  EXPECT_FALSE(parseListQuery(get({{"from", "yesterday"}}), codec, "s").ok());
  auto backwards = parseListQuery(get({{"from", "1795000001"}, {"to", "1795000000"}}), codec, "s");
  ASSERT_FALSE(backwards.ok());
  EXPECT_NE(backwards.error().message.find("earlier"), std::string::npos);
}

TEST(ListQuery, ACursorHoldsOnlyWithTheFiltersThatMadeIt) {
  CursorCodec codec;
  ApiRequest first = get({{"status", "ended"}, {"from", "1795000000"}});
  std::string c = nextCursor(first, codec, "sessions\nstatus=ended", "5.s-1");
  auto same = parseListQuery(get({{"status", "ended"}, {"from", "1795000000"}, {"cursor", c}}), codec,
                             "sessions\nstatus=ended");
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_EQ(same->after, "5.s-1");
  // Another from: refused, not silently re-positioned.
  EXPECT_FALSE(parseListQuery(get({{"status", "ended"}, {"from", "1795000001"}, {"cursor", c}}), codec,
                              "sessions\nstatus=ended").ok());
  EXPECT_FALSE(parseListQuery(get({{"from", "1795000000"}, {"cursor", c}}), codec, "sessions\nstatus=").ok());
}

TEST(ListQuery, NextPageHeadersRepeatTheQueryWithTheNewCursor) {
  ApiRequest req = get({{"user_id", "alice"}, {"cursor", "old"}, {"to", "2026-11-23T12:00:00+01:00"}, {"limit", "5"}});
  ApiResponse res;
  setNextPage(req, "NEXT_c-1", res);
  ASSERT_EQ(res.headers.size(), 2u);
  EXPECT_EQ(res.headers[0].first, "Link");
  EXPECT_EQ(res.headers[0].second,
            "</api/v1/sessions?user_id=alice&to=2026-11-23T12%3A00%3A00%2B01%3A00&limit=5&cursor=NEXT_c-1>; "
            "rel=\"next\"");
  EXPECT_EQ(res.headers[1], (std::pair<std::string, std::string>{"X-Next-Cursor", "NEXT_c-1"}));
}

TEST(ListQuery, KeysParseStrictly) {
  auto k = parseSessionKeyText("1795000000123.s-00000000000000ff");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->first, 1795000000123);
  EXPECT_EQ(k->second, "s-00000000000000ff");
  EXPECT_FALSE(parseSessionKeyText("x.s-1").ok());
  EXPECT_FALSE(parseSessionKeyText("123").ok());
  EXPECT_EQ(parseRowKeyText("42").value(), 42);
  EXPECT_FALSE(parseRowKeyText("-1").ok());
  EXPECT_FALSE(parseRowKeyText("4 2").ok());
}

}  // namespace
}  // namespace sandman
