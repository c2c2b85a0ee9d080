// Key generation and public-key-line validation, checked against OpenSSH's
// own ssh-keygen (the tool that will read what we write).
#include "ssh/keys.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sandman {
namespace {

namespace fs = std::filesystem;

class SshKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandman-keys-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs a command (paths are ours, no quoting needed) and returns stdout.
  static std::string run(const std::string& cmd, int* status) {
    std::string out;
    FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
    if (p == nullptr) {
      *status = -1;
      return out;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    *status = pclose(p);
    return out;
  }

  // A key made by ssh-keygen: its .pub line, without the trailing newline.
  std::string keygen(const std::string& type, int bits) {
    std::string file = dir_ + "/" + type + std::to_string(bits);
    std::string cmd = "ssh-keygen -q -N '' -C tester@example -t " + type +
                      (bits > 0 ? " -b " + std::to_string(bits) : "") + " -f " + file;
    int st = 0;
    run(cmd, &st);
    EXPECT_EQ(st, 0) << cmd;
    std::ifstream in(file + ".pub");
    std::string line;
    std::getline(in, line);
    return line;
  }

  std::string dir_;
};

std::string fieldsOf(const std::string& line, int n) {
  std::istringstream in(line);
  std::string out, f;
  for (int i = 0; i < n && (in >> f); ++i) out += (i ? " " : "") + f;
  return out;
}

std::string base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) v |= static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::string unbase64(const std::string& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* at = c == '=' ? nullptr : std::strchr(a, c);
    if (at == nullptr) break;
    acc = (acc << 6) | static_cast<uint32_t>(at - a);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

void expectRejected(const std::string& line, const std::string& hint) {
  auto r = parsePublicKeyLine(line);
  ASSERT_FALSE(r.ok()) << "accepted: " << line.substr(0, 80);
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(r.error().message.rfind("ssh_public_key: ", 0), 0u) << r.error().message;
  EXPECT_NE(r.error().message.find(hint), std::string::npos)
      << "message '" << r.error().message << "' lacks '" << hint << "'";
}

TEST_F(SshKeysTest, GeneratedPairIsReadByOpenSsh) {
  auto pair = generateEd25519("sandman-host s-1");
  ASSERT_TRUE(pair.ok()) << pair.error().message;
  EXPECT_EQ(pair->public_line.rfind("ssh-ed25519 ", 0), 0u);
  EXPECT_EQ(pair->public_line.substr(pair->public_line.size() - 17), " sandman-host s-1");
  EXPECT_EQ(pair->private_openssh.rfind("-----BEGIN OPENSSH PRIVATE KEY-----\n", 0), 0u);
  EXPECT_NE(pair->private_openssh.find("-----END OPENSSH PRIVATE KEY-----\n"), std::string::npos);

  std::string file = dir_ + "/id_ed25519";
  int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, pair->private_openssh.data(), pair->private_openssh.size()),
            static_cast<ssize_t>(pair->private_openssh.size()));
  close(fd);

  int st = 0;
  std::string derived = run("ssh-keygen -y -f " + file, &st);
  ASSERT_EQ(st, 0) << "ssh-keygen could not read the private key";
  EXPECT_EQ(fieldsOf(derived, 2), fieldsOf(pair->public_line, 2));

  // Our own validator accepts what we generate.
  auto parsed = parsePublicKeyLine(pair->public_line);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, pair->public_line);
}

// The private section of the file, as ssh-keygen lays it out: check ints,
// type, public, private, comment, then 1, 2, 3... up to the 8-byte block.
TEST_F(SshKeysTest, GeneratedPrivateKeyIsPaddedLikeSshKeygen) {
  for (std::string comment : {"", "sandman-host s-1"}) {
    auto pair = generateEd25519(comment);
    ASSERT_TRUE(pair.ok()) << pair.error().message;
    std::string file = dir_ + "/pad";
    std::ofstream(file) << pair->private_openssh;
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);  // ssh-keygen insists
    // ssh-keygen re-saves the same key (keeping the empty comment libssh
    // writes inside the private section; the comment is on the public line).
    int st = 0;
    run("ssh-keygen -q -c -C \"\" -f " + file, &st);
    ASSERT_EQ(st, 0);
    std::ifstream in(file);
    std::stringstream again;
    again << in.rdbuf();
    // Check ints are random per write, so compare lengths (the padding) and the key.
    EXPECT_EQ(again.str().size(), pair->private_openssh.size()) << "comment '" << comment << "'";
    fs::remove(file);
  }
}

// Every client a user may hold reads the key Sandman hands out: OpenSSH,
// Paramiko, AsyncSSH (2.10 refused 16-byte padding) and PuTTY's puttygen.
TEST_F(SshKeysTest, GeneratedPrivateKeyLoadsInEveryClient) {
  auto pair = generateEd25519("sandman s-1");
  ASSERT_TRUE(pair.ok()) << pair.error().message;
  std::string file = dir_ + "/id_ed25519";
  int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, pair->private_openssh.data(), pair->private_openssh.size()),
            static_cast<ssize_t>(pair->private_openssh.size()));
  close(fd);
  const std::string blob = fieldsOf(pair->public_line, 2);
  int st = 0;
  EXPECT_EQ(fieldsOf(run("ssh-keygen -y -f " + file, &st), 2), blob);
  EXPECT_EQ(st, 0) << "ssh-keygen";
  // Debian's python3 (the one with python3-paramiko / python3-asyncssh).
  std::string py = "/usr/bin/python3 -c ";
  std::string out = run(py + "'import paramiko,sys; k=paramiko.Ed25519Key.from_private_key_file(sys.argv[1]);"
                              "print(k.get_name(), k.get_base64())' " + file, &st);
  EXPECT_EQ(st, 0) << "paramiko";
  EXPECT_EQ(fieldsOf(out, 2), blob);
  out = run(py + "'import asyncssh,sys; k=asyncssh.read_private_key(sys.argv[1]);"
                 "sys.stdout.write(k.export_public_key().decode())' " + file, &st);
  EXPECT_EQ(st, 0) << "asyncssh";
  EXPECT_EQ(fieldsOf(out, 2), blob);
  out = run("puttygen " + file + " -O public-openssh -o /dev/stdout", &st);
  EXPECT_EQ(st, 0) << "puttygen";
  EXPECT_EQ(fieldsOf(out, 2), blob);
}

