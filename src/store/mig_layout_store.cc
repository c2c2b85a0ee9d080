#include "store/mig_layout_store.h"

#include <sqlite3.h>

#include "common/time_format.h"
#include "store/sqlite_connection.h"
#include "store/sqlite_stmt.h"

namespace sandman {
namespace {

using sql::Conn;
using sql::Stmt;

constexpr const char* kColumns =
    "id, node, config, state, message, previous_config, proposed_by, approved_by, created_at, updated_at";

MigLayoutProposal readRow(const Stmt& st) {
  MigLayoutProposal p;
  p.id = st.int64At(0);
  p.node = st.textAt(1);
  p.config = st.textAt(2);
  p.state = st.textAt(3);
  p.message = st.textAt(4);
  p.previous_config = st.textAt(5);
  p.proposed_by = st.textAt(6);
  p.approved_by = st.textAt(7);
  p.created_at = fromUnixMillis(st.int64At(8));
  p.updated_at = fromUnixMillis(st.int64At(9));
  return p;
}

Result<std::vector<MigLayoutProposal>> readAll(Stmt& st, const std::string& what) {
  std::vector<MigLayoutProposal> out;
  for (;;) {
    auto row = st.next(what);
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back(readRow(st));
  }
}

}  // namespace

bool migProposalHoldsNode(const std::string& s) {
  return s == "applying" || s == "pending" || s == "failed";
}

bool migProposalInFlight(const std::string& s) { return s == "applying" || s == "pending"; }

Result<std::unique_ptr<MigLayoutStore>> MigLayoutStore::open(const std::string& path) {
  SqliteOpenOptions options;
  options.purpose = "MIG layout proposals";
  options.required_tables = {"mig_layout_proposals"};
  auto db = openSqlite(path, options);
  if (!db.ok()) return db.error();
  return std::unique_ptr<MigLayoutStore>(new MigLayoutStore(db->release(), path));
}

MigLayoutStore::MigLayoutStore(sqlite3* db, std::string path) : path_(std::move(path)), db_(db) {}

MigLayoutStore::~MigLayoutStore() { sqlite3_close_v2(db_); }

Result<int64_t> MigLayoutStore::insert(const MigLayoutProposal& p) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c,
          "INSERT INTO mig_layout_proposals (node, config, state, message, previous_config, proposed_by, "
          "approved_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)");
  st.text(p.node).text(p.config).text(p.state).text(p.message).text(p.previous_config).text(p.proposed_by);
  st.text(p.approved_by).int64(toUnixMillis(p.created_at)).int64(toUnixMillis(p.updated_at));
  if (Status s = st.run("insert MIG layout proposal for " + p.node); !s.ok()) return s.error();
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status MigLayoutStore::update(const MigLayoutProposal& p) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, "UPDATE mig_layout_proposals SET state=?, message=?, approved_by=?, updated_at=? WHERE id=?");
  st.text(p.state).text(p.message).text(p.approved_by).int64(toUnixMillis(p.updated_at)).int64(p.id);
  if (Status s = st.run("update MIG layout proposal " + std::to_string(p.id)); !s.ok()) return s;
  if (st.changes() == 0) return notFound("no MIG layout proposal " + std::to_string(p.id));
  return {};
}

Result<MigLayoutProposal> MigLayoutStore::get(int64_t id) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  Stmt st(c, (std::string("SELECT ") + kColumns + " FROM mig_layout_proposals WHERE id=?").c_str());
  st.int64(id);
  auto row = st.next("read MIG layout proposal");
  if (!row.ok()) return row.error();
  if (!*row) return notFound("no MIG layout proposal " + std::to_string(id));
  return readRow(st);
}

Result<std::vector<MigLayoutProposal>> MigLayoutStore::list(const std::string& node, size_t limit) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  std::string q = std::string("SELECT ") + kColumns + " FROM mig_layout_proposals" +
                  (node.empty() ? "" : " WHERE node=?") + " ORDER BY id DESC LIMIT ?";
  Stmt st(c, q.c_str());
  if (!node.empty()) st.text(node);
  st.int64(static_cast<int64_t>(limit));
  return readAll(st, "list MIG layout proposals");
}

Result<std::vector<MigLayoutProposal>> MigLayoutStore::inStates(const std::vector<std::string>& states) {
  std::lock_guard lock(mu_);
  Conn c{db_, path_};
  std::string q = std::string("SELECT ") + kColumns + " FROM mig_layout_proposals WHERE state IN (";
  for (size_t i = 0; i < states.size(); ++i) q += i ? ",?" : "?";
  q += ") ORDER BY id";
  Stmt st(c, q.c_str());
  for (const auto& s : states) st.text(s);
  return readAll(st, "read MIG layout proposals");
}

}  // namespace sandman
