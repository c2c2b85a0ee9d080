#include "common/http_client.h"

#include <curl/curl.h>

#include <cctype>
#include <memory>
#include <mutex>

namespace sandman {
namespace {

// curl_global_init is not thread-safe; run it once, before the first handle.
void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t appendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// One header line per call ("Name: value\r\n"); the status line and the
// blank line have no colon and are skipped.
size_t appendHeader(char* data, size_t size, size_t count, void* user) {
  std::string line(data, size * count);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t b = line.find_first_not_of(" \t", colon + 1);
    size_t e = line.find_last_not_of(" \t\r\n");
    std::string value = b == std::string::npos || e < b ? "" : line.substr(b, e - b + 1);
    static_cast<HttpResponse*>(user)->headers.emplace_back(std::move(name), std::move(value));
  }
  return size * count;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

Result<SlistPtr> buildHeaders(std::vector<std::string> headers) {
  // Without this, curl waits up to a second for "100 Continue" on large bodies.
  headers.push_back("Expect:");
  SlistPtr list;
  for (const auto& h : headers) {
    curl_slist* next = curl_slist_append(list.get(), h.c_str());
    if (next == nullptr) return internal("out of memory building HTTP headers");
    list.release();
    list.reset(next);
  }
  return list;
}

void setRequestOptions(CURL* c, const HttpRequest& req, curl_slist* headers,
                       std::string* body_out) {
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  if (req.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req.timeout_ms);
  // https is always verified (curl's default); a private CA is named, never skipped.
  if (!req.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, req.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM in a threaded daemon
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, body_out);
}

}  // namespace

HttpClient::HttpClient(std::string unix_socket) : unix_socket_(std::move(unix_socket)) {}

Result<HttpResponse> HttpClient::send(const HttpRequest& req) const {
  initCurlOnce();
  CurlPtr curl(curl_easy_init());
  if (!curl) return internal("curl_easy_init failed");
  auto headers = buildHeaders(req.headers);
  if (!headers.ok()) return headers.error();

  HttpResponse resp;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
  if (!unix_socket_.empty()) {
    curl_easy_setopt(curl.get(), CURLOPT_UNIX_SOCKET_PATH, unix_socket_.c_str());
  }
  setRequestOptions(curl.get(), req, headers->get(), &resp.body);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, appendHeader);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &resp);

  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    std::string via = unix_socket_.empty() ? "" : " (unix socket " + unix_socket_ + ")";
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    return unavailable(req.method + " " + req.url + via + ": " + detail);
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

}  // namespace sandman
