// SessionDirectory: core's answers to the SSH gateway (GatewayDirectory):
// routes to running sessions, the keys that may log in as a user, and the
// connection records. Thread-safe (the store is).
#pragma once

#include "gateway/gateway_directory.h"
#include "ssh/gateway_keyring.h"
#include "store/store.h"

namespace sandman {

class SessionDirectory final : public GatewayDirectory {
 public:
  // upstream_host: where the sessions' published ports answer (loopback, or --ssh-bind).
  SessionDirectory(Store& store, const GatewayKeyring& keyring, std::string upstream_host)
      : store_(store), keyring_(keyring), upstream_host_(std::move(upstream_host)) {}

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
  std::string upstream_host_;
};

}  // namespace sandman
