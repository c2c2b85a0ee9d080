// HttpListener: the API's HTTP/1.1 server on Boost.Beast and Asio. Every
// socket is served by an event loop, so a slow or idle client costs a file
// descriptor and a small buffer, never a thread; requests are bounded in
// time (a deadline for the whole head, the body, the write, keep-alive idle)
// and in size (head bytes, header count, body), and connections are capped
// in all and per source address. Complete, well-formed requests reach the
// handler; everything else is answered (400/411/413/431) or, past a
// deadline, closed here.
// Thread-safe: stop() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "api/http_message.h"
#include "common/result.h"

namespace sandman {

struct HttpLimits {
  size_t max_connections = 1024;            // open sockets in all
  size_t max_connections_per_source = 128;  // open sockets from one address
  std::chrono::milliseconds head_timeout{10000};   // from the head's first byte to its blank line
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds write_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};   // a kept-alive connection between requests
  size_t max_header_bytes = 16 * 1024;  // request line and headers
  size_t max_header_count = 100;
  size_t max_body_bytes = 64 * 1024;
  // Threads of the event loop: reading, writing, refusing. Handlers run here
  // only when run_inline says so (cheap, never waiting on a lock or a backend).
  // One is plenty for that work, and with one, no two loop threads hand work
  // to each other through the scheduler's condition variable: with four, the
  // HTTP fuzzer (ASan build) saw every loop thread stuck in
  // pthread_cond_signal inside Asio's scheduler and the server stop answering.
  size_t io_threads = 1;
  // Every other handler runs here (a create waits on Docker for seconds, a
  // listing on the store's lock), so a slow one never holds the event loop.
  size_t blocking_threads = 32;
  std::function<bool(const ApiRequest&)> run_inline;  // empty: none inline
};

// Counters for /metrics and tests; monotonic except open_connections.
struct HttpListenerStats {
  uint64_t open_connections = 0;
  uint64_t accepted_connections = 0;
  uint64_t refused_connections = 0;  // over a cap, closed at once
  uint64_t rejected_requests = 0;    // answered 4xx before reaching the handler
  uint64_t timed_out_connections = 0;
};

class HttpListener {
 public:
  // Runs for every complete request; must not throw (a throw is answered 500).
  using Handler = std::function<void(ApiRequest&, ApiResponse&)>;
  // An answer the listener gives itself (malformed, too large, ...), so the
  // caller can shape the body like every other error and log it.
  using RejectionBody = std::function<void(int status, const std::string& message, ApiResponse&)>;

  HttpListener(HttpLimits limits, Handler handler, RejectionBody rejection_body);
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds and listens; kUnavailable when the address is taken. Port 0 picks one.
  Status bind(const std::string& host, int port);
  int port() const;
  // Serves HTTPS instead of HTTP (PEM files); call before serve().
  Status enableTls(const std::string& cert_file, const std::string& key_file);
  // Serves until stop(); call after bind().
  void serve();
  void stop();
  HttpListenerStats stats() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandman
