// Store: durable sessions and user accounts. Every lifecycle transition is
// written here before Docker is touched. Implementations are thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/connection.h"
#include "model/session.h"

namespace sandman {

// Operations available inside one atomic transaction (see Store::transaction).
class StoreTx {
 public:
  virtual ~StoreTx() = default;
  virtual Result<std::optional<Session>> activeSessionForUser(const std::string& user_id) = 0;
  virtual Result<std::set<int>> activePorts() = 0;
  virtual Result<std::vector<Session>> activeSessions() = 0;  // oldest first
  virtual Status insertSession(const Session& s) = 0;
  // Returns the user's account, assigning the next free uid/gid the first time.
  virtual Result<UserAccount> ensureUser(const std::string& user_id) = 0;
};

struct SessionFilter {
  std::optional<std::string> user_id;
  std::optional<SessionStatus> status;
};

class Store {
 public:
  virtual ~Store() = default;

  // Runs fn inside one write transaction; commits when it returns ok, rolls
  // back otherwise (and returns its error).
  virtual Status transaction(const std::function<Status(StoreTx&)>& fn) = 0;

  virtual Result<Session> getSession(const std::string& id) = 0;
  virtual Result<std::vector<Session>> listSessions(const SessionFilter& f) = 0;  // newest first
  virtual Result<std::vector<Session>> activeSessions() = 0;
  // Overwrites the mutable fields (status, container_id, expires_at, ended_at,
  // end_reason, gpu_uuid, gpu).
  virtual Status updateSession(const Session& s) = 0;
  // Compare-and-set: the same write, made only while the stored session
  // still has status `expected` (and expires_at `expected_expires`, when
  // given). False, with nothing written, when another caller moved it first;
  // this is how exactly one caller wins a transition (e.g. running ->
  // stopping), even across threads that never share a lock.
  virtual Result<bool> updateSessionIf(const Session& s, SessionStatus expected,
                                       std::optional<TimePoint> expected_expires = std::nullopt) = 0;
  virtual Result<UserAccount> getUser(const std::string& user_id) = 0;
  // Number of sessions in each status that has any ("running" -> 3).
  virtual Result<std::map<std::string, int64_t>> countSessionsByStatus() = 0;
  virtual Status ping() = 0;  // for /readyz

  // Keys registered for a user. Adding a key the user already has returns
  // the existing entry.
  virtual Result<UserKey> addUserKey(const UserKey& key) = 0;
  virtual Result<std::vector<UserKey>> listUserKeys(const std::string& user_id) = 0;
  virtual Status deleteUserKey(const std::string& user_id, int64_t key_id) = 0;  // kNotFound

  // Gateway connections.
  virtual Result<int64_t> insertConnection(const ConnectionRecord& c) = 0;
  virtual Status finishConnection(const ConnectionRecord& c) = 0;  // by c.id
  virtual Result<std::vector<ConnectionRecord>> listConnections(const std::string& session_id) = 0;  // newest first
  // Deletes up to `limit` records that ended (or, never ended, started) before
  // `before`, oldest first; returns how many. Small batches keep each write short.
  virtual Result<int64_t> pruneConnections(TimePoint before, int limit) = 0;

  // Decisions about a session (idle policy), oldest first.
  virtual Status addSessionEvent(const SessionEvent& e) = 0;
  virtual Result<std::vector<SessionEvent>> listSessionEvents(const std::string& session_id) = 0;
};

using StorePtr = std::unique_ptr<Store>;

}  // namespace sandman
