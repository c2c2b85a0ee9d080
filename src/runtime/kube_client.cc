#include "runtime/kube_client.h"

#include <curl/curl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/log.h"

namespace sandman {
namespace {

using json = nlohmann::json;

// curl_global_init is not thread-safe; run it once, before the first handle.
void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

constexpr size_t kMaxIdleHandles = 8;
constexpr size_t kMaxErrorBody = 64 * 1024;

size_t appendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

Result<SlistPtr> toSlist(const std::vector<std::string>& headers) {
  SlistPtr list;
  for (const auto& h : headers) {
    curl_slist* next = curl_slist_append(list.get(), h.c_str());
    if (next == nullptr) return internal("out of memory building HTTP headers");
    list.release();
    list.reset(next);
  }
  return list;
}

// A body that is not JSON (a proxy's error page, an empty 503) still reads as
// a Status, so callers need one shape.
json parseBody(const std::string& text, long status) {
  if (text.empty()) return json::object();
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!body.is_discarded()) return body;
  return json{{"kind", "Status"}, {"code", status}, {"message", text.substr(0, 512)}};
}

std::string statusMessage(const json& body, long status) {
  if (body.is_object()) {
    auto it = body.find("message");
    if (it != body.end() && it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
  }
  return "HTTP " + std::to_string(status);
}

Error errorForStatus(long status, const std::string& what, const std::string& message) {
  std::string m = what + ": " + message;
  if (status >= 500 || status == 429) return unavailable(m);
  switch (status) {
    case 401:
    case 403: return {ErrorKind::kUnauthorized, m};
    case 404: return notFound(m);
    case 409: return conflict(m);
    default: return invalid(m);
  }
}

void setCommonOptions(CURL* c, const KubeConfig& cfg, const std::string& url, curl_slist* headers,
                      char* errbuf) {
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM in a threaded daemon
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(cfg.connect_timeout.count()));
  // https is always verified; a private CA is named, never skipped.
  if (!cfg.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, cfg.ca_file.c_str());
  if (!cfg.client_cert_file.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT, cfg.client_cert_file.c_str());
  if (!cfg.client_key_file.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY, cfg.client_key_file.c_str());
  // A peer that vanished without a FIN (node gone, cable pulled) is noticed.
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 10L);
}

bool sameTime(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

// The state of one watch stream as curl hands it over in chunks.
struct WatchStream {
  CURL* curl = nullptr;
  const std::function<bool(const std::string&, const json&)>* on_event = nullptr;
  const std::atomic<bool>* stop = nullptr;
  long status = 0;            // known with the first body byte
  std::string pending;        // bytes after the last complete line
  std::string error_body;     // the body of a non-200 answer
  bool gone = false;          // an ERROR event with code 410
  bool stopped = false;       // on_event said stop
  std::optional<Error> error;  // a malformed or ERROR event

  // false: abort the transfer (gone, stopped or error is set).
  bool handleLine(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) return true;
    json event = json::parse(line, nullptr, false);
    if (event.is_discarded() || !event.is_object() || !event.contains("type") || !event["type"].is_string()) {
      error = unavailable("watch: malformed event: " + std::string(line.substr(0, 200)));
      return false;
    }
    const std::string type = event["type"].get<std::string>();
    const json& object = event.contains("object") ? event["object"] : json::object();
    if (type == "ERROR") {
      long code = object.is_object() && object.contains("code") && object["code"].is_number_integer()
                      ? object["code"].get<long>()
                      : 0;
      if (code == 410) {
        gone = true;
      } else {
        error = errorForStatus(code == 0 ? 500 : code, "watch", statusMessage(object, code));
      }
      return false;
    }
    if (!(*on_event)(type, object)) {
      stopped = true;
      return false;
    }
    return true;
  }

  static size_t write(char* data, size_t size, size_t count, void* user) {
    auto* s = static_cast<WatchStream*>(user);
    size_t n = size * count;
    if (s->status == 0) curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200) {
      if (s->error_body.size() < kMaxErrorBody) s->error_body.append(data, n);
      return n;
    }
    // Lines are parsed where they end, so a chunk boundary never splits an event.
    size_t start = 0;
    std::string_view chunk(data, n);
    while (true) {
      size_t nl = chunk.find('\n', start);
      if (nl == std::string_view::npos) break;
      bool go_on;
      if (s->pending.empty()) {
        go_on = s->handleLine(chunk.substr(start, nl - start));
      } else {
        s->pending.append(chunk.substr(start, nl - start));
        std::string line = std::move(s->pending);
        s->pending.clear();
        go_on = s->handleLine(line);
      }
      if (!go_on) return 0;
      start = nl + 1;
    }
    s->pending.append(chunk.substr(start));
    return n;
  }

  // curl calls this about once a second even on an idle stream: the stop flag's latency.
  static int progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* s = static_cast<WatchStream*>(user);
    return s->stop->load() ? 1 : 0;
  }
};

}  // namespace

