#include "api/token_auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace sandman {

Result<std::string> readToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return invalid("cannot read the API token file " + path + ": " + std::strerror(errno) +
                          " (use --token-file, or run as a user who can read it)");
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) return invalid("the API token in " + path + " is empty or too short");
  return token;
}

Result<std::string> loadOrCreateToken(const std::string& path, bool* created) {
  *created = false;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    // A token others can read, or that someone else can rewrite, is no secret.
    // A Kubernetes Secret mount is root-owned and readable by the pod's
    // fsGroup only (the daemon's group): root could rewrite anything anyway.
    const bool secret_mount = st.st_uid == 0 && st.st_uid != ::geteuid() && (st.st_mode & 027) == 0 &&
                              ((st.st_mode & 040) == 0 || st.st_gid == ::getegid());
    if (secret_mount) return readToken(path);
    if (st.st_uid != ::geteuid()) {
      return invalid("the API token file " + path + " is owned by uid " + std::to_string(st.st_uid) +
                     ", not by the daemon's user (uid " + std::to_string(::geteuid()) + "): chown it, or use --token-file");
    }
    if ((st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return invalid("the API token file " + path + " has mode " + mode +
                     ": other users may read it; run 'chmod 600 " + path + "'");
    }
    return readToken(path);
  }
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  std::random_device rd;
  std::string token;
  for (int i = 0; i < 32; ++i) {
    token += "0123456789abcdef"[rd() & 0xf];
    token += "0123456789abcdef"[rd() & 0xf];
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return unavailable("cannot create the API token file " + path + ": " + std::strerror(errno));
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) return unavailable("cannot write the API token file " + path);
  *created = true;
  return token;
}

bool bearerMatches(const std::string& header, const std::string& token) {
  const std::string expected = "Bearer " + token;
  unsigned diff = header.size() == expected.size() ? 0u : 1u;
  for (size_t i = 0; i < expected.size(); ++i) {
    char h = i < header.size() ? header[i] : 0;
    diff |= static_cast<unsigned>(h ^ expected[i]);
  }
  return diff == 0;
}

}  // namespace sandman
