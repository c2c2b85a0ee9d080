// The API's HTTP listener over real loopback sockets, driven byte by byte the
// way broken and hostile clients talk: bytes that are not UTF-8, truncated and
// oversized heads, handlers that throw, slow clients by the hundred, keep-alive.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/route_server.h"

namespace sandman {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A blocking loopback TCP client with a receive timeout, bound to `source`
// (any 127/8 address) so tests can play several client machines.
class RawClient {
 public:
  RawClient(int port, const char* source = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, source, &local.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Reads one response (head and Content-Length body), or "" on close/timeout.
  std::string readResponse(std::chrono::milliseconds timeout = 3000ms) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      size_t head_end = pending_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t length = 0;
        auto pos = lower(pending_.substr(0, head_end)).find("content-length:");
        if (pos != std::string::npos) length = std::stoul(pending_.substr(pos + 15));
        if (pending_.size() >= head_end + 4 + length) {
          std::string response = pending_.substr(0, head_end + 4 + length);
          pending_.erase(0, head_end + 4 + length);
          return response;
        }
      }
      if (!readSome(deadline)) return "";
    }
  }
  // True when the server closed the connection before `timeout`.
  bool closedWithin(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (readSome(deadline)) {
    }
    return closed_;
  }

 private:
  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  bool readSome(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string pending_;
};

int statusOf(const std::string& response) {
  if (response.compare(0, 9, "HTTP/1.1 ") != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

class HttpListenerTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits = {}) {
    server_ = std::make_unique<testing::RouteServer>(limits);
    auto& r = server_->router();
    r.get("/healthz", [](const ApiRequest&, ApiResponse& res) { sendJson(res, 200, {{"status", "healthy"}}); });
    r.get("/echo/{word}", [](const ApiRequest& req, ApiResponse& res) {
      sendJson(res, 200, {{"word", req.matches[1]}, {"q", req.get_param_value("q")}});
    });
    r.post("/echo", [](const ApiRequest& req, ApiResponse& res) { sendJson(res, 200, {{"bytes", req.body.size()}}); });
    r.get("/throw", [](const ApiRequest&, ApiResponse&) { throw std::runtime_error("boom"); });
    port_ = server_->start();
    ASSERT_NE(port_, 0);
  }
  // A fresh connection's GET /healthz: 200 or the failure.
  int healthz() {
    RawClient c(port_);
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    return statusOf(c.readResponse());
  }

  std::unique_ptr<testing::RouteServer> server_;
  int port_ = 0;
};

