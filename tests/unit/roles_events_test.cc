// Issue 15's auth and event-stream rules: the viewer role, browser logins
// (cookie, CSRF header, idle expiry, bounds, rate limit), and the event hub's
// numbering, resume from Last-Event-ID, reset when too old, keep-alive; then
// a real stream through the listener, fed by a session's changes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "api/event_hub.h"
#include "api/event_routes.h"
#include "api/http_server.h"
#include "api/login_sessions.h"
#include "core/user_keys.h"
#include "support/session_harness.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// A stream that records what it was sent.
class FakeStream : public ResponseStream {
 public:
  bool send(std::string bytes) override {
    if (!open_) return false;
    text += bytes;
    return true;
  }
  bool isOpen() const override { return open_; }
  void end() override { open_ = false; }
  std::string text;
  bool open_ = true;
};

TEST(EventHub, NumbersEventsAndResumesAfterTheLastSeen) {
  EventHub hub({16, 15s, 10, 100});
  EXPECT_EQ(hub.publish("gpu", "{\"n\":1}"), 100u);
  EXPECT_EQ(hub.publish("alert", "{\"n\":2}"), 101u);
  EXPECT_EQ(hub.publish("cost", "{\"n\":3}"), 102u);
  const std::string after = hub.backlog(100);
  EXPECT_EQ(after.find("id: 100\n"), std::string::npos);
  EXPECT_NE(after.find("id: 101\nevent: alert\ndata: {\"n\":2}\n\n"), std::string::npos);
  EXPECT_NE(after.find("id: 102\nevent: cost\n"), std::string::npos);
  EXPECT_EQ(after.find("event: reset"), std::string::npos);
  EXPECT_EQ(hub.backlog(102).find("id:"), std::string::npos);  // up to date: nothing replayed
  EXPECT_EQ(hub.backlog(std::nullopt).find("id:"), std::string::npos);  // a fresh client: live only
}

TEST(EventHub, ResetsAClientOlderThanTheRingOrFromAnotherRun) {
  EventHub hub({4, 15s, 10, 1});
  for (int i = 0; i < 10; ++i) hub.publish("gpu", "{}");  // ids 1..10, ring keeps 7..10
  EXPECT_EQ(hub.backlog(6).find("event: reset"), std::string::npos) << "7 is still kept";
  const std::string old = hub.backlog(2);
  EXPECT_NE(old.find("id: 10\nevent: reset\ndata: {\"reason\":\"events since then are no longer kept\",\"last_event_id\":10}"),
            std::string::npos)
      << old;
  EXPECT_EQ(old.find("event: gpu"), std::string::npos);
  EXPECT_NE(hub.backlog(5000).find("\"unknown event id\""), std::string::npos);
}

TEST(EventHub, NewlinesNeverSplitAnEvent) {
  EventHub hub;
  hub.publish("alert", "{\"a\":\n1}");
  EXPECT_NE(hub.backlog(0).find("data: {\"a\": 1}\n\n"), std::string::npos);
}

TEST(EventHub, FansOutInOrderWithoutAGapAndForgetsClosedStreams) {
  EventHub hub({16, 15s, 2, 1});
  hub.publish("gpu", "{\"before\":1}");
  auto a = std::make_shared<FakeStream>();
  auto b = std::make_shared<FakeStream>();
  auto c = std::make_shared<FakeStream>();
  ASSERT_TRUE(hub.subscribe(a, 0));  // missed event 1: replayed first
  ASSERT_TRUE(hub.subscribe(b, std::nullopt));
  EXPECT_FALSE(hub.subscribe(c, std::nullopt)) << "max_streams is 2";
  hub.publish("session", "{\"x\":2}");
  EXPECT_LT(a->text.find("id: 1\n"), a->text.find("id: 2\n"));
  EXPECT_NE(b->text.find("id: 2\nevent: session"), std::string::npos);
  EXPECT_EQ(b->text.find("id: 1\n"), std::string::npos);
  b->end();
  hub.keepAlive();
  EXPECT_NE(a->text.find(": keep-alive\n\n"), std::string::npos);
  EXPECT_EQ(hub.streams(), 1u);
  EXPECT_TRUE(hub.subscribe(c, std::nullopt)) << "the closed stream's place is free again";
}

TEST(EventRoutes, LastEventIdFromHeaderOrQueryAndNothingElse) {
  ApiRequest r;
  EXPECT_FALSE(parseLastEventId(r).value().has_value());
  r.headers = {{"last-event-id", "42"}};
  EXPECT_EQ(parseLastEventId(r).value().value(), 42u);
  r.params = {{"last_event_id", "43"}};
  EXPECT_EQ(parseLastEventId(r).value().value(), 43u);
  r.params = {{"last_event_id", "4x"}};
  EXPECT_FALSE(parseLastEventId(r).ok());
  r.params = {{"last_event_id", "-1"}};
  EXPECT_FALSE(parseLastEventId(r).ok());
}

