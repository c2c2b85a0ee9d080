// SessionDirectory: core's answers to the SSH gateway (GatewayDirectory):
// routes to running sessions, the keys that may log in as a user, and the
// connection records. Thread-safe (the store is).
#pragma once

#include "core/gateway_directory.h"
#include "runtime/runtime.h"
#include "ssh/gateway_keyring.h"
#include "store/store.h"

namespace sandman {

class SessionDirectory final : public GatewayDirectory {
 public:
  // runtime: where each session's sshd answers.
  SessionDirectory(Store& store, const GatewayKeyring& keyring, Runtime& runtime)
      : store_(store), keyring_(keyring), runtime_(runtime) {}

  Result<GatewayRoute> route(const std::string& user_id) override;
  Result<std::vector<std::string>> authorizedKeys(const std::string& user_id) override;
  Result<int64_t> connectionStarted(const ConnectionRecord& c) override;
  Status connectionEnded(int64_t id, const ConnectionRecord& c) override;
  Result<int64_t> pruneConnections(TimePoint before, int limit) override {
    return store_.pruneConnections(before, limit);
  }

 private:
  Result<std::optional<Session>> runningSession(const std::string& user_id);

  Store& store_;
  const GatewayKeyring& keyring_;
  Runtime& runtime_;
};

}  // namespace sandman
