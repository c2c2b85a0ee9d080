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
  // A user another replica assigned uid/gid to (adopting its session): the
  // account already here if any, else that uid/gid where no one here has
  // the uid, else the next free one (only later sessions use it).
  virtual Result<UserAccount> adoptUser(const std::string& user_id, int uid, int gid) = 0;
};

// Where a page of sessions ends: the (created_at, id) of its last row. The
// next page holds the sessions strictly older than this key, so rows written
// meanwhile (always newer) never shift or repeat a page.
struct SessionKey {
  TimePoint created_at{};
  std::string id;
};

struct SessionFilter {
  std::optional<std::string> user_id;
  std::optional<SessionStatus> status;
  bool active_only = false;           // pending, starting, running, stopping
  // Brace-initialised so that callers naming only the fields above stay warning-free.
  std::optional<TimePoint> from{};    // created_at >= from
  std::optional<TimePoint> to{};      // created_at < to
  std::optional<SessionKey> after{};  // continue after this key (newest first)
  std::optional<size_t> limit{};      // none: every match (only for bounded sets, e.g. running)
};

// A page of rows keyed by their integer row id (connections, events, keys):
// the next page continues after the last id of this one, in the listing's order.
struct RowPage {
  std::optional<int64_t> after_id{};
  std::optional<TimePoint> from{};  // the row's own time (started_at, at) >= from
  std::optional<TimePoint> to{};    // ... < to
  std::optional<size_t> limit{};    // none: every row
};

// Session counts, kept by the database itself as rows change.
struct SessionCounts {
  std::map<std::string, int64_t> by_status;  // only statuses that have any
  int64_t active_users = 0;                  // users with an active session
};

class Store {
 public:
  virtual ~Store() = default;

  // Runs fn inside one write transaction; commits when it returns ok, rolls
  // back otherwise (and returns its error).
  virtual Status transaction(const std::function<Status(StoreTx&)>& fn) = 0;

  virtual Result<Session> getSession(const std::string& id) = 0;
  // Newest first ((created_at, id) descending), at most f.limit rows; keyset
  // paging through f.after (never OFFSET: the cost of a page does not grow
  // with the rows before it).
  virtual Result<std::vector<Session>> listSessions(const SessionFilter& f) = 0;
  virtual Result<std::vector<Session>> activeSessions() = 0;  // oldest first
  // Ended or failed sessions whose dynamic MIG instance was created and never
  // released (a release to retry); read through a partial index, so the cost
  // does not grow with history.
  virtual Result<std::vector<Session>> endedSessionsHoldingGpu() = 0;
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
  // Counts by status (a table that triggers keep in step with sessions, so
  // the cost does not grow with history) and the number of active users.
  virtual Result<SessionCounts> sessionCounts() = 0;
  virtual Status ping() = 0;  // for /readyz

  // Keys registered for a user. Adding a key the user already has returns
  // the existing entry.
  virtual Result<UserKey> addUserKey(const UserKey& key) = 0;
  virtual Result<std::vector<UserKey>> listUserKeys(const std::string& user_id,
                                                   const RowPage& page = {}) = 0;  // by id
  virtual Status deleteUserKey(const std::string& user_id, int64_t key_id) = 0;  // kNotFound

  // Gateway connections.
  virtual Result<int64_t> insertConnection(const ConnectionRecord& c) = 0;
  virtual Status finishConnection(const ConnectionRecord& c) = 0;  // by c.id
  // Newest first (id descending); page.from/to bound started_at.
  virtual Result<std::vector<ConnectionRecord>> listConnections(const std::string& session_id,
                                                                const RowPage& page = {}) = 0;
  // Deletes up to `limit` records that ended (or, never ended, started) before
  // `before`, oldest first; returns how many. Small batches keep each write short.
  virtual Result<int64_t> pruneConnections(TimePoint before, int limit) = 0;

  // Decisions about a session (idle policy), oldest first.
  virtual Status addSessionEvent(const SessionEvent& e) = 0;
  // page.from/to bound `at`.
  virtual Result<std::vector<SessionEvent>> listSessionEvents(const std::string& session_id,
                                                              const RowPage& page = {}) = 0;

  // Retention. Each call deletes at most `batch` rows in one short write and
  // returns how many it deleted; callers loop, letting requests in between.
  // Ended and failed sessions that ended before `before`, with their events
  // (never one whose MIG instance still awaits release).
  virtual Result<int64_t> pruneEndedSessions(TimePoint before, int batch) = 0;
  // Session events recorded before `before`.
  virtual Result<int64_t> pruneSessionEvents(TimePoint before, int batch) = 0;
  // Deletes up to `batch` demand records (cost/demand_store.h) made before `before`.
  virtual Result<int64_t> pruneDemand(TimePoint before, int batch) = 0;
};

using StorePtr = std::unique_ptr<Store>;

}  // namespace sandman