TEST(EventRoutes, ANodeEditIsOneNodeEventWithTheNodeAsGetShowsIt) {
  EventHub hub({16, 15s, 10, 1});
  EventRoutes routes(hub, SessionView{});
  routes.onNode("status", json{{"name", "gpu-host"}, {"status", "maintenance"}, {"status_reason", "PSU\nswap"}});
  const std::string all = hub.backlog(0);
  const std::string head = "id: 1\nevent: node\ndata: ";
  const auto at = all.find(head);
  ASSERT_NE(at, std::string::npos) << all;
  const size_t from = at + head.size();
  const std::string data = all.substr(from, all.find('\n', from) - from);  // one line: the reason's newline escaped
  const json d = json::parse(data);
  EXPECT_EQ(d["action"], "status");
  EXPECT_EQ(d["node"]["status"], "maintenance");
  EXPECT_EQ(d["node"]["status_reason"], "PSU\nswap");
}

TEST(LoginSessions, CookiesAreRandomExpireWhenIdleAndAreBounded) {
  LoginOptions o;
  o.idle_expiry = 12h;
  o.max_sessions = 3;
  LoginSessions s(o);
  const auto t0 = LoginSessions::Clock::time_point{} + 1000h;
  const std::string a = s.create(Role::kAdmin, t0);
  const std::string v = s.create(Role::kViewer, t0 + 1s);
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, v);
  EXPECT_EQ(s.lookup(a, t0 + 11h).value(), Role::kAdmin);
  EXPECT_EQ(s.lookup(v, t0 + 11h).value(), Role::kViewer);
  EXPECT_EQ(s.lookup(a, t0 + 22h).value(), Role::kAdmin) << "each use restarts the idle timer";
  EXPECT_FALSE(s.lookup(a, t0 + 34h + 1s).has_value()) << "12 h idle";
  EXPECT_FALSE(s.lookup(std::string(64, '0'), t0).has_value());
  EXPECT_FALSE(s.lookup("", t0).has_value());
  const auto t1 = t0 + 100h;
  const std::string c1 = s.create(Role::kAdmin, t1);
  const std::string c2 = s.create(Role::kAdmin, t1 + 1s);
  const std::string c3 = s.create(Role::kAdmin, t1 + 2s);
  (void)s.lookup(c1, t1 + 3s);
  const std::string c4 = s.create(Role::kAdmin, t1 + 4s);
  EXPECT_EQ(s.size(), 3u);
  EXPECT_FALSE(s.lookup(c2, t1 + 5s).has_value()) << "the least recently used goes first";
  EXPECT_TRUE(s.lookup(c1, t1 + 5s).has_value());
  s.remove(c4);
  EXPECT_FALSE(s.lookup(c4, t1 + 5s).has_value());
}

TEST(LoginSessions, FailedLoginsAreRateLimitedPerSource) {
  LoginOptions o;
  o.max_failures = 3;
  o.failure_window = 60s;
  LoginSessions s(o);
  const auto t0 = LoginSessions::Clock::time_point{} + 1000h;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(s.allowed("10.0.0.1", t0));
    s.failed("10.0.0.1", t0);
  }
  EXPECT_FALSE(s.allowed("10.0.0.1", t0 + 1s));
  EXPECT_EQ(s.retryAfter("10.0.0.1", t0 + 1s).count(), 59);
  EXPECT_TRUE(s.allowed("10.0.0.2", t0 + 1s)) << "another source is not punished";
  EXPECT_TRUE(s.allowed("10.0.0.1", t0 + 61s)) << "a new window";
}

TEST(LoginSessions, CookieHeaderParsingAndSecretCompare) {
  EXPECT_EQ(cookieValue("a=1; sandman_session=abc; b=2", "sandman_session"), "abc");
  EXPECT_EQ(cookieValue("sandman_session=abc", "sandman_session"), "abc");
  EXPECT_EQ(cookieValue("xsandman_session=abc", "sandman_session"), "");
  EXPECT_EQ(cookieValue("", "sandman_session"), "");
  EXPECT_TRUE(secretEquals("abcdef0123456789", "abcdef0123456789"));
  EXPECT_FALSE(secretEquals("abcdef0123456789", "abcdef012345678"));
  EXPECT_FALSE(secretEquals("", "x"));
}

