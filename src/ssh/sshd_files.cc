#include "ssh/sshd_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace sandman {
namespace {

Status writeFile(const std::string& path, const std::string& text, mode_t mode, const UserAccount& a) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return unavailable("cannot create " + path + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fchmod(fd, mode) == 0 && ::fchown(fd, a.uid, a.gid) == 0;
  ::close(fd);
  if (!ok) return unavailable("cannot write " + path + ": " + std::strerror(errno));
  return {};
}

}  // namespace

std::string SshdFiles::sshdConfig(const std::string& user_id, const std::vector<std::string>& login_env,
                                  bool allow_agent_forwarding, bool allow_remote_forwarding) {
  std::string set_env;
  for (const auto& kv : login_env) set_env += (set_env.empty() ? "SetEnv " : " ") + kv;
  if (!set_env.empty()) set_env += "\n";
  std::string d = kSshdDirInContainer;
  // sshd runs as the user with no capabilities: no privilege separation, no
  // PAM, no password; only this user, only keys Sandman wrote. Agent and
  // remote forwarding only when the admin enabled them; remote listeners stay
  // on the container's loopback (GatewayPorts no) either way.
  return "Port " + std::to_string(kSshdPortInContainer) + "\n" +
         "HostKey " + d + "/ssh_host_ed25519_key\n" +
         "AuthorizedKeysFile " + d + "/authorized_keys\n" +
         "AllowUsers " + user_id + "\n"
         "PidFile none\n"
         "UsePAM no\n"
         "StrictModes no\n"
         "PubkeyAuthentication yes\n"
         "PasswordAuthentication no\n"
         "KbdInteractiveAuthentication no\n"
         "PermitRootLogin no\n"
         "PermitUserEnvironment no\n"
         "AllowAgentForwarding " + (allow_agent_forwarding ? "yes" : "no") + "\n"
         "X11Forwarding no\n"
         "PermitTunnel no\n"
         "AllowTcpForwarding " + (allow_remote_forwarding ? "yes" : "local") + "\n"
         "GatewayPorts no\n"
         "PrintMotd no\n"
         // Read at each connection, so notices (a full workspace) reach logins
         // of a running session; a missing or empty file shows nothing.
         "Banner " + d + "/banner\n"
         "ClientAliveInterval 30\n"
         "AcceptEnv LANG LC_*\n"
         "Subsystem sftp internal-sftp\n" + set_env;
}

std::string SshdFiles::passwd(const UserAccount& a) {
  return "root:x:0:0:root:/root:/usr/sbin/nologin\n" + a.user_id + ":x:" + std::to_string(a.uid) +
         ":" + std::to_string(a.gid) + "::/workspace:/bin/bash\n";
}

std::string SshdFiles::group(const UserAccount& a) {
  return "root:x:0:\n" + a.user_id + ":x:" + std::to_string(a.gid) + ":\n";
}

Result<std::string> SshdFiles::write(const std::string& session_id, const SshdFilesSpec& spec) const {
  if (::mkdir(base_.c_str(), 0711) != 0 && errno != EEXIST) {
    return unavailable("cannot create " + base_ + ": " + std::strerror(errno));
  }
  const std::string dir = dirFor(session_id);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return unavailable("cannot create " + dir + ": " + std::strerror(errno));
  }
  if (::chown(dir.c_str(), spec.account.uid, spec.account.gid) != 0) {
    return unavailable("cannot chown " + dir + ": " + std::strerror(errno));
  }
  std::string keys;
  for (const auto& k : spec.authorized_keys) keys += k + "\n";
  const UserAccount& a = spec.account;
  for (auto [name, text, mode] :
       {std::tuple{"sshd_config", sshdConfig(a.user_id, spec.login_env, spec.allow_agent_forwarding,
                                                      spec.allow_remote_forwarding), 0400},
        std::tuple{"ssh_host_ed25519_key", spec.host_private_key, 0400},
        std::tuple{"authorized_keys", keys, 0400}, std::tuple{"passwd", passwd(a), 0444},
        std::tuple{"group", group(a), 0444}}) {
    if (auto s = writeFile(dir + "/" + name, text, static_cast<mode_t>(mode), a); !s.ok()) return s.error();
  }
  if (auto s = writeBanner(session_id, a, spec.banner); !s.ok()) return s.error();
  return dir;
}

Status SshdFiles::writeBanner(const std::string& session_id, const UserAccount& account,
                              const std::string& text) const {
  const std::string path = dirFor(session_id) + "/banner";
  if (text.empty()) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return unavailable("cannot remove " + path + ": " + std::strerror(errno));
    }
    return {};
  }
  // Written aside and renamed over: a login never reads half a banner. The
  // directory, not the file, is bind-mounted, so the container sees the new one.
  const std::string tmp = path + ".new";
  if (auto s = writeFile(tmp, text, 0444, account); !s.ok()) return s;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return unavailable("cannot replace " + path + ": " + std::strerror(errno));
  }
  return {};
}

Status SshdFiles::remove(const std::string& session_id) const {
  std::error_code ec;
  std::filesystem::remove_all(dirFor(session_id), ec);
  if (ec) return unavailable("cannot remove " + dirFor(session_id) + ": " + ec.message());
  return {};
}

}  // namespace sandman
