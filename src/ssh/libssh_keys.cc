#include "ssh/libssh_keys.h"

namespace sandman {

ssh_key importPublicKeyLine(const std::string& line) {
  size_t sp = line.find(' ');
  if (sp == std::string::npos) return nullptr;
  std::string type = line.substr(0, sp);
  std::string rest = line.substr(sp + 1);
  std::string b64 = rest.substr(0, rest.find(' '));
  ssh_key key = nullptr;
  if (ssh_pki_import_pubkey_base64(b64.c_str(), ssh_key_type_from_name(type.c_str()), &key) != SSH_OK) {
    return nullptr;
  }
  return key;
}

}  // namespace sandman
