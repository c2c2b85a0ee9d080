#include "ssh/kexinit_probe.h"

#include <gtest/gtest.h>

namespace sandman {
namespace {

std::string packet(unsigned char type, uint32_t len = 1000) {
  std::string p;
  for (int shift : {24, 16, 8, 0}) p += static_cast<char>((len >> shift) & 0xff);
  p += static_cast<char>(4);
  p += static_cast<char>(type);
  return p;
}

TEST(SshServerHello, BannerThenKexInitIsAnAnswer) {
  EXPECT_EQ(classifySshServerHello("SSH-2.0-OpenSSH_9.2p1 Debian\r\n" + packet(20)), 1);
}

TEST(SshServerHello, IncompleteNeedsMore) {
  EXPECT_EQ(classifySshServerHello(""), 0);
  EXPECT_EQ(classifySshServerHello("SSH-2.0-Open"), 0);
  EXPECT_EQ(classifySshServerHello("SSH-2.0-OpenSSH_9.2\r\n"), 0);
  EXPECT_EQ(classifySshServerHello("SSH-2.0-OpenSSH_9.2\r\n" + packet(20).substr(0, 3)), 0);
}

TEST(SshServerHello, PreBannerLinesAreAllowed) {
  EXPECT_EQ(classifySshServerHello("hello\r\nSSH-2.0-x\r\n" + packet(20)), 1);
}

TEST(SshServerHello, AnythingElseIsRefused) {
  EXPECT_EQ(classifySshServerHello("SSH-1.5-old\r\n"), -1);
  EXPECT_EQ(classifySshServerHello("HTTP/1.1 400 Bad Request\r\n\r\n" + std::string(300, 'x')), -1);
  EXPECT_EQ(classifySshServerHello("SSH-2.0-x\r\n" + packet(21)), -1);
  EXPECT_EQ(classifySshServerHello("SSH-2.0-x\r\n" + packet(20, 5)), -1);
  EXPECT_EQ(classifySshServerHello(std::string(300, 'a')), -1);
}

}  // namespace
}  // namespace sandman
