#include "core/validation.h"

#include <array>
#include <regex>
#include <string_view>

#include "common/utf8.h"
#include "model/user_id.h"

namespace sandman {

namespace {

// Accounts and groups of the session image (Debian's base-passwd, plus what
// openssh-server and common packages add): the generated /etc/passwd and
// /etc/group would hold the name twice, and nobody could log in. Checked
// against the image's own files by tests/integration/reserved_user_ids_test.cc.
constexpr std::array<std::string_view, 58> kReserved = {
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "_apt", "sshd", "_ssh", "messagebus",
    "adm", "tty", "disk", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape", "sudo", "audio",
    "dip", "operator", "src", "shadow", "utmp", "video", "sasl", "plugdev", "staff", "users", "input",
    "sgx", "kvm", "render", "crontab", "netdev", "polkitd", "statd", "tcpdump", "uuidd", "avahi", "ntp",
    "admin"};

}  // namespace

bool isReservedUserId(const std::string& user_id) {
  if (user_id.rfind("systemd-", 0) == 0) return true;  // systemd's own accounts and groups
  for (auto name : kReserved) {
    if (name == user_id) return true;
  }
  return false;
}

Status validateUserId(const std::string& user_id) {
  if (user_id.empty()) return invalid("user_id is required");
  if (!isPosixUserName(user_id)) {
    return invalid("user_id '" + printableExcerpt(user_id, 40) +
                   "' is not a valid user name: use 1-32 characters, lowercase letters, digits, "
                   "'_' or '-', starting with a letter or '_'");
  }
  if (isReservedUserId(user_id)) {
    return invalid("user_id '" + user_id + "' names a system account or group of the session image, "
                   "which nobody can log in as; choose another name (e.g. '" + user_id + "1')");
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
