#include "ssh/openssh_private_key.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <optional>
#include <string_view>

namespace sandman {
namespace {

constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
constexpr std::string_view kEnd = "-----END OPENSSH PRIVATE KEY-----";
constexpr std::string_view kMagic{"openssh-key-v1\0", 15};
constexpr size_t kNoneBlock = 8;   // block size of cipher "none" (OpenSSH cipher.c)
constexpr size_t kLineWidth = 70;  // ssh-keygen's base64 line width
constexpr const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::optional<std::string> decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '\n' || c == '\r' || c == '=') continue;
    const char* p = std::char_traits<char>::find(kAlphabet, 64, c);
    if (p == nullptr) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(p - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string encode(std::string_view in) {
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

// Walks SSH wire-format fields of a buffer.
struct Wire {
  std::string_view b;
  size_t pos = 0;
  std::optional<uint32_t> u32() {
    if (b.size() - pos < 4) return std::nullopt;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | uint8_t(b[pos + i]);
    pos += 4;
    return v;
  }
  std::optional<std::string_view> str() {
    auto n = u32();
    if (!n || b.size() - pos < *n) return std::nullopt;
    auto s = b.substr(pos, *n);
    pos += *n;
    return s;
  }
};

void putU32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}
void putStr(std::string& out, std::string_view s) {
  putU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// The private section without its padding: check ints, then one key (type,
// its type-specific fields, comment). Only ed25519 has a known field count
// here, which is all Sandman generates.
std::optional<std::string_view> unpadded(std::string_view section) {
  Wire w{section};
  if (!w.u32() || !w.u32()) return std::nullopt;
  auto type = w.str();
  if (!type || *type != "ssh-ed25519") return std::nullopt;
  if (!w.str() || !w.str() || !w.str()) return std::nullopt;  // public, private, comment
  return section.substr(0, w.pos);
}

}  // namespace

Result<std::string> canonicalOpenSshPrivateKey(const std::string& pem) {
  size_t begin = pem.find(kBegin), end = pem.find(kEnd);
  if (begin != 0 || end == std::string::npos) return invalid("not an OpenSSH private key file");
  auto blob = decode(std::string_view(pem).substr(kBegin.size(), end - kBegin.size()));
  if (!blob || blob->compare(0, kMagic.size(), kMagic) != 0) return invalid("not an openssh-key-v1 key");
  Wire w{*blob, kMagic.size()};
  auto cipher = w.str();
  auto kdf = w.str();
  auto kdf_options = w.str();
  auto count = w.u32();
  auto pub = w.str();
  auto section = w.str();
  if (!cipher || !kdf || !kdf_options || !count || !pub || !section || *cipher != "none" || *kdf != "none" || *count != 1) {
    return invalid("only unencrypted single ed25519 keys can be re-laid out");
  }
  auto body = unpadded(*section);
  if (!body) return invalid("unexpected private key section");
  std::string priv(*body);
  for (uint8_t pad = 1; priv.size() % kNoneBlock != 0; ++pad) priv.push_back(static_cast<char>(pad));

  std::string out(kMagic);
  putStr(out, *cipher);
  putStr(out, *kdf);
  putStr(out, *kdf_options);
  putU32(out, 1);
  putStr(out, *pub);
  putStr(out, priv);
  std::string b64 = encode(out);
  std::string text = std::string(kBegin) + "\n";
  for (size_t i = 0; i < b64.size(); i += kLineWidth) text += b64.substr(i, kLineWidth) + "\n";
  text += std::string(kEnd) + "\n";
  // The intermediate buffers held the secret: wipe them.
  explicit_bzero(out.data(), out.size());
  explicit_bzero(priv.data(), priv.size());
  explicit_bzero(blob->data(), blob->size());
  explicit_bzero(b64.data(), b64.size());
  return text;
}

}  // namespace sandman
