#include "workspace/tree_usage.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sandman {

TreeUsageWalk::~TreeUsageWalk() {
  closeCurrent();
  if (root_fd_ >= 0) ::close(root_fd_);
}

void TreeUsageWalk::closeCurrent() {
  if (current_ != nullptr) ::closedir(current_);
  current_ = nullptr;
}

Status TreeUsageWalk::start() {
  started_ = true;
  root_fd_ = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root_fd_ < 0) return unavailable("cannot open " + root_ + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(root_fd_, &st) != 0) return unavailable("cannot stat " + root_ + ": " + std::strerror(errno));
  dev_ = st.st_dev;
  bytes_ = static_cast<uint64_t>(st.st_blocks) * 512;
  entries_ = 1;
  pending_.push_back(".");
  return {};
}

// The tree belongs to a session's user, who may swap a directory for a
// symlink between our listing and our open: resolution stays beneath the
// root, on its file system, through no symlink.
int TreeUsageWalk::openBeneath(const std::string& rel) const {
  open_how how {};
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, root_fd_, rel.c_str(), &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) {
    // Kernels before 5.6: the last component at least is never a symlink.
    fd = ::openat(root_fd_, rel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  return static_cast<int>(fd);
}

Result<bool> TreeUsageWalk::step(size_t* budget) {
  if (done_) return true;
  if (!started_) {
    if (Status st = start(); !st.ok()) return st.error();
  }
  while (*budget > 0) {
    if (current_ == nullptr) {
      if (pending_.empty()) {
        done_ = true;
        if (root_fd_ >= 0) ::close(root_fd_);
        root_fd_ = -1;
        return true;
      }
      current_rel_ = std::move(pending_.back());
      pending_.pop_back();
      int fd = openBeneath(current_rel_);
      if (fd < 0) continue;  // gone or unreadable since it was listed
      current_ = ::fdopendir(fd);
      if (current_ == nullptr) {
        ::close(fd);
        continue;
      }
    }
    errno = 0;
    const dirent* e = ::readdir(current_);
    if (e == nullptr) {
      closeCurrent();
      continue;
    }
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    --*budget;
    struct stat st {};
    if (::fstatat(::dirfd(current_), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    ++entries_;
    bytes_ += static_cast<uint64_t>(st.st_blocks) * 512;
    if (S_ISDIR(st.st_mode) && st.st_dev == dev_) {
      pending_.push_back(current_rel_ == "." ? std::string(e->d_name) : current_rel_ + "/" + e->d_name);
    }
  }
  return false;
}

}  // namespace sandman
