// TreeUsageWalk: adds up the space (st_blocks) one directory tree takes, a
// bounded number of entries per step, so a large tree is measured over many
// short steps instead of one long walk. Never follows a symlink or leaves the
// tree's file system. Not thread-safe: one owner steps it.
#pragma once

#include <dirent.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace sandman {

class TreeUsageWalk {
 public:
  explicit TreeUsageWalk(std::string root) : root_(std::move(root)) {}
  ~TreeUsageWalk();
  TreeUsageWalk(const TreeUsageWalk&) = delete;
  TreeUsageWalk& operator=(const TreeUsageWalk&) = delete;

  // Visits up to *budget entries, taking what it used off *budget. True once
  // the whole tree has been visited (bytes() is then the total); false when
  // the budget ran out first (call again to continue). kUnavailable when the
  // root itself cannot be opened; subdirectories that vanish or cannot be
  // read meanwhile are skipped.
  Result<bool> step(size_t* budget);
  bool done() const { return done_; }
  uint64_t bytes() const { return bytes_; }      // allocated bytes seen so far
  uint64_t entries() const { return entries_; }  // entries seen so far

 private:
  Status start();
  int openBeneath(const std::string& rel) const;
  void closeCurrent();

  const std::string root_;
  int root_fd_ = -1;
  uint64_t dev_ = 0;
  std::vector<std::string> pending_;  // directories to read, relative to root_
  DIR* current_ = nullptr;
  std::string current_rel_;
  uint64_t bytes_ = 0;
  uint64_t entries_ = 0;
  bool started_ = false;
  bool done_ = false;
};

}  // namespace sandman
