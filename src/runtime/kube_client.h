// KubeClient: the Kubernetes API over HTTPS (libcurl), what the Kubernetes
// backend reads and writes pods, secrets and leases through. Thread-safe: every
// call takes its own curl handle (idle handles are pooled so connections are
// reused); a watch runs on its caller's thread until the stream ends or is stopped.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/result.h"

namespace sandman {

struct KubeConfig {
  std::string server;            // "https://127.0.0.1:6443"
  std::string ca_file;           // PEM bundle that signs the server; empty: system CAs
  std::string token_file;        // bearer token, re-read when the file changes and after a 401 (projected tokens rotate)
  std::string client_cert_file;  // optional client certificate + key (tests' admin identity)
  std::string client_key_file;
  // A watch with no byte for this long is taken for a dead connection. The API
  // server sends a bookmark about once a minute to watches that asked for them.
  Millis watch_idle_limit{std::chrono::seconds(90)};
  Millis request_timeout{std::chrono::seconds(30)};  // a whole non-watch call
  Millis connect_timeout{std::chrono::seconds(5)};
};

// In-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, token and ca.crt from sa_dir.
Result<KubeConfig> inClusterConfig(const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

struct KubeResponse {
  long status = 0;
  nlohmann::json body;           // parsed JSON; a Status object for errors
  std::string message() const;   // body["message"] when present, else "HTTP <status>"
  std::string reason() const;    // body["reason"] ("AlreadyExists", "NotFound", "Expired", ...)
};

// Percent-encodes a query parameter value (label selectors carry '=' and ',').
std::string urlEncode(const std::string& value);
// `path` with key=value in its query: appended, or replacing an existing value of key.
std::string withQueryParam(const std::string& path, const std::string& key, const std::string& value);

// The bearer token from a file, cached until the file changes (inode, size or
// mtime) or a reload is forced (after a 401). Thread-safe.
class TokenSource {
 public:
  explicit TokenSource(std::string file);
  // The token (trailing whitespace removed); kUnavailable when the file cannot be read.
  Result<std::string> token(bool force_reload = false);
  uint64_t reloads() const;  // how often the file was read

 private:
  std::string file_;
  mutable std::mutex mu_;
  std::string token_;  // guarded by mu_
  bool loaded_ = false;  // guarded by mu_
  ino_t ino_ = 0;  // guarded by mu_
  off_t size_ = 0;  // guarded by mu_
  timespec mtime_{};  // guarded by mu_
  uint64_t reloads_ = 0;  // guarded by mu_
};

class KubeClient {
 public:
  explicit KubeClient(KubeConfig config);
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  // Transport failures are kUnavailable errors; any HTTP status is a KubeResponse.
  Result<KubeResponse> get(const std::string& path);                                // path incl. query
  Result<KubeResponse> create(const std::string& collection_path, const nlohmann::json& object);  // POST ...?fieldValidation=Strict
  Result<KubeResponse> replace(const std::string& path, const nlohmann::json& object);             // PUT, Strict
  Result<KubeResponse> patchMerge(const std::string& path, const nlohmann::json& patch);           // merge-patch, Strict
  Result<KubeResponse> remove(const std::string& path, std::optional<int> grace_seconds = {},
                              const std::string& propagation = "Background");

  enum class WatchEnd { kClosed, kStopped, kGone };  // server ended the stream / callback or stop flag / 410
  // Streams GET path (must carry watch=1 etc.); calls on_event(type, object) per line-delimited JSON event as it
  // arrives; returns kGone on an HTTP 410 or an ERROR event whose Status code is 410; other HTTP errors are
  // errors (kUnavailable for 5xx/transport, with the API's message). on_event returning false stops the watch.
  Result<WatchEnd> watch(const std::string& path,
                         const std::function<bool(const std::string& type, const nlohmann::json& object)>& on_event,
                         const std::atomic<bool>& stop);

  const KubeConfig& config() const;
  uint64_t unauthorizedRetries() const { return unauthorized_retries_.load(); }

 private:
  Result<KubeResponse> send(const std::string& method, const std::string& path, const std::string& body,
                            const std::string& content_type);
  Result<KubeResponse> sendOnce(const std::string& method, const std::string& path, const std::string& body,
                                const std::string& content_type, bool reload_token);
  Result<WatchEnd> watchOnce(const std::string& path,
                             const std::function<bool(const std::string&, const nlohmann::json&)>& on_event,
                             const std::atomic<bool>& stop, bool reload_token, long* status_out);
  Result<std::vector<std::string>> headers(const std::string& content_type, bool reload_token);
  void* takeHandle();
  void returnHandle(void* handle);

  KubeConfig config_;
  std::optional<TokenSource> token_;
  std::atomic<uint64_t> unauthorized_retries_{0};
  std::mutex pool_mu_;
  std::vector<void*> idle_handles_;  // guarded by pool_mu_; CURL*, kept for their open connections
};

}  // namespace sandman
