#include "model/user_id.h"

namespace sandman {

bool isPosixUserName(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  auto lower_or_underscore = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
  if (!lower_or_underscore(s[0])) return false;
  for (char c : s.substr(1)) {
    if (!lower_or_underscore(c) && !(c >= '0' && c <= '9') && c != '-') return false;
  }
  return true;
}

}  // namespace sandman
