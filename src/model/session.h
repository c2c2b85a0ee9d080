// Session: the record every module speaks about (store persists it, core
// drives its lifecycle, api renders it). Plain value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/clock.h"

namespace sandman {

// pending -> starting -> running -> stopping -> ended, or failed.
enum class SessionStatus { kPending, kStarting, kRunning, kStopping, kEnded, kFailed };

const char* toString(SessionStatus s);
std::optional<SessionStatus> parseSessionStatus(const std::string& s);
// Active sessions hold a port and count for "one session per user".
bool isActive(SessionStatus s);
// Live sessions that nobody has begun to end yet (pending, starting,
// running). `stopping` is active (it still holds its port and slice) but
// already has its one finisher: it is never ended a second time.
bool canBeginEnd(SessionStatus s);

// The GPU share a session holds: a MIG instance (pre-made, or created for
// the session) or a whole GPU.
struct GpuSlot {
  int gpu_index = -1;
  std::string gpu_uuid;  // the parent GPU
  std::string profile;   // "1g.10gb", or "whole"
  int profile_id = -1;
  int placement_start = -1;
  int placement_size = 0;
  int gpu_instance_id = -1;  // once the instance exists
  bool whole = false;
  bool created = false;   // dynamic: Sandman creates the instance and destroys it at the end
  bool released = false;  // the dynamic instance has been destroyed
  std::string attach;     // "device-request" (nvidia runtime), "env-only", or "scheduler" (Kubernetes)
  std::string product;    // Kubernetes: the GPU model asked for (nvidia.com/gpu.product); "" any
  std::string model{};    // the GPU's model name when reserved ("NVIDIA A100-SXM4-80GB"): what prices it
};

struct Session {
  std::string id;       // "s-" + 16 hex digits
  std::string user_id;  // validated POSIX user name
  SessionStatus status = SessionStatus::kPending;
  std::string image;
  std::string container_id;  // empty until the container exists
  int ssh_port = 0;
  std::string user_public_key;  // authorized_keys line; the private half is never kept
  std::string host_public_key;  // "ssh-ed25519 AAAA..." of the container's sshd
  std::optional<std::string> gpu_uuid;  // the device handed out: MIG-... or GPU-...
  std::optional<GpuSlot> gpu;
  TimePoint created_at{};
  TimePoint expires_at{};
  std::optional<TimePoint> ended_at;
  std::string end_reason;  // "deleted", "expired", "container gone", "start failed: ..."
  // Who pays, fixed at create: the user's team then, and the project named
  // (or the user's first). Empty when the user belongs to none.
  std::string team{};
  std::string project{};
};

// A user's identity inside containers, assigned once and kept in the store.
struct UserAccount {
  std::string user_id;
  int uid = 0;
  int gid = 0;
};

}  // namespace sandman
