#include "core/user_keys.h"

#include "common/log.h"
#include "core/validation.h"
#include "ssh/keys.h"

namespace sandman {

Result<UserKey> UserKeys::add(const std::string& user_id, const std::string& public_key_line) {
  if (auto st = validateUserId(user_id); !st.ok()) return st.error();
  auto line = parsePublicKeyLine(public_key_line);
  if (!line.ok()) return line.error();
  auto fp = publicKeyFingerprint(line.value());
  if (!fp.ok()) return fp.error();
  auto added = store_.addUserKey({0, user_id, line.value(), fp.value(), clock_.now()});
  if (added.ok()) logInfo("user key registered", {{"user", user_id}, {"fingerprint", fp.value()}});
  return added;
}

Result<std::vector<UserKey>> UserKeys::list(const std::string& user_id, const RowPage& page) {
  if (auto st = validateUserId(user_id); !st.ok()) return st.error();
  return store_.listUserKeys(user_id, page);
}

Status UserKeys::remove(const std::string& user_id, int64_t key_id) {
  if (auto st = validateUserId(user_id); !st.ok()) return st;
  auto st = store_.deleteUserKey(user_id, key_id);
  if (st.ok()) logInfo("user key removed", {{"user", user_id}, {"key", std::to_string(key_id)}});
  return st;
}

}  // namespace sandman
