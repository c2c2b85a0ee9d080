#include "workspace/project_quota.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/quota.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "workspace/disk_space.h"

namespace sandman {
namespace {

constexpr int kPrjQuota = 2;  // PRJQUOTA in linux/quota.h, which clashes with sys/quota.h
constexpr int kMaxDepth = 512;

// An fd closed on every path.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// quotactl on the file system of an open fd (Linux 5.14+): no need to find
// the block device behind a mount.
long quotactlFd(int fd, int cmd, uint32_t id, void* addr) {
  return ::syscall(SYS_quotactl_fd, fd, QCMD(cmd, kPrjQuota), id, addr);
}

std::string fsTypeName(long magic) {
  switch (static_cast<unsigned long>(magic)) {
    case XFS_SUPER_MAGIC: return "xfs";
    case EXT4_SUPER_MAGIC: return "ext4";  // also ext2/ext3, which have no project quota
    case TMPFS_MAGIC: return "tmpfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlay";
    case NFS_SUPER_MAGIC: return "nfs";
    default: return "unknown";
  }
}

Status setProject(int fd, uint32_t id, const std::string& what) {
  fsxattr x {};
  if (::ioctl(fd, FS_IOC_FSGETXATTR, &x) != 0) {
    return unavailable("cannot read the project id of " + what + ": " + std::strerror(errno));
  }
  if (x.fsx_projid == id && (x.fsx_xflags & FS_XFLAG_PROJINHERIT) != 0) return {};
  x.fsx_projid = id;
  x.fsx_xflags |= FS_XFLAG_PROJINHERIT;
  if (::ioctl(fd, FS_IOC_FSSETXATTR, &x) != 0) {
    return unavailable("cannot set project id " + std::to_string(id) + " on " + what + ": " + std::strerror(errno));
  }
  return {};
}

// Tags what is already under dir_fd, one level at a time. Entries are opened
// relative to their parent and never through a symlink; devices, sockets and
// fifos are not opened at all (they hold no blocks worth counting).
Status tagTree(int dir_fd, uint32_t id, const std::string& where, int depth) {
  if (depth > kMaxDepth) return {};
  int listing = ::dup(dir_fd);
  if (listing < 0) return unavailable("cannot list " + where + ": " + std::strerror(errno));
  DIR* d = ::fdopendir(listing);
  if (d == nullptr) {
    ::close(listing);
    return unavailable("cannot list " + where + ": " + std::strerror(errno));
  }
  Status result;
  while (const dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    struct stat st {};
    if (::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) continue;
    Fd child(::openat(dir_fd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (child.fd < 0) continue;  // gone meanwhile
    const std::string path = where + "/" + e->d_name;
    if (Status st2 = setProject(child.fd, id, path); !st2.ok()) {
      result = st2;
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      if (Status st2 = tagTree(child.fd, id, path, depth + 1); !st2.ok()) {
        result = st2;
        break;
      }
    }
  }
  ::closedir(d);
  return result;
}

}  // namespace

QuotaSupport ProjectQuota::probe(const std::string& dir) {
  QuotaSupport out;
  const std::string path = existingAncestor(dir);
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.fd < 0) {
    out.reason = "cannot open " + path + ": " + std::strerror(errno);
    return out;
  }
  struct statfs sf {};
  if (::fstatfs(fd.fd, &sf) == 0) out.fs_type = fsTypeName(sf.f_type);
  if (out.fs_type != "xfs" && out.fs_type != "ext4") {
    out.reason = path + " is on " + out.fs_type +
                 ", which has no project quotas; put the workspace root on XFS (mounted with prjquota) or ext4 "
                 "(tune2fs -O project,quota, mounted with prjquota)";
    return out;
  }
  fs_quota_statv v {};
  v.qs_version = FS_QSTATV_VERSION1;
  if (quotactlFd(fd.fd, Q_XGETQSTATV, 0, &v) != 0) {
    const int err = errno;
    // ENOSYS means either no quotactl_fd at all (a bad fd then says so too)
    // or no quota code for this file system in this kernel.
    if (err == ENOSYS && quotactlFd(-1, Q_GETINFO, 0, nullptr) != 0 && errno == ENOSYS) {
      out.reason = "this kernel has no quotactl_fd (Linux 5.14 or later is needed)";
    } else if (err == ENOSYS) {
      out.reason = "this kernel has no quota support for " + out.fs_type + " (built without it: " +
                   (out.fs_type == "xfs" ? "CONFIG_XFS_QUOTA" : "CONFIG_QUOTA/CONFIG_QFMT_V2") +
                   "); project quotas need it, and " + path + " mounted with prjquota";
    } else {
      out.reason = "project quotas are off on the " + out.fs_type + " file system of " + path + " (" +
                   std::strerror(err) + "); mount it with prjquota" +
                   (out.fs_type == "ext4" ? " after tune2fs -O project,quota" : "") +
                   ", and check the kernel has quota support for it";
    }
    return out;
  }
  if ((v.qs_flags & FS_QUOTA_PDQ_ENFD) == 0) {
    out.reason = "project quotas on the " + out.fs_type + " file system of " + path +
                 " are counted but not enforced; mount it with prjquota (not pqnoenforce)";
    return out;
  }
  out.enforced = true;
  return out;
}

Status ProjectQuota::assign(const std::string& dir, uint32_t project_id) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.fd < 0) return unavailable("cannot open " + dir + ": " + std::strerror(errno));
  fsxattr x {};
  if (::ioctl(fd.fd, FS_IOC_FSGETXATTR, &x) != 0) {
    return unavailable("cannot read the project id of " + dir + ": " + std::strerror(errno));
  }
  const bool tagged = x.fsx_projid == project_id && (x.fsx_xflags & FS_XFLAG_PROJINHERIT) != 0;
  if (tagged) return {};
  if (Status st = setProject(fd.fd, project_id, dir); !st.ok()) return st;
  return tagTree(fd.fd, project_id, dir, 0);
}

