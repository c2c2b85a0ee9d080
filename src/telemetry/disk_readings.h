// DiskReader: the disk part of each telemetry snapshot: free space of the
// state directory's and the workspace root's file systems (one statvfs each
// per sample) and the workspace monitor's latest per-user figures.
// Thread-safe (reads only).
#pragma once

#include <string>

#include "model/gpu_snapshot.h"
#include "workspace/workspace_usage.h"

namespace sandman {

class DiskReader {
 public:
  DiskReader(std::string state_dir, const WorkspaceUsageMonitor& workspaces)
      : state_dir_(std::move(state_dir)), workspaces_(workspaces) {}
  DiskReadings read() const;

 private:
  const std::string state_dir_;
  const WorkspaceUsageMonitor& workspaces_;
};

}  // namespace sandman
