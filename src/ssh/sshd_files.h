// SshdFiles: the per-session directory of files Sandman generates for the
// container's unprivileged sshd (config, host key, authorized_keys, passwd,
// group), bind-mounted read-only. Thread-safe (one directory per session).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "model/session.h"
#include "model/sshd_layout.h"

namespace sandman {

struct SshdFilesSpec {
  UserAccount account;
  std::string host_private_key;  // OpenSSH format
  std::vector<std::string> authorized_keys;
  // KEY=value pairs every login sees (sshd does not pass the container's
  // environment on): the session id and the GPU slice.
  std::vector<std::string> login_env;
  // `sandman serve --allow-agent-forwarding` / `--allow-remote-forwarding`:
  // the gateway relays into this sshd, so it must allow them too.
  bool allow_agent_forwarding = false;
  bool allow_remote_forwarding = false;
  // Shown before login (sshd's Banner), e.g. that the workspace is over its
  // quota; empty: no banner file.
  std::string banner;
};

class SshdFiles {
 public:
  explicit SshdFiles(std::string base_dir) : base_(std::move(base_dir)) {}

  // Writes <base>/<session_id>/{sshd_config,ssh_host_ed25519_key,
  // authorized_keys,passwd,group,banner}, readable only by the session's uid.
  Result<std::string> write(const std::string& session_id, const SshdFilesSpec& spec) const;
  // Replaces the banner of a session whose files exist (empty text: none),
  // so a running session's next login sees it.
  Status writeBanner(const std::string& session_id, const UserAccount& account, const std::string& text) const;
  // Removes the directory (absent is fine).
  Status remove(const std::string& session_id) const;
  std::string dirFor(const std::string& session_id) const { return base_ + "/" + session_id; }

  static std::string sshdConfig(const std::string& user_id, const std::vector<std::string>& login_env = {},
                                bool allow_agent_forwarding = false, bool allow_remote_forwarding = false);
  static std::string passwd(const UserAccount& a);
  static std::string group(const UserAccount& a);

 private:
  std::string base_;
};

}  // namespace sandman
