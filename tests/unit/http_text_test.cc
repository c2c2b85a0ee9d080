// The pure pieces of the HTTP layer: UTF-8 checks and excerpts, request
// targets, the router's matching, and the JSON writer that never throws.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/http_message.h"
#include "api/json_mapping.h"
#include "api/json_writer.h"
#include "api/router.h"
#include "common/redact.h"
#include "common/utf8.h"

namespace sandman {
namespace {

TEST(Utf8, AcceptsWellFormedAndRefusesTheRest) {
  EXPECT_TRUE(isValidUtf8(""));
  EXPECT_TRUE(isValidUtf8("plain ascii"));
  EXPECT_TRUE(isValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(isValidUtf8("\xff"));
  EXPECT_FALSE(isValidUtf8("\xc3\x28"));          // bad continuation
  EXPECT_FALSE(isValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(isValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(isValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(isValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(isValidUtf8("\xe2\x82"));          // cut short
}

TEST(Utf8, ExcerptsArePrintableAndCutOnCharacterBoundaries) {
  EXPECT_EQ(printableExcerpt("abc", 10), "abc");
  EXPECT_EQ(printableExcerpt("a\nb\x01\xff", 10), "a?b??");
  EXPECT_EQ(printableExcerpt("\xc3\xa9\xc3\xa9\xc3\xa9", 2), "\xc3\xa9\xc3\xa9...");
  EXPECT_TRUE(isValidUtf8(printableExcerpt("\xe2\x82\xac\xe2\x82", 5)));
}

TEST(RequestTarget, DecodesPathAndQuery) {
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
  ASSERT_TRUE(parseTarget("/a%20b/c?x=1&y=caf%C3%A9+ok&flag&=&z=%2B", &path, &params).ok());
  EXPECT_EQ(path, "/a b/c");
  ApiRequest req;
  req.params = params;
  EXPECT_EQ(req.get_param_value("x"), "1");
  EXPECT_EQ(req.get_param_value("y"), "caf\xc3\xa9 ok");
  EXPECT_TRUE(req.has_param("flag"));
  EXPECT_EQ(req.get_param_value("z"), "+");
  EXPECT_FALSE(req.has_param("missing"));
}

TEST(RequestTarget, RefusesWhatCannotBeARoute) {
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
  for (const char* bad : {"", "*", "http://x/", "/a%", "/a%4", "/a%zz", "/a%00b", "/\xff", "/%C3%28", "/?q=%ff",
                          "/?%00=1"}) {
    EXPECT_FALSE(parseTarget(bad, &path, &params).ok()) << bad;
  }
}

TEST(RouterTest, MatchesCapturesInOrderAndTellsWrongMethods) {
  Router r;
  std::string hit;
  r.get("/sessions/stats", [&](const ApiRequest&, ApiResponse&) { hit = "stats"; });
  r.get("/sessions/{id}", [&](const ApiRequest& q, ApiResponse&) { hit = "get " + q.matches[1]; });
  r.del("/sessions/{id}", [&](const ApiRequest& q, ApiResponse&) { hit = "del " + q.matches[1]; });
  r.get("/users/{u}/keys/{k}", [&](const ApiRequest& q, ApiResponse&) { hit = q.matches[1] + "/" + q.matches[2]; });
  auto run = [&](const char* method, const char* path) {
    ApiRequest q;
    q.method = method;
    q.path = path;
    ApiResponse res;
    hit.clear();
    auto outcome = r.dispatch(q, res);
    if (outcome == Router::Outcome::kWrongMethod) hit = "405 " + res.headers.back().second;
    if (outcome == Router::Outcome::kNoRoute) hit = "404";
    return hit;
  };
  EXPECT_EQ(run("GET", "/sessions/stats"), "stats");
  EXPECT_EQ(run("GET", "/sessions/s-1"), "get s-1");
  EXPECT_EQ(run("GET", "/sessions/s-1/"), "get s-1");
  EXPECT_EQ(run("DELETE", "/sessions/s-2"), "del s-2");
  EXPECT_EQ(run("POST", "/sessions/s-2"), "405 GET, DELETE");
  EXPECT_EQ(run("GET", "/users/alice/keys/7"), "alice/7");
  EXPECT_EQ(run("GET", "/sessions"), "404");
  EXPECT_EQ(run("GET", "/sessions//s-1"), "404");
  EXPECT_EQ(run("GET", "/sessions/s-1/extra"), "404");
}

TEST(JsonWriterTest, WritesValidJsonForAnyBytes) {
  std::string out;
  JsonWriter w(out);
  w.beginArray();
  w.beginObject();
  w.field("plain", "x");
  w.field("escapes", std::string_view("q\"b\\n\n\t\x01", 8));
  w.field("bad_utf8", "a\xff" "b\xc3(");
  w.field("unicode", "caf\xc3\xa9");
  w.field("n", int64_t{-12});
  w.field("t", true);
  w.nullableField("none", std::nullopt);
  w.nullableField("some", std::optional<std::string>("v"));
  w.key("nested");
  w.beginArray();
  w.number(1);
  w.null();
  w.endArray();
  w.endObject();
  w.beginObject();
  w.endObject();
  w.endArray();
  auto j = nlohmann::json::parse(out);  // throws (fails the test) on invalid JSON
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["plain"], "x");
  EXPECT_EQ(j[0]["escapes"], std::string("q\"b\\n\n\t\x01"));
  EXPECT_EQ(j[0]["bad_utf8"], "a\xef\xbf\xbd" "b\xef\xbf\xbd(");
  EXPECT_EQ(j[0]["unicode"], "caf\xc3\xa9");
  EXPECT_EQ(j[0]["n"], -12);
  EXPECT_EQ(j[0]["t"], true);
  EXPECT_TRUE(j[0]["none"].is_null());
  EXPECT_EQ(j[0]["some"], "v");
  EXPECT_EQ(j[0]["nested"], nlohmann::json::parse("[1,null]"));
  EXPECT_TRUE(j[1].is_object() && j[1].empty());
}

TEST(JsonWriterTest, SessionListingsHaveTheSameShapeAsSingleSessions) {
  Session s;
  s.id = "s-0123456789abcdef";
  s.user_id = "alice";
  s.status = SessionStatus::kEnded;
  s.image = "img:1";
  s.ssh_port = 10001;
  s.host_public_key = "ssh-ed25519 AAAA comment";
  s.end_reason = "expired \xff";
  std::string text;
  appendSessionJson(text, s, {"gw", "/srv/ws"});
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j, sessionToJson(s, {"gw", "/srv/ws"}));
  EXPECT_EQ(j["ssh_host_key"], "[gw]:10001 ssh-ed25519 AAAA");
  EXPECT_TRUE(j["container_id"].is_null());
  EXPECT_TRUE(j["gpu_index"].is_null());
}

TEST(Redact, UrlsKeepOnlySchemeHostAndPort) {
  EXPECT_EQ(redactUrl("https://hooks.example.com/services/T0/B0/XYZ"), "https://hooks.example.com/...");
  EXPECT_EQ(redactUrl("http://user:pw@am.local:9093/api/v2/alerts?token=abc"), "http://am.local:9093/...");
  EXPECT_EQ(redactUrl("http://am.local:9093"), "http://am.local:9093");
  EXPECT_EQ(redactUrl("https://h?key=secret"), "https://h/...");
  EXPECT_EQ(redactUrl("not a url with secret"), "(url)");
}

}  // namespace
}  // namespace sandman
