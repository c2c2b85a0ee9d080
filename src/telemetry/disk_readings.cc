#include "telemetry/disk_readings.h"

#include "workspace/disk_space.h"

namespace sandman {

DiskReadings DiskReader::read() const {
  DiskReadings out;
  const std::string& ws_root = workspaces_.options().root;
  auto state = fsSpace(state_dir_);
  auto ws = fsSpace(ws_root);
  // One file system holding both is one subject: one alert, not two.
  if (state.ok() && ws.ok() && state->device == ws->device) {
    out.filesystems.push_back({"state+workspace", state_dir_, state->size_bytes, state->avail_bytes});
  } else {
    if (state.ok()) out.filesystems.push_back({"state", state_dir_, state->size_bytes, state->avail_bytes});
    if (ws.ok()) out.filesystems.push_back({"workspace", ws_root, ws->size_bytes, ws->avail_bytes});
  }
  const auto& o = workspaces_.options();
  for (const auto& u : workspaces_.all()) {
    if (!u.measured) continue;
    out.workspaces.push_back({u.user_id, u.used_bytes, o.quota_bytes, o.quota_enforced});
  }
  return out;
}

}  // namespace sandman
