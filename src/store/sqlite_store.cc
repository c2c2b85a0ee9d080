#include "store/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

#include "common/time_format.h"
#include "store/gpu_slot_json.h"
#include "store/session_sql.h"
#include "store/sqlite_connection.h"
#include "store/sqlite_stmt.h"

namespace sandman {
namespace {

using sql::Conn;
using sql::Stmt;

struct Migration {
  int version;
  const char* sql;
};

// Append only: a released migration is never edited, a change is a new entry.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE users (
  user_id    TEXT PRIMARY KEY NOT NULL,
  uid        INTEGER UNIQUE NOT NULL,
  gid        INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE sessions (
  id              TEXT PRIMARY KEY NOT NULL,
  user_id         TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN
                    ('pending','starting','running','stopping','ended','failed')),
  image           TEXT NOT NULL,
  container_id    TEXT NOT NULL DEFAULT '',
  ssh_port        INTEGER NOT NULL,
  user_public_key TEXT NOT NULL,
  host_public_key TEXT NOT NULL,
  gpu_uuid        TEXT,
  created_at      INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL,
  ended_at        INTEGER,
  end_reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE INDEX sessions_by_created ON sessions(created_at);
CREATE UNIQUE INDEX sessions_one_active_per_user ON sessions(user_id)
  WHERE status IN )sql" SANDMAN_ACTIVE_STATUSES R"sql(;
CREATE UNIQUE INDEX sessions_one_active_per_port ON sessions(ssh_port)
  WHERE status IN )sql" SANDMAN_ACTIVE_STATUSES R"sql(;
)sql"},
    // GPU shares: the slot as JSON; a device (MIG instance or whole GPU) is
    // held by at most one active session, enforced here too.
    {2, R"sql(
ALTER TABLE sessions ADD COLUMN gpu_slot TEXT;
CREATE UNIQUE INDEX sessions_one_active_per_gpu_device ON sessions(gpu_uuid)
  WHERE status IN )sql" SANDMAN_ACTIVE_STATUSES R"sql(;
)sql"},
    // The SSH gateway: keys registered per user, and every connection.
    {3, R"sql(
CREATE TABLE user_keys (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id     TEXT NOT NULL,
  public_key  TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  UNIQUE (user_id, fingerprint)
);
CREATE TABLE connections (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id    TEXT NOT NULL,
  session_id TEXT NOT NULL DEFAULT '',
  source     TEXT NOT NULL,
  outcome    TEXT NOT NULL,
  reason     TEXT NOT NULL DEFAULT '',
  started_at INTEGER NOT NULL,
  ended_at   INTEGER,
  bytes_in   INTEGER NOT NULL DEFAULT 0,
  bytes_out  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX connections_by_session ON connections(session_id, started_at);
)sql"},
    // Telemetry history: raw samples (kept --metrics-raw-retention) and
    // per-minute min/avg/max (kept --metrics-retention), per device.
    {4, R"sql(
CREATE TABLE gpu_samples (
  ts                 INTEGER NOT NULL,
  device             TEXT NOT NULL,
  gpu_uuid           TEXT NOT NULL,
  session_id         TEXT NOT NULL DEFAULT '',
  user_id            TEXT NOT NULL DEFAULT '',
  utilization        REAL,
  memory_utilization REAL,
  temperature        REAL,
  power_w            REAL,
  memory_used_mib    INTEGER NOT NULL DEFAULT 0,
  memory_total_mib   INTEGER NOT NULL DEFAULT 0,
  processes          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX gpu_samples_by_device ON gpu_samples(device, ts);
CREATE INDEX gpu_samples_by_ts ON gpu_samples(ts);
CREATE TABLE gpu_samples_minute (
  minute           INTEGER NOT NULL,
  device           TEXT NOT NULL,
  gpu_uuid         TEXT NOT NULL,
  model            TEXT NOT NULL DEFAULT '',
  profile          TEXT NOT NULL DEFAULT '',
  session_id       TEXT NOT NULL DEFAULT '',
  user_id          TEXT NOT NULL DEFAULT '',
  samples          INTEGER NOT NULL,
  util_min REAL, util_avg REAL, util_max REAL,
  temp_min REAL, temp_avg REAL, temp_max REAL,
  power_min REAL, power_avg REAL, power_max REAL,
  mem_used_min REAL, mem_used_avg REAL, mem_used_max REAL,
  PRIMARY KEY (device, minute)
);
CREATE INDEX gpu_samples_minute_by_minute ON gpu_samples_minute(minute);
-- What each device is (model, profile: a MIG profile, "whole" for a GPU
-- without MIG, "" for a MIG-mode GPU's own row), written once per device
-- rather than on every raw sample; the minute rollup copies it.
CREATE TABLE gpu_devices (
  device    TEXT PRIMARY KEY NOT NULL,
  gpu_uuid  TEXT NOT NULL,
  model     TEXT NOT NULL DEFAULT '',
  profile   TEXT NOT NULL DEFAULT '',
  last_seen INTEGER NOT NULL
);
)sql"},
    // Alerts: one row per firing episode of a rule on one device (fingerprint).
    {5, R"sql(
CREATE TABLE alerts (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  rule        TEXT NOT NULL,
  severity    TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  labels      TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('pending','firing','resolved')),
  value       REAL,
  summary     TEXT NOT NULL DEFAULT '',
  pending_at  INTEGER NOT NULL,
  fired_at    INTEGER,
  resolved_at INTEGER,
  acked_at    INTEGER,
  acked_by    TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX alerts_one_open_per_fingerprint ON alerts(fingerprint)
  WHERE state IN ('pending','firing');
CREATE INDEX alerts_by_pending ON alerts(pending_at);
)sql"},
    // Decisions taken about a session after it started (idle warnings,
    // idle stops, automatic extensions), newest last.
    {6, R"sql(
CREATE TABLE session_events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  at         INTEGER NOT NULL,
  kind       TEXT NOT NULL,
  detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX session_events_by_session ON session_events(session_id, at);
)sql"},
    // Gateway connection records are pruned by age (--connection-retention).
    {7, R"sql(
CREATE INDEX connections_by_started ON connections(started_at);
)sql"},
    // Paged history and retention. Listings walk an index in key order and
    // stop after a page; counts live in a table that triggers keep in step
    // (a GROUP BY over every session grows with history: 28 ms at 100,000).
    {8, R"sql(
DROP INDEX sessions_by_user;
DROP INDEX sessions_by_created;
CREATE INDEX sessions_by_created ON sessions(created_at, id);
CREATE INDEX sessions_by_user ON sessions(user_id, created_at, id);
CREATE INDEX sessions_by_user_status ON sessions(user_id, status, created_at, id);
CREATE INDEX sessions_by_status ON sessions(status, created_at, id);
CREATE INDEX sessions_by_end ON sessions(status, ended_at);
CREATE INDEX sessions_holding_gpu ON sessions(created_at) WHERE )sql" SANDMAN_HOLDS_GPU R"sql(;
CREATE INDEX connections_by_session_row ON connections(session_id, id);
CREATE INDEX session_events_by_session_row ON session_events(session_id, id);
CREATE INDEX session_events_by_at ON session_events(at);
CREATE TABLE session_counts (
  status TEXT PRIMARY KEY NOT NULL,
  n      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO session_counts (status, n) SELECT status, count(*) FROM sessions GROUP BY status;
CREATE TRIGGER session_counts_insert AFTER INSERT ON sessions BEGIN
  INSERT INTO session_counts (status, n) VALUES (NEW.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER session_counts_update AFTER UPDATE OF status ON sessions
  WHEN OLD.status IS NOT NEW.status BEGIN
  UPDATE session_counts SET n = n - 1 WHERE status = OLD.status;
  INSERT INTO session_counts (status, n) VALUES (NEW.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER session_counts_delete AFTER DELETE ON sessions BEGIN
  UPDATE session_counts SET n = n - 1 WHERE status = OLD.status;
END;
)sql"},
    // Sessions reached only through the gateway (Kubernetes) hold no direct
    // port (0): only real ports are unique among active sessions.
    {9, R"sql(
DROP INDEX sessions_one_active_per_port;
CREATE UNIQUE INDEX sessions_one_active_per_port ON sessions(ssh_port)
  WHERE ssh_port > 0 AND status IN )sql" SANDMAN_ACTIVE_STATUSES R"sql(;
)sql"},
    // MIG layouts proposed for cluster nodes (set through the GPU operator's
    // nvidia.com/mig.config label once approved), and how each one went.
    {10, R"sql(
CREATE TABLE mig_layout_proposals (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  node            TEXT NOT NULL,
  config          TEXT NOT NULL,
  state           TEXT NOT NULL,
  message         TEXT NOT NULL DEFAULT '',
  previous_config TEXT NOT NULL DEFAULT '',
  proposed_by     TEXT NOT NULL DEFAULT '',
  approved_by     TEXT NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX mig_layout_proposals_node ON mig_layout_proposals(node, id);
)sql"},
    // Cost: who pays for a session (team, project), GPU prices as they were
    // in force over time, the ledger of held slices, and monthly budgets.
    // Sessions are booked once ended (cost_booked), through a partial index.
    {11, R"sql(
ALTER TABLE sessions ADD COLUMN team TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN project TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN cost_booked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sessions_cost_unbooked ON sessions(ended_at)
  WHERE cost_booked = 0 AND status IN ('ended','failed');
ALTER TABLE gpu_samples_minute ADD COLUMN procs_max INTEGER;
CREATE TABLE teams (
  name       TEXT PRIMARY KEY NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE projects (
  name       TEXT PRIMARY KEY NOT NULL,
  team       TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE TABLE user_org (
  user_id    TEXT PRIMARY KEY NOT NULL,
  team       TEXT NOT NULL DEFAULT '',
  projects   TEXT NOT NULL DEFAULT '[]',
  updated_at INTEGER NOT NULL
);
CREATE TABLE gpu_prices (
  model          TEXT NOT NULL,
  effective_from INTEGER NOT NULL,
  usd_per_hour   REAL NOT NULL,
  source         TEXT NOT NULL DEFAULT '',
  recorded_at    INTEGER NOT NULL,
  PRIMARY KEY (model, effective_from)
);
CREATE TABLE cost_ledger (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id       TEXT NOT NULL,
  user_id          TEXT NOT NULL,
  team             TEXT NOT NULL DEFAULT '',
  project          TEXT NOT NULL DEFAULT '',
  device           TEXT NOT NULL DEFAULT '',
  gpu_model        TEXT NOT NULL DEFAULT '',
  profile          TEXT NOT NULL DEFAULT '',
  start_ms         INTEGER NOT NULL,
  end_ms           INTEGER NOT NULL,
  usd_per_hour     REAL NOT NULL,
  share            REAL NOT NULL,
  cost_micros      INTEGER NOT NULL,
  idle_ms          INTEGER NOT NULL DEFAULT 0,
  idle_cost_micros INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cost_ledger_by_start ON cost_ledger(start_ms);
CREATE INDEX cost_ledger_by_session ON cost_ledger(session_id);
CREATE TABLE budgets (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  scope         TEXT NOT NULL CHECK (scope IN ('user','team','project')),
  name          TEXT NOT NULL,
  usd_per_month REAL NOT NULL,
  created_at    INTEGER NOT NULL,
  UNIQUE (scope, name)
);
)sql"},
    // Demand: every create request that asked for capacity (accepted, or
    // refused for capacity or a budget), what it asked for, and for accepted
    // ones the session (its held duration is read from it once it ends).
    // Layout advice replays it; --session-retention bounds it.
    {12, R"sql(
CREATE TABLE demand (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  at              INTEGER NOT NULL,
  user_id         TEXT NOT NULL,
  team            TEXT NOT NULL DEFAULT '',
  project         TEXT NOT NULL DEFAULT '',
  mig_profile     TEXT NOT NULL DEFAULT '',
  gpu_memory_gb   REAL,
  workload        TEXT NOT NULL DEFAULT '',
  outcome         TEXT NOT NULL CHECK (outcome IN ('accepted','refused_capacity','refused_budget','queued')),
  session_id      TEXT NOT NULL DEFAULT '',
  granted_profile TEXT NOT NULL DEFAULT '',
  gpu_model       TEXT NOT NULL DEFAULT '',
  reason          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX demand_by_at ON demand(at);
)sql"},
    // GPU nodes as an admin sees them: Sandman's own metadata and status of a
    // node (the local host on Docker), and what changed on nodes, newest last.
    {13, R"sql(
CREATE TABLE gpu_node_meta (
  name          TEXT PRIMARY KEY NOT NULL,
  cluster       TEXT NOT NULL DEFAULT '',
  description   TEXT NOT NULL DEFAULT '',
  labels        TEXT NOT NULL DEFAULT '{}',
  status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','maintenance','drained')),
  status_reason TEXT NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  updated_by    TEXT NOT NULL DEFAULT ''
);
CREATE TABLE gpu_node_events (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  node   TEXT NOT NULL,
  at     INTEGER NOT NULL,
  kind   TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '',
  by     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX gpu_node_events_at ON gpu_node_events(at);
)sql"},
};

constexpr const char* kSessionColumns =
    "id, user_id, status, image, container_id, ssh_port, user_public_key, host_public_key, "
    "gpu_uuid, created_at, expires_at, ended_at, end_reason, gpu_slot, team, project";


Result<Session> readSession(const Stmt& st) {
  Session s;
  s.id = st.textAt(0);
  s.user_id = st.textAt(1);
  std::string status = st.textAt(2);
  auto parsed = parseSessionStatus(status);
  if (!parsed) return internal("store: session " + s.id + " has unknown status '" + status + "'");
  s.status = *parsed;
  s.image = st.textAt(3);
  s.container_id = st.textAt(4);
  s.ssh_port = static_cast<int>(st.int64At(5));
  s.user_public_key = st.textAt(6);
  s.host_public_key = st.textAt(7);
  if (!st.isNull(8)) s.gpu_uuid = st.textAt(8);
  s.created_at = fromUnixMillis(st.int64At(9));
  s.expires_at = fromUnixMillis(st.int64At(10));
  if (!st.isNull(11)) s.ended_at = fromUnixMillis(st.int64At(11));
  s.end_reason = st.textAt(12);
  if (!st.isNull(13)) {
    auto slot = gpuSlotFromJson(st.textAt(13));
    if (!slot) return internal("store: session " + s.id + " has an unreadable gpu_slot");
    s.gpu = *slot;
  }
  s.team = st.textAt(14);
  s.project = st.textAt(15);
  return s;
}

Result<std::vector<Session>> readSessions(Stmt& st, const std::string& what) {
  std::vector<Session> out;
  for (;;) {
    auto row = st.next(what);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    auto s = readSession(st);
    if (!s.ok()) return s.error();
    out.push_back(std::move(s).value());
  }
}

// Turns the index that refused a write into a sentence about sessions.
Error describeConflict(const Error& e, const Session& s) {
  if (e.kind != ErrorKind::kConflict) return e;
  if (e.message.find("sessions.user_id") != std::string::npos) {
    return conflict("user " + s.user_id + " already has an active session; end it first");
  }
  if (e.message.find("sessions.ssh_port") != std::string::npos) {
    return conflict("port " + std::to_string(s.ssh_port) + " is held by another active session");
  }
  if (e.message.find("sessions.gpu_uuid") != std::string::npos) {
    return conflict("GPU device " + s.gpu_uuid.value_or("?") + " is held by another active session");
  }
  if (e.message.find("sessions.id") != std::string::npos) {
    return conflict("session " + s.id + " exists already");
  }
  return e;
}

Result<std::optional<UserAccount>> findUser(const Conn& c, const std::string& user_id) {
  Stmt st(c, "SELECT uid, gid FROM users WHERE user_id = ?");
  st.text(user_id);
  auto row = st.next("read user " + user_id);
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<UserAccount>();
  return std::optional<UserAccount>(UserAccount{user_id, static_cast<int>(st.int64At(0)),
                                                static_cast<int>(st.int64At(1))});
}

class SqliteTx final : public StoreTx {
 public:
  explicit SqliteTx(const Conn& c) : c_(c) {}

  Result<std::optional<Session>> activeSessionForUser(const std::string& user_id) override {
    std::string sql = std::string("SELECT ") + kSessionColumns +
                      " FROM sessions WHERE user_id = ? AND status IN " SANDMAN_ACTIVE_STATUSES;
    Stmt st(c_, sql.c_str());
    st.text(user_id);
    auto rows = readSessions(st, "read active session of " + user_id);
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<Session>();
    return std::optional<Session>(std::move(rows->front()));
  }

  Result<std::vector<Session>> activeSessions() override {
    std::string sql = std::string("SELECT ") + kSessionColumns +
                      " FROM sessions WHERE status IN " SANDMAN_ACTIVE_STATUSES " ORDER BY created_at, id";
    Stmt st(c_, sql.c_str());
    return readSessions(st, "list active sessions");
  }

  Result<std::set<int>> activePorts() override {
    Stmt st(c_, "SELECT ssh_port FROM sessions WHERE status IN " SANDMAN_ACTIVE_STATUSES);
    std::set<int> ports;
    for (;;) {
      auto row = st.next("read active ports");
      if (!row.ok()) return row.error();
      if (!*row) return ports;
      ports.insert(static_cast<int>(st.int64At(0)));
    }
  }

  Status insertSession(const Session& s) override {
    std::string sql = std::string("INSERT INTO sessions (") + kSessionColumns +
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    Stmt st(c_, sql.c_str());
    st.text(s.id).text(s.user_id).text(toString(s.status)).text(s.image).text(s.container_id);
    st.int64(s.ssh_port).text(s.user_public_key).text(s.host_public_key).optText(s.gpu_uuid);
    st.int64(toUnixMillis(s.created_at)).int64(toUnixMillis(s.expires_at));
    st.optTime(s.ended_at).text(s.end_reason).optText(gpuSlotToJson(s.gpu)).text(s.team).text(s.project);
    Status done = st.run("insert session " + s.id);
    if (!done.ok()) return describeConflict(done.error(), s);
    return {};
  }

  Result<UserAccount> ensureUser(const std::string& user_id) override {
    auto existing = findUser(c_, user_id);
    if (!existing.ok()) return existing.error();
    if (existing->has_value()) return **existing;

    Stmt max(c_, "SELECT MAX(uid) FROM users");
    auto row = max.next("read highest uid");
    if (!row.ok()) return row.error();
    int64_t next = SqliteStore::kFirstUid;
    if (*row && !max.isNull(0)) next = std::max(next, max.int64At(0) + 1);

    Stmt ins(c_,
             "INSERT INTO users (user_id, uid, gid, created_at) VALUES (?, ?, ?, "
             "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))");
    ins.text(user_id).int64(next).int64(next);
    if (Status st = ins.run("create user " + user_id); !st.ok()) return st.error();
    return UserAccount{user_id, static_cast<int>(next), static_cast<int>(next)};
  }

  Result<UserAccount> adoptUser(const std::string& user_id, int uid, int gid) override {
    auto existing = findUser(c_, user_id);
    if (!existing.ok()) return existing.error();
    if (existing->has_value()) return **existing;
    Stmt taken(c_, "SELECT 1 FROM users WHERE uid = ?");
    taken.int64(uid);
    auto row = taken.next("look up uid");
    if (!row.ok()) return row.error();
    if (*row || uid < SqliteStore::kFirstUid) return ensureUser(user_id);
    Stmt ins(c_,
             "INSERT INTO users (user_id, uid, gid, created_at) VALUES (?, ?, ?, "
             "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))");
    ins.text(user_id).int64(uid).int64(gid);
    if (Status st = ins.run("adopt user " + user_id); !st.ok()) return st.error();
    return UserAccount{user_id, uid, gid};
  }

 private:
  const Conn& c_;
};

// mkdir -p, new directories 0700; existing ones are left as they are.
Status makeParentDirs(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return {};
  std::string dir = path.substr(0, slash);
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) == 0 || errno == EEXIST) continue;
    return unavailable("cannot create store directory " + prefix + " for " + path + ": " +
                       std::strerror(errno));
  }
  struct stat sb {};
  if (::stat(dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    return unavailable("cannot use store directory " + dir + " for " + path +
                       ": not a directory; choose another --db path");
  }
  return {};
}

// SQLite would create the file with the umask's mode; create it 0600 first
// (the -wal and -shm files then copy that mode).
Status createPrivateFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return unavailable("cannot open store file " + path + ": " + std::strerror(errno) +
                       "; check the path and its permissions");
  }
  struct stat sb {};
  if (::fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077) != 0) {
    (void)::fchmod(fd, 0600);  // best effort: tighten a file made by an older run
  }
  ::close(fd);
  return {};
}

Result<int> migrate(const Conn& c) {
  if (Status st = c.exec("BEGIN IMMEDIATE", "begin schema migration"); !st.ok()) {
    return st.error();
  }
  auto fail = [&](Error e) -> Result<int> {
    (void)sqlite3_exec(c.db, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  };
  if (Status st = c.exec("CREATE TABLE IF NOT EXISTS schema_version ("
                         " version INTEGER PRIMARY KEY NOT NULL,"
                         " applied_at INTEGER NOT NULL)",
                         "create schema_version");
      !st.ok()) {
    return fail(st.error());
  }
  int current = 0;
  {
    Stmt st(c, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    auto row = st.next("read schema version");
    if (!row.ok()) return fail(row.error());
    current = static_cast<int>(st.int64At(0));
  }
  const int latest = std::prev(std::end(kMigrations))->version;
  if (current > latest) {
    return fail(unavailable("store " + c.path + " has schema version " + std::to_string(current) +
                            " but this sandman knows up to " + std::to_string(latest) +
                            "; run the newer sandman that wrote it"));
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= current) continue;
    std::string what = "apply schema migration " + std::to_string(m.version);
    if (Status st = c.exec(m.sql, what); !st.ok()) return fail(st.error());
    Stmt st(c,
            "INSERT INTO schema_version (version, applied_at) VALUES (?, "
            "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))");
    st.int64(m.version);
    if (Status done = st.run(what); !done.ok()) return fail(done.error());
  }
  if (Status st = c.exec("COMMIT", "commit schema migration"); !st.ok()) return fail(st.error());
  return latest;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  if (path.empty()) return invalid("store path is empty; pass --db with a file path");
  if (Status st = makeParentDirs(path); !st.ok()) return st.error();
  if (Status st = createPrivateFile(path); !st.ok()) return st.error();

  SqliteOpenOptions options;
  options.purpose = "store";
  options.create = true;
  auto db = openSqlite(path, options);
  if (!db.ok()) return db.error();
  Conn c{db->get(), path};
  auto version = migrate(c);
  if (!version.ok()) return version.error();
  return std::unique_ptr<SqliteStore>(new SqliteStore(db->release(), path, *version));
}

SqliteStore::SqliteStore(sqlite3* db, std::string path, int schema_version)
    : path_(std::move(path)), schema_version_(schema_version), db_(db) {}

SqliteStore::~SqliteStore() { sqlite3_close_v2(db_); }

std::unique_lock<std::mutex> SqliteStore::lock(Status* reentered) {
  if (tx_owner_.load() == std::this_thread::get_id()) {
    *reentered = internal("store used from inside its own transaction; use the StoreTx");
    return {};
  }
  return std::unique_lock<std::mutex>(mu_);
}

Status SqliteStore::transaction(const std::function<Status(StoreTx&)>& fn) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered;
  Conn c{db_, path_};
  if (Status st = c.exec("BEGIN IMMEDIATE", "begin transaction"); !st.ok()) return st;

  // Rolls back on every way out that is not a successful COMMIT, exceptions included.
  struct Guard {
    SqliteStore* self;
    ~Guard() {
      if (sqlite3_get_autocommit(self->db_) == 0) {
        (void)sqlite3_exec(self->db_, "ROLLBACK", nullptr, nullptr, nullptr);
      }
      self->tx_owner_.store(std::thread::id());
    }
  } guard{this};
  tx_owner_.store(std::this_thread::get_id());

  SqliteTx tx(c);
  Status result = fn(tx);
  if (!result.ok()) return result;
  return c.exec("COMMIT", "commit transaction");
}

Result<Session> SqliteStore::getSession(const std::string& id) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  std::string sql = std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE id = ?";
  Stmt st(c, sql.c_str());
  st.text(id);
  auto rows = readSessions(st, "read session " + id);
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return notFound("no session " + id);
  return std::move(rows->front());
}

Result<std::vector<Session>> SqliteStore::listSessions(const SessionFilter& f) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  // Only fixed fragments are appended; the values are bound below in the same order.
  std::string sql = std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE 1";
  if (f.user_id) sql += " AND user_id = ?";
  if (f.status) sql += " AND status = ?";
  if (f.active_only) sql += " AND status IN " SANDMAN_ACTIVE_STATUSES;
  if (f.from) sql += " AND created_at >= ?";
  if (f.to) sql += " AND created_at < ?";
  // A row value, so SQLite seeks the (created_at, id) index to the key.
  if (f.after) sql += " AND (created_at, id) < (?, ?)";
  sql += " ORDER BY created_at DESC, id DESC";
  if (f.limit) sql += " LIMIT ?";
  Stmt st(c, sql.c_str());
  if (f.user_id) st.text(*f.user_id);
  if (f.status) st.text(toString(*f.status));
  if (f.from) st.int64(toUnixMillis(*f.from));
  if (f.to) st.int64(toUnixMillis(*f.to));
  if (f.after) st.int64(toUnixMillis(f.after->created_at)).text(f.after->id);
  if (f.limit) st.int64(static_cast<int64_t>(*f.limit));
  return readSessions(st, "list sessions");
}

Result<std::vector<Session>> SqliteStore::activeSessions() {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  std::string sql = std::string("SELECT ") + kSessionColumns +
                    " FROM sessions WHERE status IN " SANDMAN_ACTIVE_STATUSES
                    " ORDER BY created_at, id";
  Stmt st(c, sql.c_str());
  return readSessions(st, "list active sessions");
}

Result<std::vector<Session>> SqliteStore::endedSessionsHoldingGpu() {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  std::string sql = std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE " SANDMAN_HOLDS_GPU
                    " AND status NOT IN " SANDMAN_ACTIVE_STATUSES " ORDER BY created_at, id";
  Stmt st(c, sql.c_str());
  return readSessions(st, "list ended sessions holding a GPU instance");
}

Status SqliteStore::updateSession(const Session& s) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered;
  Conn c{db_, path_};
  Stmt st(c,
          "UPDATE sessions SET status = ?, container_id = ?, expires_at = ?, ended_at = ?, "
          "end_reason = ?, gpu_uuid = ?, gpu_slot = ? WHERE id = ?");
  st.text(toString(s.status)).text(s.container_id).int64(toUnixMillis(s.expires_at));
  st.optTime(s.ended_at).text(s.end_reason).optText(s.gpu_uuid).optText(gpuSlotToJson(s.gpu)).text(s.id);
  if (Status done = st.run("update session " + s.id); !done.ok()) {
    return describeConflict(done.error(), s);
  }
  if (st.changes() == 0) return notFound("no session " + s.id);
  return {};
}

Result<bool> SqliteStore::updateSessionIf(const Session& s, SessionStatus expected,
                                          std::optional<TimePoint> expected_expires) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  // One statement: the check and the write cannot be split by another writer.
  std::string sql =
      "UPDATE sessions SET status = ?, container_id = ?, expires_at = ?, ended_at = ?, "
      "end_reason = ?, gpu_uuid = ?, gpu_slot = ? WHERE id = ? AND status = ?";
  if (expected_expires) sql += " AND expires_at = ?";
  Stmt st(c, sql.c_str());
  st.text(toString(s.status)).text(s.container_id).int64(toUnixMillis(s.expires_at));
  st.optTime(s.ended_at).text(s.end_reason).optText(s.gpu_uuid).optText(gpuSlotToJson(s.gpu)).text(s.id);
  st.text(toString(expected));
  if (expected_expires) st.int64(toUnixMillis(*expected_expires));
  if (Status done = st.run("update session " + s.id); !done.ok()) {
    return describeConflict(done.error(), s);
  }
  if (st.changes() == 1) return true;
  Stmt exists(c, "SELECT 1 FROM sessions WHERE id = ?");
  exists.text(s.id);
  auto row = exists.next("find session " + s.id);
  if (!row.ok()) return row.error();
  if (!row.value()) return notFound("no session " + s.id);
  return false;
}

Result<UserAccount> SqliteStore::getUser(const std::string& user_id) {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  auto found = findUser(Conn{db_, path_}, user_id);
  if (!found.ok()) return found.error();
  if (!found->has_value()) return notFound("no user " + user_id);
  return **found;
}

Result<std::map<std::string, int64_t>> SqliteStore::countSessionsByStatus() {
  auto counts = sessionCounts();
  if (!counts.ok()) return counts.error();
  return std::move(counts->by_status);
}

Result<SessionCounts> SqliteStore::sessionCounts() {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered.error();
  Conn c{db_, path_};
  SessionCounts out;
  Stmt st(c, "SELECT status, n FROM session_counts WHERE n > 0");
  while (true) {
    auto row = st.next("count sessions by status");
    if (!row.ok()) return row.error();
    if (!row.value()) break;
    out.by_status[st.textAt(0)] = st.int64At(1);
  }
  // One active session per user (a unique partial index), which this reads.
  Stmt users(c, "SELECT count(*) FROM sessions WHERE status IN " SANDMAN_ACTIVE_STATUSES);
  auto row = users.next("count active users");
  if (!row.ok()) return row.error();
  out.active_users = users.int64At(0);
  return out;
}

Status SqliteStore::ping() {
  Status reentered;
  auto lk = lock(&reentered);
  if (!reentered.ok()) return reentered;
  Conn c{db_, path_};
  Stmt st(c, "SELECT 1");
  return st.run("ping");
}

}  // namespace sandman
