#include "gateway/host_key.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ssh/keys.h"

namespace sandman {
namespace {

Status writeNewKey(const std::string& path) {
  auto pair = generateEd25519("sandman-gateway");
  if (!pair.ok()) return pair.error();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status();  // another start won the race
    return unavailable("gateway host key: cannot create " + path + ": " + std::strerror(errno));
  }
  const std::string& text = pair->private_openssh;
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(path.c_str());
      return unavailable("gateway host key: cannot write " + path);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return unavailable("gateway host key: cannot write " + path);
  }
  return Status();
}

}  // namespace

Result<std::string> loadOrCreateHostKey(const std::string& path) {
  if (path.empty()) return invalid("gateway host key: no path given");
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return unavailable("gateway host key: cannot stat " + path);
    Status s = writeNewKey(path);
    if (!s.ok()) return s.error();
  } else if ((st.st_mode & 077) != 0) {
    ::chmod(path.c_str(), 0600);  // a private key must not be readable by others
  }
  ssh_key priv = nullptr;
  if (ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, &priv) != SSH_OK) {
    return invalid("gateway host key: " + path + " is not an OpenSSH private key");
  }
  ssh_key pub = nullptr;
  char* b64 = nullptr;
  int rc = ssh_pki_export_privkey_to_pubkey(priv, &pub);
  if (rc == SSH_OK) rc = ssh_pki_export_pubkey_base64(pub, &b64);
  std::string line;
  if (rc == SSH_OK) line = std::string(ssh_key_type_to_char(ssh_key_type(pub))) + " " + b64;
  ssh_string_free_char(b64);
  ssh_key_free(pub);
  ssh_key_free(priv);
  if (rc != SSH_OK) return internal("gateway host key: cannot derive the public key");
  return line;
}

}  // namespace sandman