TEST_F(HttpListenerTest, PathThatIsNotUtf8IsA400AndTheServerLivesOn) {
  start();
  RawClient c(port_);
  c.send("GET /api/v1/sessions/\xff\xfe%ff HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string r = c.readResponse();
  EXPECT_EQ(statusOf(r), 400) << r;
  EXPECT_NE(r.find("\"code\":\"invalid\""), std::string::npos) << r;
  RawClient d(port_);
  d.send("GET /echo/x%C3%28 HTTP/1.1\r\nHost: x\r\n\r\n");  // a decoded invalid sequence
  EXPECT_EQ(statusOf(d.readResponse()), 400);
  EXPECT_EQ(healthz(), 200);
}

TEST_F(HttpListenerTest, QueryHeaderAndBodyThatAreNotUtf8AreA400) {
  start();
  {
    RawClient c(port_);
    c.send("GET /echo/a?q=%E0%80%80 HTTP/1.1\r\nHost: x\r\n\r\n");  // overlong NUL
    EXPECT_EQ(statusOf(c.readResponse()), 400);
  }
  {
    RawClient c(port_);
    c.send("GET /echo/a HTTP/1.1\r\nHost: x\r\nX-Name: \xc3\x28\r\n\r\n");
    EXPECT_EQ(statusOf(c.readResponse()), 400);
  }
  {
    RawClient c(port_);
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"a\":\"\xed\xa0\x80\"}  ");
    EXPECT_EQ(statusOf(c.readResponse()), 400);
  }
  RawClient ok(port_);
  ok.send("GET /echo/caf%C3%A9?q=%C3%BC+x HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string r = ok.readResponse();
  EXPECT_EQ(statusOf(r), 200);
  EXPECT_NE(r.find("\"word\":\"caf\xc3\xa9\""), std::string::npos) << r;
  EXPECT_NE(r.find("\"q\":\"\xc3\xbc x\""), std::string::npos) << r;
}

TEST_F(HttpListenerTest, TruncatedAndMalformedHeadsNeverTakeTheServerDown) {
  HttpLimits limits;
  limits.head_timeout = 300ms;
  start(limits);
  for (const char* garbage : {"GET / HTTP/1.1\r\nHost: x\r\n", "\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
                              "GET / HTTP/1.1\r\nBad Header\r\n\r\n", "GET / HTTP/1.1\r\n: x\r\n\r\n",
                              "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"}) {
    RawClient c(port_);
    c.send(garbage);
    c.readResponse(1000ms);  // a 400/408 or a close; either way, no crash
  }
  {
    RawClient c(port_);
    c.send("GET / HTTP/1.1\r\nHost: x\r\n");  // the head never ends
    const auto t0 = Clock::now();
    EXPECT_TRUE(c.closedWithin(2000ms)) << "a head that never ends holds its connection";
    EXPECT_GE(Clock::now() - t0, 250ms) << "closed before the 300 ms head deadline";
  }
  {
    // A byte every 50 ms keeps each read alive; the deadline covers the whole head.
    RawClient c(port_);
    c.send("GET / HTTP/1.1\r\n");
    const auto t0 = Clock::now();
    bool sending = true;
    while (sending && Clock::now() - t0 < 3s) {
      std::this_thread::sleep_for(50ms);
      sending = c.send("X");
    }
    EXPECT_TRUE(c.closedWithin(500ms) || !sending);
    EXPECT_LT(Clock::now() - t0, 1500ms) << "a trickled head outlived its 300 ms deadline";
  }
  EXPECT_EQ(healthz(), 200);
  EXPECT_GE(server_->listener().stats().rejected_requests, 5u);
  EXPECT_GE(server_->listener().stats().timed_out_connections, 2u);
}

TEST_F(HttpListenerTest, HeadLimitsOnSizeAndCount) {
  start();
  std::string many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  RawClient c(port_);
  c.send(many + "\r\n");
  EXPECT_EQ(statusOf(c.readResponse()), 431);

  RawClient big(port_);
  big.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_EQ(statusOf(big.readResponse()), 431);

  // An endless stream of header lines is cut off at the limit, not buffered.
  RawClient stream(port_);
  stream.send("GET /healthz HTTP/1.1\r\n");
  for (int i = 0; i < 2000 && stream.send("X-Pad: " + std::string(100, 'p') + "\r\n"); ++i) {
  }
  EXPECT_EQ(statusOf(stream.readResponse()), 431);
  EXPECT_EQ(healthz(), 200);
}

TEST_F(HttpListenerTest, BodyRulesLengthRequiredAndTooLarge) {
  start();
  RawClient chunked(port_);
  chunked.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(statusOf(chunked.readResponse()), 411);
  RawClient no_length(port_);
  no_length.send("POST /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(statusOf(no_length.readResponse()), 411);
  RawClient large(port_);
  large.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n");
  EXPECT_EQ(statusOf(large.readResponse()), 413);
  // Expect: 100-continue is answered, then the body is read.
  RawClient expect(port_);
  expect.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(statusOf(expect.readResponse()), 100);
  expect.send("{}");
  std::string r = expect.readResponse();
  EXPECT_EQ(statusOf(r), 200);
  EXPECT_NE(r.find("\"bytes\":2"), std::string::npos) << r;
}

TEST_F(HttpListenerTest, AHandlerThatThrowsIsA500) {
  start();
  RawClient c(port_);
  c.send("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string r = c.readResponse();
  EXPECT_EQ(statusOf(r), 500) << r;
  EXPECT_EQ(healthz(), 200);
}

// The Nagle/delayed-ACK stall made every kept-alive request wait ~40 ms.
TEST_F(HttpListenerTest, KeptAliveRequestsDoNotWaitOnDelayedAcks) {
  start();
  RawClient c(port_);
  const auto t0 = Clock::now();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(statusOf(c.readResponse()), 200) << "request " << i;
  }
  auto elapsed = Clock::now() - t0;
  EXPECT_LT(elapsed, 1500ms) << "100 kept-alive requests took "
                             << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
}

TEST_F(HttpListenerTest, IdleKeptAliveConnectionsAreClosed) {
  HttpLimits limits;
  limits.idle_timeout = 300ms;
  start(limits);
  RawClient c(port_);
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(statusOf(c.readResponse()), 200);
  EXPECT_TRUE(c.closedWithin(2000ms));
}

TEST_F(HttpListenerTest, ConnectionCapsPerSourceAndInAll) {
  HttpLimits limits;
  limits.max_connections_per_source = 5;
  limits.max_connections = 8;
  start(limits);
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 5; ++i) held.push_back(std::make_unique<RawClient>(port_, "127.0.0.2"));
  RawClient over(port_, "127.0.0.2");
  EXPECT_TRUE(over.closedWithin(2000ms)) << "a sixth connection from one source stays open";
  EXPECT_EQ(healthz(), 200) << "another source is not affected by one source's cap";
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<RawClient>(port_, "127.0.0.3"));
  RawClient full(port_, "127.0.0.4");
  EXPECT_TRUE(full.closedWithin(2000ms)) << "a connection past the global cap stays open";
  held.clear();
  // The counts come back as connections close.
  for (int i = 0; i < 50 && healthz() != 200; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(healthz(), 200);
  EXPECT_GE(server_->listener().stats().refused_connections, 2u);
}

// 200 slow or half-open clients hold sockets, never threads: /healthz from
// another client keeps answering within 100 ms.
TEST_F(HttpListenerTest, TwoHundredSlowClientsDoNotDelayOthers) {
  start();
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 200; ++i) {
    const char* source = i % 2 ? "127.0.0.2" : "127.0.0.3";
    slow.push_back(std::make_unique<RawClient>(port_, source));
    if (i % 3 == 0) slow.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");  // half a head
    if (i % 3 == 1) slow.back()->send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
  }
  std::vector<double> ms;
  for (int i = 0; i < 50; ++i) {
    auto t0 = Clock::now();
    ASSERT_EQ(healthz(), 200);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    for (int k = i * 4; k < i * 4 + 4; ++k) slow[static_cast<size_t>(k)]->send("a");  // trickle
  }
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms[ms.size() * 99 / 100], 100.0) << "p99 of /healthz under 200 slow clients";
}

}  // namespace
}  // namespace sandman
