// WorkspaceManager: each user's persistent directory <root>/<user_id>, created
// on first use with a small skeleton and owned by the user's uid/gid. Sandman
// never deletes a workspace. Thread-safe (idempotent file operations).
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "model/session.h"

namespace sandman {

class WorkspaceManager {
 public:
  explicit WorkspaceManager(std::string root) : root_(std::move(root)) {}

  // Creates the root if needed, then the user's directory with .bashrc,
  // projects/ and data/ (existing content is left as it is). Refuses a user
  // id that is not a valid user name and a directory that is a symlink, so
  // the path can never leave the root.
  Result<std::string> ensure(const UserAccount& account);

  // --workspace-quota on a file system that enforces project quotas: ensure()
  // tags each workspace with its owner's uid as project id and sets this
  // limit on it. 0 (the default): no quota is set.
  void enforceQuota(uint64_t bytes) { quota_bytes_ = bytes; }
  uint64_t enforcedQuota() const { return quota_bytes_; }

  std::string pathFor(const std::string& user_id) const { return root_ + "/" + user_id; }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  uint64_t quota_bytes_ = 0;  // set before serving, then only read
};

}  // namespace sandman