Result<uint32_t> ProjectQuota::projectOf(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.fd < 0) return unavailable("cannot open " + dir + ": " + std::strerror(errno));
  fsxattr x {};
  if (::ioctl(fd.fd, FS_IOC_FSGETXATTR, &x) != 0) {
    return unavailable("cannot read the project id of " + dir + ": " + std::strerror(errno));
  }
  return x.fsx_projid;
}

Status ProjectQuota::setLimit(const std::string& any_path, uint32_t project_id, uint64_t bytes) {
  Fd fd(::open(any_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.fd < 0) return unavailable("cannot open " + any_path + ": " + std::strerror(errno));
  struct dqblk q {};
  q.dqb_bhardlimit = (bytes + 1023) / 1024;  // in 1 KiB quota blocks
  q.dqb_bsoftlimit = q.dqb_bhardlimit;
  q.dqb_valid = QIF_BLIMITS;
  if (quotactlFd(fd.fd, Q_SETQUOTA, project_id, &q) != 0) {
    return unavailable("cannot set the quota of project " + std::to_string(project_id) + " on " + any_path + ": " +
                       std::strerror(errno));
  }
  return {};
}

Result<uint64_t> ProjectQuota::usage(const std::string& any_path, uint32_t project_id) {
  Fd fd(::open(any_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.fd < 0) return unavailable("cannot open " + any_path + ": " + std::strerror(errno));
  struct dqblk q {};
  if (quotactlFd(fd.fd, Q_GETQUOTA, project_id, &q) != 0) {
    return unavailable("cannot read the usage of project " + std::to_string(project_id) + " on " + any_path + ": " +
                       std::strerror(errno));
  }
  return static_cast<uint64_t>(q.dqb_curspace);
}

}  // namespace sandman
