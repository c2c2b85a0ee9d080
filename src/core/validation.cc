#include "core/validation.h"

#include <regex>

namespace sandman {

Status validateUserId(const std::string& user_id) {
  static const std::regex kUserId("^[a-z_][a-z0-9_-]{0,31}$");
  if (user_id.empty()) return invalid("user_id is required");
  if (!std::regex_match(user_id, kUserId)) {
    return invalid("user_id '" + (user_id.size() > 40 ? user_id.substr(0, 40) + "..." : user_id) +
                   "' is not a valid user name: use 1-32 characters, lowercase letters, digits, "
                   "'_' or '-', starting with a letter or '_'");
  }
  return {};
}

Status validateTtl(Millis ttl, Millis max_ttl) {
  if (ttl < std::chrono::seconds(1)) return invalid("ttl must be at least 1 second");
  if (ttl > max_ttl) {
    auto max_min = std::chrono::duration_cast<std::chrono::minutes>(max_ttl).count();
    return invalid("ttl exceeds the maximum of " + std::to_string(max_min) +
                   " minutes (--ttl-max)");
  }
  return {};
}

Status validateImageName(const std::string& image) {
  static const std::regex kImage(
      "^[a-z0-9]+([._/:-][a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$");
  if (image.empty() || image.size() > 255 || !std::regex_match(image, kImage)) {
    return invalid("image '" + image.substr(0, 80) +
                   "' is not a valid image reference (e.g. sandman-workspace:latest)");
  }
  return {};
}

}  // namespace sandman