constexpr const char* kAdmin = "admin-token-0123456789abcdef";
constexpr const char* kViewer = "viewer-token-0123456789abcdef";

class ApiRolesTest : public testing::SessionHarness {
 protected:
  void SetUp() override {
    SessionHarness::SetUp();
    keys_ = std::make_unique<UserKeys>(*store_, clock_);
  }
  std::unique_ptr<ApiServer> server(std::string token = kAdmin, std::string viewer = kViewer) {
    ApiOptions o;
    o.token = std::move(token);
    o.viewer_token = std::move(viewer);
    return std::make_unique<ApiServer>(o, *sessions_, *keys_, runtime_, *store_);
  }
  static ApiResponse call(ApiServer& api, std::string method, std::string path,
                          std::vector<std::pair<std::string, std::string>> headers, std::string body = "") {
    ApiRequest req;
    req.method = std::move(method);
    req.target = path;
    req.path = std::move(path);
    req.headers = std::move(headers);
    if (!body.empty()) req.headers.emplace_back("content-type", "application/json");
    req.body = std::move(body);
    req.remote_addr = "127.0.0.1";
    ApiResponse res;
    api.handle(req, res);
    return res;
  }
  static std::string header(const ApiResponse& r, const std::string& name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return "";
  }
  static std::string cookieOf(const ApiResponse& r) {
    std::string c = header(r, "Set-Cookie");
    return c.substr(0, c.find(';'));
  }
  std::unique_ptr<UserKeys> keys_;
};

TEST_F(ApiRolesTest, ViewerTokenReadsButCannotWrite) {
  auto api = server();
  auto r = call(*api, "GET", "/api/v1/sessions", {{"authorization", std::string("Bearer ") + kViewer}});
  EXPECT_EQ(r.status, 200);
  r = call(*api, "POST", "/api/v1/sessions", {{"authorization", std::string("Bearer ") + kViewer}},
           R"({"user_id":"alice"})");
  EXPECT_EQ(r.status, 403);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["code"], "forbidden");
  EXPECT_NE(j["error"].get<std::string>().find("viewer"), std::string::npos);
  r = call(*api, "DELETE", "/api/v1/sessions/s-0000000000000001", {{"authorization", std::string("Bearer ") + kViewer}});
  EXPECT_EQ(r.status, 403);
  r = call(*api, "GET", "/api/v1/whoami", {{"authorization", std::string("Bearer ") + kViewer}});
  EXPECT_EQ(json::parse(r.body), json({{"role", "viewer"}, {"via", "token"}}));
  r = call(*api, "GET", "/api/v1/whoami", {{"authorization", std::string("Bearer ") + kAdmin}});
  EXPECT_EQ(json::parse(r.body), json({{"role", "admin"}, {"via", "token"}}));
  r = call(*api, "GET", "/api/v1/whoami", {{"authorization", "Bearer wrong-token-0123456789"}});
  EXPECT_EQ(r.status, 401);
}

TEST_F(ApiRolesTest, LoginCookieNeedsTheCsrfHeaderToWrite) {
  auto api = server();
  auto r = call(*api, "POST", "/api/v1/login", {}, R"({"token":"nope-nope-nope-nope"})");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(header(r, "Set-Cookie"), "") << "a wrong token sets nothing";
  r = call(*api, "POST", "/api/v1/login", {}, std::string(R"({"token":")") + kAdmin + "\"}");
  ASSERT_EQ(r.status, 204);
  const std::string set = header(r, "Set-Cookie");
  EXPECT_EQ(set.find(kAdmin), std::string::npos) << "the cookie is not the token";
  EXPECT_NE(set.find("; HttpOnly"), std::string::npos);
  EXPECT_NE(set.find("; SameSite=Strict"), std::string::npos);
  EXPECT_NE(set.find("; Path=/"), std::string::npos);
  EXPECT_EQ(set.find("Secure"), std::string::npos) << "plain HTTP";
  const std::string cookie = cookieOf(r);
  ASSERT_EQ(cookie.rfind("sandman_session=", 0), 0u);
  r = call(*api, "GET", "/api/v1/whoami", {{"cookie", "theme=dark; " + cookie}});
  EXPECT_EQ(json::parse(r.body), json({{"role", "admin"}, {"via", "cookie"}}));
  r = call(*api, "DELETE", "/api/v1/sessions/s-0000000000000001", {{"cookie", cookie}});
  EXPECT_EQ(r.status, 403) << "no CSRF header";
  EXPECT_EQ(json::parse(r.body)["code"], "forbidden");
  r = call(*api, "DELETE", "/api/v1/sessions/s-0000000000000001", {{"cookie", cookie}, {"x-sandman-csrf", "1"}});
  EXPECT_EQ(r.status, 404) << "authorised; the session just does not exist";
  r = call(*api, "POST", "/api/v1/logout", {{"cookie", cookie}});
  EXPECT_EQ(r.status, 204);
  EXPECT_NE(header(r, "Set-Cookie").find("sandman_session=; Max-Age=0"), std::string::npos);
  r = call(*api, "GET", "/api/v1/whoami", {{"cookie", cookie}});
  EXPECT_EQ(r.status, 401) << "logged out server-side too";
}

