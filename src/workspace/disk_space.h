// Free space of the file systems Sandman writes to (the state directory with
// the store, the workspace root), and the --min-free-disk floor below which
// new sessions are refused. Pure functions over statvfs; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace sandman {

struct FsSpace {
  uint64_t size_bytes = 0;
  uint64_t avail_bytes = 0;  // what an unprivileged writer can still use
  uint64_t device = 0;       // st_dev of the path: two paths on one file system share it
  double availPercent() const {
    return size_bytes == 0 ? 0.0 : 100.0 * static_cast<double>(avail_bytes) / static_cast<double>(size_bytes);
  }
};

// The path itself when it exists, else its nearest existing ancestor.
std::string existingAncestor(const std::string& path);

// statvfs(path), or of its nearest existing ancestor while path is not made
// yet; kUnavailable when it cannot be read.
Result<FsSpace> fsSpace(const std::string& path);

// --min-free-disk (parsed by config): an absolute size ("1g"), a share of
// the file system ("5%"), or 0 (off).
struct MinFreeDisk {
  uint64_t bytes = 0;
  double percent = 0;
  bool off() const { return bytes == 0 && percent <= 0; }
  // The floor on a file system of this size.
  uint64_t floorFor(uint64_t size_bytes) const;
  std::string describe() const;  // "1 GiB" or "5%"
};

// "1.5 GiB", "512 MiB", "40 KiB", "12 B".
std::string formatBytes(uint64_t bytes);

// Checks each file system a new session would write to. kNoSpace naming the
// file system, what is free and the floor when one is below it; kUnavailable
// when one cannot be read.
class FreeSpaceGuard {
 public:
  FreeSpaceGuard(std::string state_dir, std::string workspace_root, MinFreeDisk min)
      : state_dir_(std::move(state_dir)), workspace_root_(std::move(workspace_root)), min_(min) {}
  Status check() const;
  const MinFreeDisk& min() const { return min_; }

 private:
  Status checkOne(const char* what, const std::string& path) const;

  const std::string state_dir_;
  const std::string workspace_root_;
  const MinFreeDisk min_;
};

}  // namespace sandman
