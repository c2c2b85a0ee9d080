// Where a session's sshd finds the files Sandman generates for it, and the
// port it listens on inside the session: shared by ssh/ (which writes the
// files) and runtime/ (which mounts them), on Docker and Kubernetes alike.
#pragma once

namespace sandman {

inline constexpr const char* kSshdDirInContainer = "/etc/sandman";
inline constexpr int kSshdPortInContainer = 2222;

}  // namespace sandman