TEST_F(ApiRolesTest, ViewerLoginIsAViewerAndLoginsAreRateLimited) {
  auto api = server();
  auto r = call(*api, "POST", "/api/v1/login", {}, std::string(R"({"token":")") + kViewer + "\"}");
  ASSERT_EQ(r.status, 204);
  const std::string cookie = cookieOf(r);
  r = call(*api, "POST", "/api/v1/sessions", {{"cookie", cookie}, {"x-sandman-csrf", "1"}}, R"({"user_id":"alice"})");
  EXPECT_EQ(r.status, 403);
  for (int i = 0; i < 10; ++i) (void)call(*api, "POST", "/api/v1/login", {}, R"({"token":"guess-guess-guess"})");
  r = call(*api, "POST", "/api/v1/login", {}, std::string(R"({"token":")") + kAdmin + "\"}");
  EXPECT_EQ(r.status, 429) << "even the right token waits out the window";
  EXPECT_FALSE(header(r, "Retry-After").empty());
}

TEST_F(ApiRolesTest, AuthNoneIsAnAdmin) {
  auto api = server("", "");
  auto r = call(*api, "GET", "/api/v1/whoami", {});
  EXPECT_EQ(json::parse(r.body)["role"], "admin");
  r = call(*api, "POST", "/api/v1/login", {}, R"({"token":"anything"})");
  EXPECT_EQ(r.status, 204);
}

// The whole path: a real listener on loopback, a client reading the stream
// with curl's bytes, and a session's creation arriving as an event.
TEST_F(ApiRolesTest, StreamCarriesSessionEventsOverTheListener) {
  auto api = server();
  EventHub hub;
  EventRoutes routes(hub, {});
  api->addRoutes(routes);
  sessions_->setChangeListener([&routes](const Session& s, bool created) { routes.onSession(s, created); });
  ASSERT_TRUE(api->bind("127.0.0.1", 0).ok());
  std::thread serving([&] { api->serve(); });
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(api->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string req = std::string("GET /api/v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") +
                          kViewer + "\r\n\r\n";
  ASSERT_EQ(::write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string got;
  auto readUntil = [&](const std::string& needle) {
    char buf[4096];
    while (got.find(needle) == std::string::npos) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return false;
      got.append(buf, static_cast<size_t>(n));
    }
    return true;
  };
  ASSERT_TRUE(readUntil(": connected")) << got;
  EXPECT_NE(got.find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_EQ(got.find("Content-Length"), std::string::npos);
  EXPECT_EQ(hub.streams(), 1u);
  const Session s = create("alice");
  ASSERT_TRUE(readUntil("\"action\":\"created\"")) << got;
  EXPECT_NE(got.find("event: session\ndata: {\"action\":\"created\",\"session\":{"), std::string::npos);
  EXPECT_NE(got.find(s.id), std::string::npos);
  ::close(fd);
  for (int i = 0; i < 100 && hub.streams() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(hub.streams(), 0u) << "a client that left is forgotten";
  api->stop();
  serving.join();
}

// A client that stops reading is cut off once it is 4 MiB behind, and the
// publisher never waits for it.
TEST_F(ApiRolesTest, AStreamThatStopsReadingIsCutOffWithoutStallingPublishers) {
  auto api = server();
  EventHub hub;
  EventRoutes routes(hub, {});
  api->addRoutes(routes);
  ASSERT_TRUE(api->bind("127.0.0.1", 0).ok());
  std::thread serving([&] { api->serve(); });
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(api->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string req = std::string("GET /api/v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") +
                          kAdmin + "\r\n\r\n";
  ASSERT_EQ(::write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  for (int i = 0; i < 200 && hub.streams() == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(hub.streams(), 1u);
  const std::string big = "{\"pad\":\"" + std::string(64 * 1024, 'x') + "\"}";
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 400 && hub.streams() > 0; ++i) {
    hub.publish("gpu", big);
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "publishing never waits on the client";
  EXPECT_EQ(hub.streams(), 0u) << "25 MiB offered to a client that reads nothing";
  ::close(fd);
  api->stop();
  serving.join();
}

}  // namespace
}  // namespace sandman
