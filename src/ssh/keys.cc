#include "ssh/keys.h"

#include <libssh/libssh.h>

#include <array>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ssh/openssh_private_key.h"

namespace sandman {
namespace {

constexpr size_t kMaxLineBytes = 8 * 1024;
constexpr int kMinRsaBits = 2048;
constexpr std::string_view kPrivateKeyHeader = "-----BEGIN OPENSSH PRIVATE KEY-----";

constexpr const char* kHint =
    "expected one OpenSSH public key line like 'ssh-ed25519 AAAA... you@host' "
    "(the contents of ~/.ssh/id_ed25519.pub)";
constexpr const char* kCopyAgain = "copy the whole line again from your .pub file";

// The types an OpenSSH sshd in the session image accepts in authorized_keys
// and that are not deprecated (no DSA, no certificates).
constexpr std::array<std::string_view, 7> kAcceptedTypes = {
    "ssh-ed25519",         "ecdsa-sha2-nistp256",        "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "ssh-rsa",                    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
};

struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using KeyPtr = std::unique_ptr<std::remove_pointer_t<ssh_key>, KeyFree>;

// Strings that libssh allocates; secrets are wiped before they are freed.
struct LibsshChars {
  char* p = nullptr;
  bool secret = false;
  ~LibsshChars() {
    if (p == nullptr) return;
    if (secret) explicit_bzero(p, std::strlen(p));
    ssh_string_free_char(p);
  }
};

Error bad(const std::string& what) { return invalid("ssh_public_key: " + what); }

bool isAccepted(std::string_view type) {
  for (auto t : kAcceptedTypes) {
    if (t == type) return true;
  }
  return false;
}

std::vector<std::string_view> splitSpaces(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// Strict RFC 4648 base64 with padding, as ssh-keygen writes it.
std::optional<std::string> decodeBase64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && in[in.size() - 1 - pad] == '=') ++pad;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < in.size() - pad; ++i) {
    int v = value(in[i]);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// Reads the SSH wire format (RFC 4251 "string" and "mpint").
class WireReader {
 public:
  explicit WireReader(std::string_view b) : b_(b) {}
  std::optional<std::string_view> string() {
    if (b_.size() - pos_ < 4) return std::nullopt;
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<uint8_t>(b_[pos_ + i]);
    pos_ += 4;
    if (b_.size() - pos_ < len) return std::nullopt;
    auto out = b_.substr(pos_, len);
    pos_ += len;
    return out;
  }

 private:
  std::string_view b_;
  size_t pos_ = 0;
};

// Bits of the RSA modulus in an "ssh-rsa" blob: string type, mpint e, mpint n.
int rsaModulusBits(std::string_view blob) {
  WireReader r(blob);
  if (!r.string() || !r.string()) return 0;
  auto n = r.string();
  if (!n) return 0;
  size_t i = 0;
  while (i < n->size() && (*n)[i] == '\0') ++i;
  if (i == n->size()) return 0;
  auto first = static_cast<uint8_t>((*n)[i]);
  return static_cast<int>((n->size() - i - 1) * 8) + std::bit_width(first);
}

// The first problem with the line's characters, if any.
std::optional<Error> checkCharacters(std::string_view line) {
  for (char c : line) {
    if (c == '\n' || c == '\r') {
      return bad("contains a line break; give exactly one key on one line");
    }
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", u);
      return bad(std::string("contains a control character (byte ") + hex + "); " + kHint);
    }
  }
  return std::nullopt;
}

Error unknownType(std::string_view type) {
  return bad("key type '" + std::string(type) +
             "' is not accepted; use ssh-ed25519 (recommended), ecdsa-sha2-nistp256/384/521, "
             "ssh-rsa of at least 2048 bits, or a security key type "
             "(sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com)");
}

}  // namespace

Result<SshKeyPair> generateEd25519(const std::string& comment) {
  if (auto e = checkCharacters(comment)) {
    return invalid("key comment must be one line of printable characters");
  }
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK || raw == nullptr) {
    return internal("libssh could not generate an ed25519 key");
  }
  KeyPtr key(raw);

  LibsshChars priv{nullptr, true};
  if (ssh_pki_export_privkey_base64(key.get(), nullptr, nullptr, nullptr, &priv.p) != SSH_OK ||
      priv.p == nullptr) {
    return internal("libssh could not export the ed25519 private key");
  }
  std::string private_openssh(priv.p);
  if (private_openssh.rfind(kPrivateKeyHeader, 0) != 0) {
    explicit_bzero(private_openssh.data(), private_openssh.size());
    return internal("libssh exported the private key in a format OpenSSH does not read");
  }
  // libssh pads the private section to 16 bytes; lay it out as ssh-keygen
  // does (8), which every client reads (AsyncSSH 2.10 rejects 16).
  auto canonical = canonicalOpenSshPrivateKey(private_openssh);
  explicit_bzero(private_openssh.data(), private_openssh.size());
  if (!canonical.ok()) return internal("libssh exported an unexpected private key: " + canonical.error().message);
  private_openssh = std::move(canonical).value();

  LibsshChars pub;
  if (ssh_pki_export_pubkey_base64(key.get(), &pub.p) != SSH_OK || pub.p == nullptr) {
    explicit_bzero(private_openssh.data(), private_openssh.size());
    return internal("libssh could not export the ed25519 public key");
  }
  std::string public_line = std::string(ssh_key_type_to_char(ssh_key_type(key.get()))) + " " +
                            pub.p;
  if (!comment.empty()) public_line += " " + comment;
  return SshKeyPair{std::move(private_openssh), std::move(public_line)};
}

