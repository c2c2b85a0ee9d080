// JSON mapping of the REST API: request bodies to core requests (strict: a
// body is an object, fields are typed, unknown fields are refused) and
// sessions to the seed's response fields. Pure; thread-safe.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "core/session_manager.h"
#include "model/connection.h"
#include "model/session.h"

namespace sandman {

// What a session response needs beyond the session itself.
struct SessionView {
  std::string ssh_host;        // host name users connect to
  std::string workspace_root;  // to show the host path of the workspace
  // Sessions without a direct port (Kubernetes) are reached through the gateway on this port.
  int gateway_port = 0;
  // Where a user's workspace is, when not <workspace_root>/<user> on this host
  // (Kubernetes: a claim); empty: the host path.
  std::function<std::string(const std::string& user_id)> workspace_of = {};
};

nlohmann::json sessionToJson(const Session& s, const SessionView& view);
// The same object, appended to out as JSON text (listings of many sessions).
void appendSessionJson(std::string& out, const Session& s, const SessionView& view);
// `ssh -p PORT user@host`, and the known_hosts line pinning the container's host key.
std::string sshCommand(const Session& s, const std::string& host, int port);
std::string knownHostsLine(const Session& s, const std::string& host);

// POST /sessions body. GPU fields are type-checked here; whether the host
// can serve them is core's decision.
Result<CreateRequest> parseCreateRequest(const std::string& body);
// PATCH /sessions/{id} body: {"ttl_minutes": N} or {"ttl_seconds": N}.
Result<Millis> parseTtlPatch(const std::string& body);

nlohmann::json errorJson(const Error& e);

// PUT /users/{id}/keys body: {"public_key": "ssh-ed25519 AAAA... you@host"}.
Result<std::string> parseUserKeyRequest(const std::string& body);
nlohmann::json userKeyJson(const UserKey& k);
nlohmann::json connectionJson(const ConnectionRecord& c);
nlohmann::json sessionEventJson(const SessionEvent& e);

}  // namespace sandman
