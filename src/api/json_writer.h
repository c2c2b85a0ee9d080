// JsonWriter: appends JSON text straight to a string, for the large listings
// where building a DOM first costs more than the query. Strings that are not
// UTF-8 are written with U+FFFD in place of bad bytes, so it never throws on
// input. Callers keep the nesting right; not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sandman {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void beginObject() { open('{'); }
  void endObject() { close('}'); }
  void beginArray() { open('['); }
  void endArray() { close(']'); }

  // Object members.
  void key(std::string_view k);
  void field(std::string_view k, std::string_view v) {
    key(k);
    string(v);
  }
  void field(std::string_view k, const char* v) {
    key(k);
    string(v);
  }
  void field(std::string_view k, int64_t v) {
    key(k);
    number(v);
  }
  void field(std::string_view k, int v) {
    key(k);
    number(v);
  }
  void field(std::string_view k, bool v) {
    key(k);
    boolean(v);
  }
  // null when v is empty.
  void nullableField(std::string_view k, const std::optional<std::string>& v) {
    key(k);
    v ? string(*v) : null();
  }
  void nullField(std::string_view k) {
    key(k);
    null();
  }

  // Values (array elements, or after key()).
  void string(std::string_view v);
  void number(int64_t v);
  void boolean(bool v);
  void null();

 private:
  void open(char c);
  void close(char c);
  void separate();

  std::string& out_;
  bool first_ = true;  // no value yet at this nesting level
  bool after_key_ = false;
};

}  // namespace sandman
