#include "workspace/disk_space.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace sandman {

std::string existingAncestor(const std::string& wanted) {
  std::error_code ec;
  std::filesystem::path p = wanted.empty() ? std::filesystem::path(".") : std::filesystem::path(wanted);
  while (!std::filesystem::exists(p, ec) && p.has_parent_path() && p.parent_path() != p) p = p.parent_path();
  return p.string();
}

Result<FsSpace> fsSpace(const std::string& wanted) {
  // A directory made on first use (the workspace root) is not there yet:
  // the file system it will be made on is its nearest existing ancestor's.
  const std::string path = existingAncestor(wanted);
  struct statvfs v {};
  if (::statvfs(path.c_str(), &v) != 0) {
    return unavailable("cannot read free space of " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return unavailable("cannot stat " + path + ": " + std::strerror(errno));
  FsSpace out;
  out.size_bytes = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
  out.avail_bytes = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  out.device = st.st_dev;
  return out;
}

uint64_t MinFreeDisk::floorFor(uint64_t size_bytes) const {
  const auto share = static_cast<uint64_t>(std::ceil(static_cast<double>(size_bytes) * percent / 100.0));
  return percent > 0 ? share : bytes;
}

std::string MinFreeDisk::describe() const {
  if (percent > 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g%%", percent);
    return buf;
  }
  return formatBytes(bytes);
}

std::string formatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0 || v >= 100 || v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f %s", v, kUnits[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

Status FreeSpaceGuard::checkOne(const char* what, const std::string& path) const {
  auto space = fsSpace(path);
  if (!space.ok()) return space.error();
  const uint64_t floor = min_.floorFor(space->size_bytes);
  if (space->avail_bytes >= floor) return {};
  return noSpace(std::string("the ") + what + " file system (" + path + ") has " + formatBytes(space->avail_bytes) +
                 " free of " + formatBytes(space->size_bytes) + ", below --min-free-disk " + min_.describe() +
                 "; no new sessions until space is freed there");
}

Status FreeSpaceGuard::check() const {
  if (min_.off()) return {};
  if (Status st = checkOne("state", state_dir_); !st.ok()) return st;
  return checkOne("workspace", workspace_root_);
}

}  // namespace sandman
