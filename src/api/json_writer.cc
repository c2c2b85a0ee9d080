#include "api/json_writer.h"

#include <cstring>

#include "common/utf8.h"

namespace sandman {
namespace {

// True when any of 8 bytes may need escaping or checking: a control
// character, '"', '\\' or a non-ASCII byte. (Bit tricks from "Bit Twiddling
// Hacks"; a false alarm only sends those bytes down the slow path.)
bool wordNeedsCare(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
  auto hasZeroByte = [](uint64_t x) { return (x - kOnes) & ~x & kHighs; };
  const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHighs;
  return ((w & kHighs) | below_space | hasZeroByte(w ^ (kOnes * '"')) | hasZeroByte(w ^ (kOnes * '\\'))) != 0;
}

}  // namespace

void JsonWriter::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_) out_ += ',';
  first_ = false;
}

void JsonWriter::open(char c) {
  separate();
  out_ += c;
  first_ = true;
}

void JsonWriter::close(char c) {
  out_ += c;
  first_ = false;
}

void JsonWriter::key(std::string_view k) {
  string(k);
  out_ += ':';
  after_key_ = true;
}

void JsonWriter::string(std::string_view v) {
  separate();
  out_ += '"';
  size_t run = 0;  // start of the stretch that needs no escaping
  for (size_t i = 0; i < v.size();) {
    if (i + 8 <= v.size()) {
      uint64_t w;
      std::memcpy(&w, v.data() + i, 8);
      if (!wordNeedsCare(w)) {
        i += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(v[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    size_t n = c < 0x80 ? 1 : utf8SequenceLength(v, i);
    if (n > 1) {  // a well-formed multi-byte character passes through
      i += n;
      continue;
    }
    out_.append(v.substr(run, i - run));
    switch (c) {
      case '"': out_ += "\\\""; break;
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '\r': out_ += "\\r"; break;
      case '\t': out_ += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char kHex[] = "0123456789abcdef";
          out_ += "\\u00";
          out_ += kHex[c >> 4];
          out_ += kHex[c & 0xf];
        } else {
          out_ += "\xEF\xBF\xBD";  // U+FFFD for a byte that starts no valid character
        }
    }
    run = ++i;
  }
  out_.append(v.substr(run));
  out_ += '"';
}

void JsonWriter::number(int64_t v) {
  separate();
  out_ += std::to_string(v);
}

void JsonWriter::boolean(bool v) {
  separate();
  out_ += v ? "true" : "false";
}

void JsonWriter::null() {
  separate();
  out_ += "null";
}

}  // namespace sandman
