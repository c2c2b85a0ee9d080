// event_streams_bench: does holding many Server-Sent Event streams starve the
// API? One process opens N streams (GET /api/v1/events/stream) and drains
// them on an epoll thread, then times GET /healthz on one keep-alive
// connection; the same /healthz run before any stream is open is the floor.
// Prints p50/p99 of both and their ratio; exit 1 when p99 with streams is
// over --max-p99-ms or a stream failed to open. Loopback only; bounded in
// streams (<= 1000) and time (--seconds per phase, 120 s alarm overall).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int port = 0;
  std::string token;
  int streams = 500;
  double seconds = 10;
  double gap_ms = 5;
  double max_p99_ms = 50;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "event_streams_bench: %s\n", what.c_str());
  std::exit(2);
}

// A loopback connection from source address 127.0.0.<src>: the daemon caps
// connections per source, and a real dashboard audience comes from many.
int dial(int port, int src) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket: " + std::string(std::strerror(errno)));
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl((127u << 24) | static_cast<unsigned>(src));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) die("bind 127.0.0." + std::to_string(src));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) die("connect: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void sendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) die("write failed");
    off += static_cast<size_t>(n);
  }
}

// One GET /healthz on a kept-alive connection; seconds from write to the last body byte.
double healthz(int fd, std::string& buf) {
  static const std::string kReq = "GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n";
  const auto t0 = Clock::now();
  sendAll(fd, kReq);
  buf.clear();
  char tmp[4096];
  while (true) {
    const size_t head_end = buf.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      const size_t cl = buf.find("Content-Length: ");
      if (cl == std::string::npos || cl > head_end) die("healthz answer without Content-Length");
      const size_t len = std::strtoul(buf.c_str() + cl + 16, nullptr, 10);
      if (buf.size() >= head_end + 4 + len) {
        if (buf.compare(0, 12, "HTTP/1.1 200") != 0) die("healthz: " + buf.substr(0, 40));
        break;
      }
    }
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) die("healthz connection closed");
    buf.append(tmp, static_cast<size_t>(n));
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Latency {
  double p50 = 0, p99 = 0, max = 0;
  size_t n = 0;
};

Latency measure(const Args& a) {
  int fd = dial(a.port, 1);
  std::string buf;
  std::vector<double> ms;
  for (int i = 0; i < 20; ++i) healthz(fd, buf);  // warm-up
  const auto end = Clock::now() + std::chrono::duration<double>(a.seconds);
  while (Clock::now() < end) {
    ms.push_back(healthz(fd, buf) * 1000);
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(a.gap_ms));
  }
  ::close(fd);
  std::sort(ms.begin(), ms.end());
  Latency l;
  l.n = ms.size();
  l.p50 = ms[ms.size() / 2];
  l.p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  l.max = ms.back();
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--port") a.port = std::atoi(v);
    else if (k == "--token") a.token = v;
    else if (k == "--streams") a.streams = std::atoi(v);
    else if (k == "--seconds") a.seconds = std::atof(v);
    else if (k == "--gap-ms") a.gap_ms = std::atof(v);
    else if (k == "--max-p99-ms") a.max_p99_ms = std::atof(v);
    else die("unknown argument " + k);
  }
  if (a.port <= 0 || a.streams < 1 || a.streams > 1000 || a.seconds <= 0 || a.seconds > 60) {
    die("usage: event_streams_bench --port P [--token T] [--streams N<=1000] [--seconds S<=60] [--gap-ms G] [--max-p99-ms M]");
  }
  ::alarm(120);

  const Latency floor = measure(a);

  // The streams: 100 per source address (the daemon allows 128 per source).
  const std::string req = "GET /api/v1/events/stream HTTP/1.1\r\nHost: bench\r\n" +
                          (a.token.empty() ? std::string() : "Authorization: Bearer " + a.token + "\r\n") + "\r\n";
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<int> fds;
  std::vector<std::string> heads(static_cast<size_t>(a.streams));
  std::vector<bool> opened(static_cast<size_t>(a.streams));
  for (int i = 0; i < a.streams; ++i) {
    int fd = dial(a.port, 2 + i / 100);
    sendAll(fd, req);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    fds.push_back(fd);
  }
  std::atomic<int> open_count{0}, closed{0};
  std::atomic<uint64_t> bytes{0}, gpu_events{0};
  std::atomic<bool> stop{false};
  std::thread drain([&] {
    std::vector<epoll_event> evs(256);
    char buf[65536];
    while (!stop.load()) {
      int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
      for (int k = 0; k < n; ++k) {
        const uint32_t i = evs[static_cast<size_t>(k)].data.u32;
        ssize_t got = ::read(fds[i], buf, sizeof buf);
        if (got <= 0) {
          ::epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], nullptr);
          closed.fetch_add(1);
          continue;
        }
        bytes.fetch_add(static_cast<uint64_t>(got));
        std::string_view chunk(buf, static_cast<size_t>(got));
        for (size_t p = chunk.find("event: gpu"); p != std::string_view::npos; p = chunk.find("event: gpu", p + 1)) {
          gpu_events.fetch_add(1);
        }
        if (!opened[i]) {
          heads[i].append(chunk.substr(0, std::min<size_t>(chunk.size(), 512)));
          if (heads[i].find(": connected") != std::string::npos) {
            if (heads[i].compare(0, 12, "HTTP/1.1 200") != 0) die("stream refused: " + heads[i].substr(0, 80));
            opened[i] = true;
            open_count.fetch_add(1);
          }
        }
      }
    }
  });
  const auto open_deadline = Clock::now() + std::chrono::seconds(20);
  while (open_count.load() < a.streams && closed.load() == 0 && Clock::now() < open_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (open_count.load() < a.streams) {
    stop = true;
    drain.join();
    std::printf("streams open: %d of %d (closed: %d)\n", open_count.load(), a.streams, closed.load());
    return 1;
  }
  const uint64_t gpu_before = gpu_events.load();
  const Latency loaded = measure(a);
  const uint64_t gpu_during = gpu_events.load() - gpu_before;
  const int still_open = a.streams - closed.load();
  stop = true;
  drain.join();
  for (int fd : fds) ::close(fd);

  std::printf("streams held: %d (all open before and after: %s)\n", a.streams, still_open == a.streams ? "yes" : "no");
  std::printf("gpu events delivered during the loaded run: %llu (%.1f per stream), %.1f MB read in all\n",
              static_cast<unsigned long long>(gpu_during), static_cast<double>(gpu_during) / a.streams,
              static_cast<double>(bytes.load()) / 1e6);
  std::printf("GET /healthz, no streams:   n=%zu p50=%.3f ms p99=%.3f ms max=%.3f ms\n", floor.n, floor.p50, floor.p99,
              floor.max);
  std::printf("GET /healthz, %d streams: n=%zu p50=%.3f ms p99=%.3f ms max=%.3f ms\n", a.streams, loaded.n, loaded.p50,
              loaded.p99, loaded.max);
  std::printf("p99 ratio (streams / floor): %.2f\n", loaded.p99 / floor.p99);
  const bool ok = loaded.p99 < a.max_p99_ms && still_open == a.streams;
  std::printf("%s: p99 with %d streams %s %.0f ms\n", ok ? "PASS" : "FAIL", a.streams, ok ? "under" : "not under",
              a.max_p99_ms);
  return ok ? 0 : 1;
}