// --- helpers ----------------------------------------------------------------------------

std::string urlEncode(const std::string& value) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string withQueryParam(const std::string& path, const std::string& key, const std::string& value) {
  size_t q = path.find('?');
  std::string base = q == std::string::npos ? path : path.substr(0, q);
  std::string query = q == std::string::npos ? "" : path.substr(q + 1);
  std::string out;
  bool found = false;
  size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    size_t amp = query.find('&', pos);
    std::string param = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (!param.empty()) {
      std::string name = param.substr(0, param.find('='));
      if (name == key) {
        if (found) param.clear();  // a repeated key collapses into one
        else param = key + "=" + value;
        found = true;
      }
      if (!param.empty()) out += (out.empty() ? "" : "&") + param;
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  if (!found) out += (out.empty() ? "" : "&") + key + "=" + value;
  return base + "?" + out;
}

std::string KubeResponse::message() const { return statusMessage(body, status); }

std::string KubeResponse::reason() const {
  if (body.is_object()) {
    auto it = body.find("reason");
    if (it != body.end() && it->is_string()) return it->get<std::string>();
  }
  return "";
}

Result<KubeConfig> inClusterConfig(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return invalid("not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST/PORT are unset");
  }
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6 service address
  KubeConfig cfg;
  cfg.server = "https://" + h + ":" + port;
  cfg.token_file = sa_dir + "/token";
  cfg.ca_file = sa_dir + "/ca.crt";
  for (const auto& f : {cfg.token_file, cfg.ca_file}) {
    if (access(f.c_str(), R_OK) != 0) return invalid("in-cluster config: cannot read " + f);
  }
  return cfg;
}

// --- TokenSource --------------------------------------------------------------------------

TokenSource::TokenSource(std::string file) : file_(std::move(file)) {}

