#include "store/node_meta_store.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "common/time_format.h"
#include "store/sqlite_connection.h"
#include "store/sqlite_stmt.h"

namespace sandman {
namespace {

using sql::Conn;
using sql::Stmt;

constexpr const char* kColumns =
    "name, cluster, description, labels, status, status_reason, created_at, updated_at, updated_by";

NodeMeta readRow(const Stmt& st) {
  NodeMeta m;
  m.name = st.textAt(0);
  m.cluster = st.textAt(1);
  m.description = st.textAt(2);
  auto labels = nlohmann::json::parse(st.textAt(3), nullptr, false);
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) {
      if (v.is_string()) m.labels[k] = v.get<std::string>();
    }
  }
  m.status = st.textAt(4);
  m.status_reason = st.textAt(5);
  m.created_at = fromUnixMillis(st.int64At(6));
  m.updated_at = fromUnixMillis(st.int64At(7));
  m.updated_by = st.textAt(8);
  return m;
}

}  // namespace

bool validNodeStatus(const std::string& s) { return s == "active" || s == "maintenance" || s == "drained"; }

Result<std::unique_ptr<NodeMetaStore>> NodeMetaStore::open(const std::string& path) {
  SqliteOpenOptions options;
  options.purpose = "GPU node records";
  options.required_tables = {"gpu_node_meta", "gpu_node_events"};
  auto db = openSqlite(path, options);
  if (!db.ok()) return db.error();
  return std::unique_ptr<NodeMetaStore>(new NodeMetaStore(db->release(), path));
}

NodeMetaStore::NodeMetaStore(sqlite3* db, std::string path) : path_(std::move(path)), db_(db) {}

NodeMetaStore::~NodeMetaStore() { sqlite3_close_v2(db_); }

Result<std::optional<NodeMeta>> NodeMetaStore::get(const std::string& name) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, (std::string("SELECT ") + kColumns + " FROM gpu_node_meta WHERE name=?").c_str());
  st.text(name);
  auto row = st.next("read node " + name);
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<NodeMeta>();
  return std::optional<NodeMeta>(readRow(st));
}

Result<std::vector<NodeMeta>> NodeMetaStore::list() {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, (std::string("SELECT ") + kColumns + " FROM gpu_node_meta ORDER BY name").c_str());
  std::vector<NodeMeta> out;
  for (;;) {
    auto row = st.next("list node records");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back(readRow(st));
  }
}

Status NodeMetaStore::insertEvent(const NodeEvent& e) {
  Conn c{db_, path_};
  Stmt st(c, "INSERT INTO gpu_node_events (node, at, kind, detail, by) VALUES (?,?,?,?,?)");
  st.text(e.node).int64(toUnixMillis(e.at)).text(e.kind).text(e.detail).text(e.by);
  return st.run("log a change of node " + e.node);
}

Status NodeMetaStore::put(const NodeMeta& m, const NodeEvent& event) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  if (Status s = c.exec("BEGIN IMMEDIATE", "begin node update"); !s.ok()) return s;
  auto fail = [&c](Status s) {
    (void)c.exec("ROLLBACK", "roll back node update");
    return s;
  };
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : m.labels) labels[k] = v;
  Stmt st(c,
          "INSERT INTO gpu_node_meta (name, cluster, description, labels, status, status_reason, created_at, "
          "updated_at, updated_by) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
          "cluster=excluded.cluster, description=excluded.description, labels=excluded.labels, "
          "status=excluded.status, status_reason=excluded.status_reason, updated_at=excluded.updated_at, "
          "updated_by=excluded.updated_by");
  st.text(m.name).text(m.cluster).text(m.description).text(labels.dump()).text(m.status).text(m.status_reason);
  st.int64(toUnixMillis(m.created_at)).int64(toUnixMillis(m.updated_at)).text(m.updated_by);
  if (Status s = st.run("write node " + m.name); !s.ok()) return fail(s);
  if (!event.kind.empty()) {
    if (Status s = insertEvent(event); !s.ok()) return fail(s);
  }
  if (Status s = c.exec("COMMIT", "commit node update"); !s.ok()) return fail(s);
  return {};
}

Status NodeMetaStore::remove(const std::string& name, const NodeEvent& event) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  if (Status s = c.exec("BEGIN IMMEDIATE", "begin node removal"); !s.ok()) return s;
  auto fail = [&c](Status s) {
    (void)c.exec("ROLLBACK", "roll back node removal");
    return s;
  };
  Stmt st(c, "DELETE FROM gpu_node_meta WHERE name=?");
  st.text(name);
  if (Status s = st.run("remove node " + name); !s.ok()) return fail(s);
  if (st.changes() == 0) return fail(notFound("no record of node " + name));
  if (!event.kind.empty()) {
    if (Status s = insertEvent(event); !s.ok()) return fail(s);
  }
  if (Status s = c.exec("COMMIT", "commit node removal"); !s.ok()) return fail(s);
  return {};
}

Status NodeMetaStore::addEvent(const NodeEvent& e) {
  std::lock_guard lock(mu_);
  return insertEvent(e);
}

Result<std::vector<NodeEvent>> NodeMetaStore::events(const std::string& node, std::optional<TimePoint> since,
                                                     size_t limit) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  std::string q = "SELECT id, node, at, kind, detail, by FROM gpu_node_events WHERE 1=1";
  if (!node.empty()) q += " AND node=?";
  if (since) q += " AND at>=?";
  q += " ORDER BY id DESC LIMIT ?";
  Stmt st(c, q.c_str());
  if (!node.empty()) st.text(node);
  if (since) st.int64(toUnixMillis(*since));
  st.int64(static_cast<int64_t>(limit));
  std::vector<NodeEvent> out;
  for (;;) {
    auto row = st.next("list node changes");
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back({st.int64At(0), st.textAt(1), fromUnixMillis(st.int64At(2)), st.textAt(3), st.textAt(4),
                   st.textAt(5)});
  }
}

}  // namespace sandman
