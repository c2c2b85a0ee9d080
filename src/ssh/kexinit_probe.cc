#include "ssh/kexinit_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sandman {
namespace {

constexpr unsigned char kMsgKexInit = 20;  // RFC 4253 section 7.1
constexpr size_t kMaxHello = 8192;          // RFC 4253 allows 255-byte lines before the banner

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int msLeft(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

int classifySshServerHello(const std::string& b) {
  // Lines before "SSH-" are allowed (RFC 4253 4.2); the banner line ends in \n.
  size_t pos = 0;
  while (true) {
    size_t eol = b.find('\n', pos);
    if (eol == std::string::npos) {
      if (b.size() - pos > 255) return -1;
      return b.size() > kMaxHello ? -1 : 0;
    }
    if (b.compare(pos, 4, "SSH-") == 0) {
      if (b.compare(pos, 8, "SSH-2.0-") != 0 && b.compare(pos, 9, "SSH-1.99-") != 0) return -1;
      pos = eol + 1;
      break;
    }
    pos = eol + 1;
    if (pos > kMaxHello) return -1;
  }
  // Binary packet: uint32 length, byte padding length, byte message type.
  if (b.size() - pos < 6) return 0;
  auto u = [&](size_t i) { return static_cast<unsigned char>(b[pos + i]); };
  uint32_t len = (uint32_t{u(0)} << 24) | (uint32_t{u(1)} << 16) | (uint32_t{u(2)} << 8) | u(3);
  if (len < 12 || len > 35000) return -1;
  return u(5) == kMsgKexInit ? 1 : -1;
}

Status probeSshKexInit(const std::string& host, int port, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return invalid("probe host must be an IPv4 address: " + host);
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return unavailable("socket: " + std::string(strerror(errno)));
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    return unavailable("connect: " + std::string(strerror(errno)));
  }
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, msLeft(deadline)) != 1) return unavailable("connect timed out");
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return unavailable("connect: " + std::string(strerror(err)));
  static const char kBanner[] = "SSH-2.0-SandmanProbe\r\n";
  if (::send(fd.get(), kBanner, sizeof kBanner - 1, MSG_NOSIGNAL) < 0) {
    return unavailable("send: " + std::string(strerror(errno)));
  }
  std::string got;
  char buf[2048];
  while (true) {
    p = {fd.get(), POLLIN, 0};
    if (::poll(&p, 1, msLeft(deadline)) != 1) return unavailable("no SSH answer before the timeout");
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n == 0) return unavailable("connection closed before the SSH handshake");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return unavailable("recv: " + std::string(strerror(errno)));
    }
    got.append(buf, static_cast<size_t>(n));
    switch (classifySshServerHello(got)) {
      case 1: return {};
      case -1: return unavailable("the server's answer is not an SSH handshake");
      default: break;
    }
  }
}

}  // namespace sandman