Result<std::string> TokenSource::token(bool force_reload) {
  std::lock_guard lock(mu_);
  struct stat st {};
  if (stat(file_.c_str(), &st) != 0) {
    if (loaded_) return token_;  // mid-rotation (the ..data link swapped): the last token still works a while
    return unavailable("token file " + file_ + ": cannot stat");
  }
  bool changed = !loaded_ || st.st_ino != ino_ || st.st_size != size_ || !sameTime(st.st_mtim, mtime_);
  if (!changed && !force_reload) return token_;
  std::ifstream in(file_);
  if (!in) {
    if (loaded_) return token_;
    return unavailable("token file " + file_ + ": cannot open");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  if (t.empty()) {
    if (loaded_) return token_;
    return unavailable("token file " + file_ + " is empty");
  }
  token_ = std::move(t);
  loaded_ = true;
  ino_ = st.st_ino;
  size_ = st.st_size;
  mtime_ = st.st_mtim;
  ++reloads_;
  return token_;
}

uint64_t TokenSource::reloads() const {
  std::lock_guard lock(mu_);
  return reloads_;
}

// --- KubeClient -----------------------------------------------------------------------------

KubeClient::KubeClient(KubeConfig config) : config_(std::move(config)) {
  initCurlOnce();
  while (!config_.server.empty() && config_.server.back() == '/') config_.server.pop_back();
  if (!config_.token_file.empty()) token_.emplace(config_.token_file);
}

KubeClient::~KubeClient() {
  for (void* h : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(h));
}

const KubeConfig& KubeClient::config() const { return config_; }

void* KubeClient::takeHandle() {
  {
    std::lock_guard lock(pool_mu_);
    if (!idle_handles_.empty()) {
      void* h = idle_handles_.back();
      idle_handles_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void KubeClient::returnHandle(void* handle) {
  if (handle == nullptr) return;
  auto* c = static_cast<CURL*>(handle);
  curl_easy_reset(c);  // keeps the open connection and TLS session for the next call
  std::lock_guard lock(pool_mu_);
  if (idle_handles_.size() < kMaxIdleHandles) {
    idle_handles_.push_back(c);
    return;
  }
  curl_easy_cleanup(c);
}

Result<std::vector<std::string>> KubeClient::headers(const std::string& content_type, bool reload_token) {
  std::vector<std::string> h{"Accept: application/json", "Expect:"};
  if (!content_type.empty()) h.push_back("Content-Type: " + content_type);
  if (token_) {
    auto t = token_->token(reload_token);
    if (!t.ok()) return t.error();
    h.push_back("Authorization: Bearer " + *t);
  }
  return h;
}

Result<KubeResponse> KubeClient::send(const std::string& method, const std::string& path, const std::string& body,
                                      const std::string& content_type) {
  auto r = sendOnce(method, path, body, content_type, false);
  if (!r.ok() || r->status != 401) return r;
  logWarn("kube_unauthorized", {{"method", method}, {"path", path}, {"message", r->message()},
                                {"retry", token_ ? "with a re-read token" : "no (no token file)"}});
  if (!token_) return r;
  ++unauthorized_retries_;
  return sendOnce(method, path, body, content_type, true);
}

Result<KubeResponse> KubeClient::sendOnce(const std::string& method, const std::string& path,
                                          const std::string& body, const std::string& content_type,
                                          bool reload_token) {
  auto hdrs = headers(content_type, reload_token);
  if (!hdrs.ok()) return hdrs.error();
  auto list = toSlist(*hdrs);
  if (!list.ok()) return list.error();
  auto* c = static_cast<CURL*>(takeHandle());
  if (c == nullptr) return internal("curl_easy_init failed");
  std::string url = config_.server + path;
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::string text;
  setCommonOptions(c, config_, url, list->get(), errbuf);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.request_timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &text);
  CURLcode rc = curl_easy_perform(c);
  KubeResponse resp;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  if (rc != CURLE_OK) {
    curl_easy_cleanup(c);  // its connection is in an unknown state
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    return unavailable(method + " " + url + ": " + detail);
  }
  returnHandle(c);
  resp.body = parseBody(text, resp.status);
  return resp;
}

Result<KubeResponse> KubeClient::get(const std::string& path) { return send("GET", path, "", ""); }

Result<KubeResponse> KubeClient::create(const std::string& collection_path, const json& object) {
  return send("POST", withQueryParam(collection_path, "fieldValidation", "Strict"), object.dump(),
              "application/json");
}

Result<KubeResponse> KubeClient::replace(const std::string& path, const json& object) {
  return send("PUT", withQueryParam(path, "fieldValidation", "Strict"), object.dump(), "application/json");
}

Result<KubeResponse> KubeClient::patchMerge(const std::string& path, const json& patch) {
  return send("PATCH", withQueryParam(path, "fieldValidation", "Strict"), patch.dump(),
              "application/merge-patch+json");
}

Result<KubeResponse> KubeClient::remove(const std::string& path, std::optional<int> grace_seconds,
                                        const std::string& propagation) {
  json options{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (grace_seconds) options["gracePeriodSeconds"] = *grace_seconds;
  if (!propagation.empty()) options["propagationPolicy"] = propagation;
  return send("DELETE", path, options.dump(), "application/json");
}

Result<KubeClient::WatchEnd> KubeClient::watch(
    const std::string& path, const std::function<bool(const std::string&, const json&)>& on_event,
    const std::atomic<bool>& stop) {
  long status = 0;
  auto r = watchOnce(path, on_event, stop, false, &status);
  if (r.ok() || status != 401) return r;
  logWarn("kube_unauthorized", {{"method", "WATCH"}, {"path", path}, {"message", r.error().message},
                                {"retry", token_ ? "with a re-read token" : "no (no token file)"}});
  if (!token_) return r;
  ++unauthorized_retries_;
  return watchOnce(path, on_event, stop, true, &status);
}

Result<KubeClient::WatchEnd> KubeClient::watchOnce(
    const std::string& path, const std::function<bool(const std::string&, const json&)>& on_event,
    const std::atomic<bool>& stop, bool reload_token, long* status_out) {
  if (stop.load()) return WatchEnd::kStopped;
  auto hdrs = headers("", reload_token);
  if (!hdrs.ok()) return hdrs.error();
  auto list = toSlist(*hdrs);
  if (!list.ok()) return list.error();
  // A watch holds its connection for minutes: a handle of its own, not the pool's.
  CURL* c = curl_easy_init();
  if (c == nullptr) return internal("curl_easy_init failed");
  std::string url = config_.server + path;
  char errbuf[CURL_ERROR_SIZE] = {0};
  WatchStream s;
  s.curl = c;
  s.on_event = &on_event;
  s.stop = &stop;
  setCommonOptions(c, config_, url, list->get(), errbuf);
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  // No overall timeout: the server ends the stream at timeoutSeconds. A silent
  // connection (no event, no bookmark) for watch_idle_limit is taken as dead.
  long idle_s = std::max<long>(1, static_cast<long>(config_.watch_idle_limit.count() / 1000));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, idle_s);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &WatchStream::write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &WatchStream::progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
  CURLcode rc = curl_easy_perform(c);
  if (s.status == 0) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s.status);
  curl_easy_cleanup(c);
  *status_out = s.status;

  if (s.gone) return WatchEnd::kGone;
  if (s.stopped) return WatchEnd::kStopped;
  if (s.error) return *s.error;
  if (rc == CURLE_ABORTED_BY_CALLBACK || (rc != CURLE_OK && stop.load())) return WatchEnd::kStopped;
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    return unavailable("watch " + url + ": " + detail);
  }
  if (s.status == 410) return WatchEnd::kGone;
  if (s.status != 200) {
    return errorForStatus(s.status, "watch " + path, statusMessage(parseBody(s.error_body, s.status), s.status));
  }
  return WatchEnd::kClosed;
}

}  // namespace sandman
