#include "gateway/user_name.h"

namespace sandman {

bool isValidGatewayUser(std::string_view user) {
  if (user.empty() || user.size() > 32) return false;
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!lower(user[0]) && user[0] != '_') return false;
  for (char c : user.substr(1)) {
    if (!lower(c) && !digit(c) && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace sandman
