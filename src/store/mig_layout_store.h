// MigLayoutStore: MIG layout proposals for cluster nodes (table
// mig_layout_proposals, made by SqliteStore's migrations), so an approved
// change in flight, and the nodes it holds, survive a daemon restart. Own
// connection; thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

struct sqlite3;

namespace sandman {

// proposed -> (approve) applying -> pending -> applied | failed;
// proposed -> withdrawn | superseded; failed -> released (the node is let go).
struct MigLayoutProposal {
  int64_t id = 0;
  std::string node;
  std::string config;           // the nvidia.com/mig.config value, e.g. "all-1g.10gb"
  std::string state;
  std::string message;          // what happened last, in plain words
  std::string previous_config;  // the node's label when proposed
  std::string proposed_by, approved_by;
  TimePoint created_at{}, updated_at{};
};

// States that keep Sandman's sessions off the node.
bool migProposalHoldsNode(const std::string& state);
// States still moving (a follower watches them).
bool migProposalInFlight(const std::string& state);

class MigLayoutStore {
 public:
  static Result<std::unique_ptr<MigLayoutStore>> open(const std::string& path);  // after SqliteStore::open
  ~MigLayoutStore();
  MigLayoutStore(const MigLayoutStore&) = delete;
  MigLayoutStore& operator=(const MigLayoutStore&) = delete;

  Result<int64_t> insert(const MigLayoutProposal& p);
  // Rewrites state, message, approved_by and updated_at of row p.id.
  Status update(const MigLayoutProposal& p);
  Result<MigLayoutProposal> get(int64_t id);
  // Newest first; node empty: every node.
  Result<std::vector<MigLayoutProposal>> list(const std::string& node, size_t limit);
  // Every proposal in one of the given states, oldest first.
  Result<std::vector<MigLayoutProposal>> inStates(const std::vector<std::string>& states);

 private:
  MigLayoutStore(sqlite3* db, std::string path);
  std::mutex mu_;
  const std::string path_;
  sqlite3* db_;  // GUARDED_BY(mu_)
};

}  // namespace sandman