TEST_F(SshKeysTest, EachGeneratedPairIsNew) {
  auto a = generateEd25519("");
  auto b = generateEd25519("");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->public_line, b->public_line);
  EXPECT_EQ(std::count(a->public_line.begin(), a->public_line.end(), ' '), 1);  // no comment
}

TEST_F(SshKeysTest, GenerateRefusesMultiLineComment) {
  EXPECT_FALSE(generateEd25519("a\nb").ok());
}

TEST_F(SshKeysTest, AcceptsKeysFromSshKeygen) {
  for (auto [type, bits] : {std::pair<std::string, int>{"ed25519", 0}, {"rsa", 3072},
                            {"ecdsa", 256}, {"ecdsa", 521}}) {
    std::string line = keygen(type, bits);
    ASSERT_FALSE(line.empty());
    auto r = parsePublicKeyLine(line);
    ASSERT_TRUE(r.ok()) << type << ": " << r.error().message;
    EXPECT_EQ(*r, line);
  }
}

TEST_F(SshKeysTest, NormalisesSurroundingWhitespaceAndTrailingNewline) {
  std::string line = keygen("ed25519", 0);
  auto r = parsePublicKeyLine("  " + line + "  \r\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, line);
  auto spaced = parsePublicKeyLine(fieldsOf(line, 1) + "    " + fieldsOf(line, 2).substr(12));
  ASSERT_TRUE(spaced.ok()) << spaced.error().message;
  EXPECT_EQ(*spaced, fieldsOf(line, 2));  // no comment kept when there is none
}

TEST_F(SshKeysTest, RejectsEmptyAndOversized) {
  expectRejected("", "is empty");
  expectRejected("   \n", "is empty");
  std::string line = keygen("ed25519", 0);
  expectRejected(line + " " + std::string(9000, 'c'), "8192");
}

TEST_F(SshKeysTest, RejectsLineBreaksAndControlCharacters) {
  std::string line = keygen("ed25519", 0);
  expectRejected(line + "\n" + line, "line break");
  expectRejected(line + "\r" + "x", "line break");
  expectRejected(line + "\x01", "control character");
  expectRejected(fieldsOf(line, 1) + "\t" + fieldsOf(line, 2).substr(12), "control character");
}

TEST_F(SshKeysTest, RejectsAuthorizedKeysOptions) {
  std::string line = keygen("ed25519", 0);
  expectRejected("from=\"10.0.0.1\" " + line, "options");
  expectRejected("command=\"/bin/sh -c id\" " + line, "options");
  expectRejected("no-pty " + line, "options");
  expectRejected("restrict,pty " + line, "options");
}

TEST_F(SshKeysTest, RejectsUnknownTypes) {
  std::string line = keygen("ed25519", 0);
  std::string blob = fieldsOf(line, 2).substr(12);
  expectRejected("ssh-dss " + blob, "key type 'ssh-dss' is not accepted");
  expectRejected("ssh-ed25519-cert-v01@openssh.com " + blob, "is not accepted");
  expectRejected("hello world", "key type 'hello' is not accepted");
}

TEST_F(SshKeysTest, RejectsBrokenKeyData) {
  std::string line = keygen("ed25519", 0);
  std::string blob = fieldsOf(line, 2).substr(12);
  expectRejected("ssh-ed25519", "missing");
  expectRejected("ssh-ed25519 AAAA!!!!", "not valid base64");
  expectRejected("ssh-ed25519 " + blob.substr(0, blob.size() - 8), "");  // truncated
  // The key's length prefix (32) changed to 36.
  expectRejected("ssh-ed25519 " + blob.substr(0, 24) + "J" + blob.substr(25), "not a valid");
  // An otherwise fine key with extra bytes appended to the blob.
  ASSERT_EQ(base64(unbase64(blob)), blob);
  expectRejected("ssh-ed25519 " + base64(unbase64(blob) + std::string(3, '\0')), "not a valid");
}

TEST_F(SshKeysTest, RejectsTypeThatDoesNotMatchTheBlob) {
  std::string ed = keygen("ed25519", 0);
  std::string ed_blob = fieldsOf(ed, 2).substr(12);
  expectRejected("ssh-rsa " + ed_blob, "but the key data is a 'ssh-ed25519' key");
  expectRejected("ecdsa-sha2-nistp256 " + ed_blob, "but the key data is a 'ssh-ed25519' key");
  std::string ec = keygen("ecdsa", 384);
  expectRejected("ecdsa-sha2-nistp256 " + fieldsOf(ec, 2).substr(20), "ecdsa-sha2-nistp384");
}

TEST_F(SshKeysTest, RejectsShortRsa) {
  std::string line = keygen("rsa", 1024);
  ASSERT_FALSE(line.empty());
  expectRejected(line, "1024 bits");
}

TEST_F(SshKeysTest, RejectsPrivateKeyWithAdvice) {
  auto pair = generateEd25519("");
  ASSERT_TRUE(pair.ok());
  expectRejected(pair->private_openssh, "private key");
}

}  // namespace
}  // namespace sandman
