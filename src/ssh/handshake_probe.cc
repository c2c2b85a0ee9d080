#include "ssh/handshake_probe.h"

#include <libssh/libssh.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <sstream>
#include <type_traits>

namespace sandman {
namespace {

struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using KeyPtr = std::unique_ptr<std::remove_pointer_t<ssh_key>, KeyFree>;

// Disconnects (a no-op when never connected) and frees the session.
struct SessionFree {
  void operator()(ssh_session s) const {
    ssh_disconnect(s);
    ssh_free(s);
  }
};
using SessionPtr = std::unique_ptr<std::remove_pointer_t<ssh_session>, SessionFree>;

// libssh keeps process-wide state (crypto, log level); set it up once, quietly:
// the probe runs in a loop and its failures are expected, not news for stderr.
void initLibssh() {
  static std::once_flag once;
  std::call_once(once, [] {
    ssh_init();
    ssh_set_log_level(SSH_LOG_NOLOG);
  });
}

// "type base64 [comment]" -> key; the comment is ignored.
Result<KeyPtr> importExpected(const std::string& line) {
  std::istringstream in(line);
  std::string type, b64;
  in >> type >> b64;
  enum ssh_keytypes_e kt = ssh_key_type_from_name(type.c_str());
  ssh_key raw = nullptr;
  if (type.empty() || b64.empty() || kt == SSH_KEYTYPE_UNKNOWN ||
      ssh_pki_import_pubkey_base64(b64.c_str(), kt, &raw) != SSH_OK || raw == nullptr) {
    return invalid("expected host key is not an OpenSSH public key line ('" +
                   line.substr(0, 40) + "...'); regenerate the session's host key");
  }
  return KeyPtr(raw);
}

// The host key algorithms to offer, so that the server presents the key we pin.
const char* hostKeyAlgorithms(enum ssh_keytypes_e kt) {
  switch (kt) {
    case SSH_KEYTYPE_ED25519: return "ssh-ed25519";
    case SSH_KEYTYPE_ECDSA_P256: return "ecdsa-sha2-nistp256";
    case SSH_KEYTYPE_ECDSA_P384: return "ecdsa-sha2-nistp384";
    case SSH_KEYTYPE_ECDSA_P521: return "ecdsa-sha2-nistp521";
    case SSH_KEYTYPE_RSA: return "rsa-sha2-512,rsa-sha2-256";
    default: return nullptr;
  }
}

template <typename T>
bool setOption(ssh_session s, enum ssh_options_e opt, const T* value) {
  return ssh_options_set(s, opt, value) == SSH_OK;
}

}  // namespace

Status probeSshHandshake(const std::string& host, int port, const std::string& expected_host_key,
                         Millis timeout) {
  initLibssh();
  if (host.empty() || port <= 0 || port > 65535) {
    return invalid("probe target " + host + ":" + std::to_string(port) + " is not an address");
  }
  auto expected = importExpected(expected_host_key);
  if (!expected.ok()) return expected.error();
  const char* algorithms = hostKeyAlgorithms(ssh_key_type(expected->get()));
  if (algorithms == nullptr) {
    return invalid("expected host key type is not one the probe can pin");
  }

  const std::string where = host + ":" + std::to_string(port);
  SessionPtr session(ssh_new());
  if (!session) return internal("libssh could not allocate a session");
  ssh_session s = session.get();

  long ms = std::max<long>(1, static_cast<long>(timeout.count()));
  long secs = ms / 1000;
  long usecs = (ms % 1000) * 1000;
  unsigned int uport = static_cast<unsigned int>(port);
  int verbosity = SSH_LOG_NOLOG;
  bool process_config = false;
  // Fixed user and ssh dir: libssh would otherwise look them up in passwd
  // and $HOME, which the daemon neither needs nor may have.
  bool ok = setOption(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) &&
            setOption(s, SSH_OPTIONS_PROCESS_CONFIG, &process_config) &&
            setOption(s, SSH_OPTIONS_HOST, host.c_str()) &&
            setOption(s, SSH_OPTIONS_PORT, &uport) &&
            setOption(s, SSH_OPTIONS_USER, "sandman-probe") &&
            setOption(s, SSH_OPTIONS_SSH_DIR, "/nonexistent") &&
            setOption(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") &&
            setOption(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") &&
            setOption(s, SSH_OPTIONS_TIMEOUT, &secs) &&
            setOption(s, SSH_OPTIONS_TIMEOUT_USEC, &usecs) &&
            setOption(s, SSH_OPTIONS_HOSTKEYS, algorithms);
  if (!ok) {
    return internal("libssh rejected the probe options for " + where + ": " + ssh_get_error(s));
  }

  if (ssh_connect(s) != SSH_OK) {
    return unavailable("no SSH handshake with " + where + ": " + ssh_get_error(s));
  }
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(s, &raw) != SSH_OK || raw == nullptr) {
    return unavailable("SSH server at " + where + " presented no host key");
  }
  KeyPtr presented(raw);
  if (ssh_key_cmp(presented.get(), expected->get(), SSH_KEY_CMP_PUBLIC) != 0) {
    return conflict("SSH server at " + where +
                    " presented a different host key than the session's; not treating it as "
                    "ready (another process may hold the port)");
  }
  return {};
}

}  // namespace sandman
