// ProcPods: which pod a process on this node belongs to, read from its
// cgroup (<proc root>/<pid>/cgroup names kubepods...pod<UID>...), so the
// node agent can say which pod holds each GPU or MIG device from the pids
// NVML reports. The proc root is configurable (--proc-root): tests point it
// at a fake tree. Thread-safe (no state besides the root).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/gpu_snapshot.h"

namespace sandman {

// The pod UID in one /proc/<pid>/cgroup text, or "" when the process is in
// no pod's cgroup. Knows the kubelet's cgroupfs layout (/kubepods/<qos>/pod<uid>/...)
// and its systemd layout (kubepods-<qos>-pod<uid with _>.slice), v1 and v2.
std::string podUidFromCgroup(std::string_view cgroup_text);

class ProcPods {
 public:
  explicit ProcPods(std::string proc_root = "/proc") : root_(std::move(proc_root)) {}
  // "" when the pid is gone, unreadable, or in no pod.
  std::string podOf(unsigned pid) const;
  // Fills each device's pod_uid from its pids (the first pid in a pod wins:
  // a MIG device is one pod's), and its node.
  void annotate(TelemetrySnapshot& snap, const std::string& node) const;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace sandman
