// UserKeys: public keys registered for a user, valid for gateway logins to
// any of that user's sessions (PUT /users/{id}/keys). Validates at the edge
// (user id, one OpenSSH public key line). Thread-safe (the store is).
#pragma once

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "model/connection.h"
#include "store/store.h"

namespace sandman {

class UserKeys {
 public:
  UserKeys(Store& store, const Clock& clock) : store_(store), clock_(clock) {}
  // Adds a key; adding one the user already has returns the existing entry.
  Result<UserKey> add(const std::string& user_id, const std::string& public_key_line);
  Result<std::vector<UserKey>> list(const std::string& user_id, const RowPage& page = {});  // by id
  Status remove(const std::string& user_id, int64_t key_id);

 private:
  Store& store_;
  const Clock& clock_;
};

}  // namespace sandman
