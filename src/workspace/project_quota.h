// ProjectQuota: Linux project quotas (XFS mounted with prjquota, ext4 with the
// project and quota features mounted with prjquota). A workspace directory is
// tagged with a project id that everything created under it inherits, and the
// id gets a block limit, so /workspace cannot outgrow --workspace-quota
// however it is written; the kernel's count of the id is also its usage, read
// without a walk. Thread-safe: syscalls only.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace sandman {

struct QuotaSupport {
  bool enforced = false;  // limits set through ProjectQuota are enforced there
  std::string reason;     // why not, as a sentence with what to do
  std::string fs_type;    // "xfs", "ext4", "tmpfs", ...
};

class ProjectQuota {
 public:
  // Probes the file system holding dir (or its nearest existing ancestor).
  static QuotaSupport probe(const std::string& dir);

  // Tags dir with project_id and the inherit flag; the first time (dir not
  // yet tagged) everything already under it too, so old files count.
  static Status assign(const std::string& dir, uint32_t project_id);
  // The project id dir carries (0: none).
  static Result<uint32_t> projectOf(const std::string& dir);
  // Hard and soft block limit of project_id on the file system of any_path
  // (0: no limit).
  static Status setLimit(const std::string& any_path, uint32_t project_id, uint64_t bytes);
  // Bytes the kernel counts against project_id there.
  static Result<uint64_t> usage(const std::string& any_path, uint32_t project_id);
};

}  // namespace sandman
