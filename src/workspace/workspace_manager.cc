#include "workspace/workspace_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "model/user_id.h"
#include "workspace/project_quota.h"

namespace sandman {
namespace {

constexpr const char* kBashrc =
    "# Created by Sandman on your first session; yours to edit, kept across sessions.\n"
    "[ -z \"$PS1\" ] && return\n"
    "export PS1='\\u@sandman:\\w\\$ '\n"
    "cd /workspace 2>/dev/null\n";

Status makeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return {};
  return unavailable("cannot create " + path + ": " + std::strerror(errno));
}

// Creates path owned by uid/gid unless something is already there.
Status makeOwnedDir(const std::string& path, const UserAccount& a) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return internal(path + " exists and is not a directory; refusing to use it");
    return {};
  }
  if (auto s = makeDir(path, 0750); !s.ok()) return s;
  if (::chown(path.c_str(), a.uid, a.gid) != 0) {
    return unavailable("cannot chown " + path + ": " + std::strerror(errno));
  }
  return {};
}

Status writeSkeletonFile(const std::string& path, const std::string& text, const UserAccount& a) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return {};  // the user's own version wins
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return unavailable("cannot create " + path + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fchown(fd, a.uid, a.gid) == 0;
  ::close(fd);
  if (!ok) return unavailable("cannot write " + path + ": " + std::strerror(errno));
  return {};
}

}  // namespace

Result<std::string> WorkspaceManager::ensure(const UserAccount& account) {
  // Checked again here: an id becomes a path below the root only as a POSIX name.
  if (!isPosixUserName(account.user_id)) return invalid("not a valid user id for a workspace directory");
  if (auto s = makeDir(root_, 0755); !s.ok()) return s.error();
  const std::string dir = pathFor(account.user_id);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    return internal("workspace " + dir + " is a symlink; refusing to follow it");
  }
  for (const auto& d : {dir, dir + "/projects", dir + "/data"}) {
    if (auto s = makeOwnedDir(d, account); !s.ok()) return s.error();
  }
  if (auto s = writeSkeletonFile(dir + "/.bashrc", kBashrc, account); !s.ok()) return s.error();
  if (quota_bytes_ > 0) {
    // The uid is unique per user and stable, so it doubles as the project id.
    const auto project = static_cast<uint32_t>(account.uid);
    if (auto s = ProjectQuota::assign(dir, project); !s.ok()) return s.error();
    if (auto s = ProjectQuota::setLimit(dir, project, quota_bytes_); !s.ok()) return s.error();
  }
  return dir;
}

}  // namespace sandman
