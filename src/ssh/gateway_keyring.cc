#include "ssh/gateway_keyring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sandman {

Status GatewayKeyring::put(const std::string& session_id, const std::string& private_key) const {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return unavailable("cannot create " + dir_ + ": " + std::strerror(errno));
  }
  const std::string path = dir_ + "/" + session_id;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return unavailable("cannot create " + path + ": " + std::strerror(errno));
  // Synced before the session is recorded as using it: after a crash the key
  // is either whole on disk or the session never got that far.
  bool ok = ::write(fd, private_key.data(), private_key.size()) == static_cast<ssize_t>(private_key.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return unavailable("cannot write " + path);
  return {};
}

Result<std::string> GatewayKeyring::get(const std::string& session_id) const {
  std::ifstream in(dir_ + "/" + session_id);
  if (!in) return notFound("no gateway key for session " + session_id);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void GatewayKeyring::remove(const std::string& session_id) const { ::unlink((dir_ + "/" + session_id).c_str()); }

}  // namespace sandman
