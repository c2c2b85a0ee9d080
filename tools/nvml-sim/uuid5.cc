// SHA-1 (FIPS 180-4) kept local: the simulator links nothing but the C++
// runtime and nlohmann_json.
#include "uuid5.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace nvmlsim {
namespace {

uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

std::array<uint8_t, 20> sha1(const std::vector<uint8_t>& input) {
  std::vector<uint8_t> msg = input;
  uint64_t bits = static_cast<uint64_t>(input.size()) * 8;
  msg.push_back(0x80);
  while (msg.size() % 64 != 56) msg.push_back(0);
  for (int i = 7; i >= 0; --i) msg.push_back(static_cast<uint8_t>(bits >> (i * 8)));

  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  for (size_t off = 0; off < msg.size(); off += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      w[i] = uint32_t{msg[off + 4 * i]} << 24 | uint32_t{msg[off + 4 * i + 1]} << 16 |
             uint32_t{msg[off + 4 * i + 2]} << 8 | uint32_t{msg[off + 4 * i + 3]};
    }
    for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d), k = 0x5A827999;
      } else if (i < 40) {
        f = b ^ c ^ d, k = 0x6ED9EBA1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
      } else {
        f = b ^ c ^ d, k = 0xCA62C1D6;
      }
      uint32_t t = rotl(a, 5) + f + e + k + w[i];
      e = d, d = c, c = rotl(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
  }
  std::array<uint8_t, 20> out{};
  for (int i = 0; i < 20; ++i) out[i] = static_cast<uint8_t>(h[i / 4] >> (24 - 8 * (i % 4)));
  return out;
}

// A fixed namespace for the simulator (itself a v4-style random UUID).
constexpr uint8_t kNamespace[16] = {0x3b, 0x6f, 0x0c, 0x52, 0x9d, 0x41, 0x4e, 0x8a,
                                    0xb1, 0x27, 0x5e, 0x90, 0xc4, 0x1d, 0x7a, 0x36};

}  // namespace

std::string uuid5(std::string_view name) {
  std::vector<uint8_t> input(kNamespace, kNamespace + 16);
  input.insert(input.end(), name.begin(), name.end());
  auto digest = sha1(input);
  digest[6] = static_cast<uint8_t>((digest[6] & 0x0F) | 0x50);  // version 5
  digest[8] = static_cast<uint8_t>((digest[8] & 0x3F) | 0x80);  // RFC 4122 variant
  std::string out;
  char hex[3];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    std::snprintf(hex, sizeof hex, "%02x", digest[i]);
    out += hex;
  }
  return out;
}

}  // namespace nvmlsim