Result<std::string> parsePublicKeyLine(const std::string& input) {
  if (input.size() > kMaxLineBytes) {
    return bad("is " + std::to_string(input.size()) + " bytes, more than the " +
               std::to_string(kMaxLineBytes) + " allowed; " + kHint);
  }
  // One trailing line break is what `cat key.pub` leaves; tolerate it, and
  // surrounding spaces, but nothing inside the line.
  std::string_view line(input);
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
  while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  if (line.empty()) return bad(std::string("is empty; ") + kHint);
  if (line.find("PRIVATE KEY-----") != std::string_view::npos) {
    return bad("this is a private key; keep it secret and send the public key instead "
               "(the .pub file, e.g. ~/.ssh/id_ed25519.pub)");
  }
  if (auto e = checkCharacters(line)) return *e;

  auto fields = splitSpaces(line);
  std::string_view type = fields[0];
  if (!isAccepted(type)) {
    bool later_type = false;
    for (size_t i = 1; i < fields.size(); ++i) later_type = later_type || isAccepted(fields[i]);
    if (later_type || type.find('=') != std::string_view::npos) {
      return bad("authorized_keys options such as 'from=', 'command=' or 'no-pty' are not "
                 "accepted; give only the key: 'ssh-ed25519 AAAA... you@host'");
    }
    return unknownType(type);
  }
  if (fields.size() < 2) {
    return bad("the key data after '" + std::string(type) + "' is missing; " + kHint);
  }
  std::string_view b64 = fields[1];
  auto blob = decodeBase64(b64);
  if (!blob) return bad(std::string("the key data is not valid base64; ") + kCopyAgain);
  auto blob_type = WireReader(*blob).string();
  if (!blob_type) return bad(std::string("the key data is truncated; ") + kCopyAgain);
  if (*blob_type != type) {
    return bad("the line says '" + std::string(type) + "' but the key data is a '" +
               std::string(*blob_type) + "' key; " + kCopyAgain);
  }

  ssh_key raw = nullptr;
  std::string b64s(b64);
  if (ssh_pki_import_pubkey_base64(b64s.c_str(), ssh_key_type_from_name(std::string(type).c_str()),
                                   &raw) != SSH_OK ||
      raw == nullptr) {
    return bad("the key data is not a valid " + std::string(type) + " key; " + kCopyAgain);
  }
  KeyPtr key(raw);
  // Re-encoding must give back the same bytes: this refuses trailing junk
  // and odd encodings that another parser might read differently.
  LibsshChars canonical;
  if (ssh_pki_export_pubkey_base64(key.get(), &canonical.p) != SSH_OK || canonical.p == nullptr ||
      decodeBase64(canonical.p) != blob) {
    return bad("the key data is not a valid " + std::string(type) + " key; " + kCopyAgain);
  }
  if (type == "ssh-rsa") {
    int bits = rsaModulusBits(*blob);
    if (bits < kMinRsaBits) {
      return bad("this RSA key has " + std::to_string(bits) + " bits; at least " +
                 std::to_string(kMinRsaBits) +
                 " are required. Create a new key with 'ssh-keygen -t ed25519'");
    }
  }

  std::string out = std::string(type) + " " + canonical.p;
  auto comment_at = static_cast<size_t>(b64.data() - line.data()) + b64.size();
  std::string_view comment = line.substr(comment_at);
  while (!comment.empty() && comment.front() == ' ') comment.remove_prefix(1);
  if (!comment.empty()) out += " " + std::string(comment);
  return out;
}

}  // namespace sandman

namespace sandman {

Result<std::string> publicKeyFingerprint(const std::string& line) {
  auto parsed = parsePublicKeyLine(line);
  if (!parsed.ok()) return parsed.error();
  auto fields = splitSpaces(parsed.value());
  ssh_key raw = nullptr;
  std::string blob(fields[1]);
  if (ssh_pki_import_pubkey_base64(blob.c_str(), ssh_key_type_from_name(std::string(fields[0]).c_str()), &raw) !=
      SSH_OK) {
    return invalid("ssh public key: cannot decode the key");
  }
  KeyPtr key(raw);
  unsigned char* hash = nullptr;
  size_t hlen = 0;
  if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != SSH_OK) {
    return internal("cannot hash a public key");
  }
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
  ssh_clean_pubkey_hash(&hash);
  if (!fp) return internal("cannot format a key fingerprint");
  std::string out(fp);
  ssh_string_free_char(fp);
  return out;
}

}  // namespace sandman
