#include "api/http_listener.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/utf8.h"

namespace sandman {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Threads for handlers that may wait. Each worker runs its own io_context,
// so an idle worker sleeps in epoll and is woken through its eventfd; work
// goes to the worker with the fewest handlers in hand. (A shared queue, as
// in asio::thread_pool, parks every idle worker on one condition variable:
// under the HTTP fuzzer, signalling it hung in glibc 2.36's
// pthread_cond_signal and took the event loop that posted with it.)
class HandlerPool {
 public:
  explicit HandlerPool(size_t threads) {
    for (size_t i = 0; i < std::max<size_t>(threads, 1); ++i) workers_.push_back(std::make_unique<Worker>());
    for (auto& w : workers_) w->thread = std::thread([p = w.get()] { p->ioc.run(); });
  }
  ~HandlerPool() { join(); }

  template <class Fn>
  void post(Fn&& fn) {
    Worker* best = workers_.front().get();
    for (auto& w : workers_) {
      if (w->busy.load() < best->busy.load()) best = w.get();
    }
    best->busy.fetch_add(1);
    asio::post(best->ioc, [best, fn = std::forward<Fn>(fn)]() mutable {
      fn();
      best->busy.fetch_sub(1);
    });
  }

  // Finishes queued handlers, then stops.
  void join() {
    for (auto& w : workers_) w->guard.reset();
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

 private:
  struct Worker {
    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
    std::atomic<int> busy{0};
    std::thread thread;
  };
  std::vector<std::unique_ptr<Worker>> workers_;
};

bool isBodyMethod(http::verb v) { return v == http::verb::post || v == http::verb::put || v == http::verb::patch; }

bool isQuietDisconnect(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == asio::error::broken_pipe;
}

}  // namespace

class HttpListener::Impl {
 public:
  Impl(HttpLimits limits, Handler handler, RejectionBody rejection_body)
      : limits_(limits),
        handler_(std::move(handler)),
        rejection_body_(std::move(rejection_body)),
        acceptor_(asio::make_strand(ioc_)),
        retry_timer_(acceptor_.get_executor()),
        blocking_(limits.blocking_threads) {}

  ~Impl() {
    stop();
    blocking_.join();
  }

  Status bind(const std::string& host, int port) {
    beast::error_code ec;
    auto address = asio::ip::make_address(host, ec);
    if (ec) return invalid("cannot listen on '" + printableExcerpt(host, 64) + "': not an IP address");
    tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return unavailable("cannot listen on " + host + ":" + std::to_string(port) + " (" + ec.message() +
                         "; in use? use --port)");
    }
    return {};
  }

  int port() const {
    beast::error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }

  Status enableTls(const std::string& cert_file, const std::string& key_file) {
    tls_.emplace(asio::ssl::context::tls_server);
    beast::error_code ec;
    // TLS 1.2 and 1.3 only; OpenSSL's defaults choose the ciphers.
    tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                      ec);
    if (!ec) tls_->use_certificate_chain_file(cert_file, ec);
    if (ec) return invalid("cannot load the TLS certificate " + cert_file + " (--tls-cert): " + ec.message());
    tls_->use_private_key_file(key_file, asio::ssl::context::pem, ec);
    if (ec) return invalid("cannot load the TLS key " + key_file + " (--tls-key): " + ec.message());
    return {};
  }

  void serve() {
    accept();
    std::vector<std::thread> threads;
    for (size_t i = 1; i < std::max<size_t>(limits_.io_threads, 1); ++i) threads.emplace_back([this] { ioc_.run(); });
    ioc_.run();
    for (auto& t : threads) t.join();
  }

  void stop() { ioc_.stop(); }

  HttpListenerStats stats() const {
    HttpListenerStats s;
    s.open_connections = open_.load();
    s.accepted_connections = accepted_.load();
    s.refused_connections = refused_.load();
    s.rejected_requests = rejected_.load();
    s.timed_out_connections = timed_out_.load();
    return s;
  }

  // Called by a connection as it closes.
  void release(const std::string& source) {
    open_.fetch_sub(1);
    std::lock_guard lock(sources_mu_);
    auto it = per_source_.find(source);
    if (it != per_source_.end() && --it->second == 0) per_source_.erase(it);
  }

  const HttpLimits& limits() const { return limits_; }
  const Handler& handler() const { return handler_; }
  const RejectionBody& rejectionBody() const { return rejection_body_; }
  HandlerPool& blockingPool() { return blocking_; }
  void countRejected() { rejected_.fetch_add(1); }
  void countTimedOut() { timed_out_.fetch_add(1); }

 private:
  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors (EMFILE/ENFILE) or memory: pause instead of
        // spinning on an accept that fails at once; the backlog waits.
        logAcceptError(ec);
        retry_timer_.expires_after(std::chrono::milliseconds(100));
        retry_timer_.async_wait([this](beast::error_code) { accept(); });
        return;
      }
      admit(std::move(socket));
      accept();
    });
  }

  void logAcceptError(const beast::error_code& ec) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_accept_log_ < std::chrono::seconds(10)) return;
    last_accept_log_ = now;
    logWarn("http_accept_failed", {{"error", ec.message()}});
  }

  void admit(tcp::socket socket);

  HttpLimits limits_;
  Handler handler_;
  RejectionBody rejection_body_;
  // Declared before the event loop: connections still queued in it release
  // their counts as it is destroyed.
  std::atomic<uint64_t> open_{0}, accepted_{0}, refused_{0}, rejected_{0}, timed_out_{0};
  std::mutex sources_mu_;
  std::map<std::string, size_t> per_source_;  // guarded by sources_mu_
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  std::chrono::steady_clock::time_point last_accept_log_{};
  HandlerPool blocking_;
  std::optional<asio::ssl::context> tls_;  // set before serving, then only read
};

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One client connection, over plain TCP or TLS: reads requests one at a time
// (pipelined bytes wait in the buffer), hands each to the handler and writes
// the answer in one go.
//
// A streamed answer (ApiResponse::on_stream) turns the connection into a
// ResponseStream: publishers queue bytes under out_mu_, and one write at a
// time drains the queue on the connection's strand; a read stays posted only
// to notice the client leaving. Nothing blocks a thread per stream.
template <class Stream>
class Connection : public std::enable_shared_from_this<Connection<Stream>>, public ResponseStream {
 public:
  template <class... TlsContext>
  Connection(HttpListener::Impl& owner, tcp::socket socket, std::string source, TlsContext&... tls)
      : owner_(owner),
        limits_(owner.limits()),
        stream_(std::move(socket), tls...),
        buffer_(limits_.max_header_bytes + limits_.max_body_bytes + 4096),
        source_(std::move(source)) {}

  ~Connection() { owner_.release(source_); }

  void start() {
    beast::error_code ec;
    // Responses go out in one write, but a client's next request must not
    // wait for a delayed ACK either way.
    lowest().socket().set_option(tcp::no_delay(true), ec);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      // The handshake is part of the head: the same deadline covers both.
      lowest().expires_after(limits_.head_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code e) {
        if (e) return self->drop(e);
        self->waitForRequest();
      });
    } else {
      waitForRequest();
    }
  }

 private:
  // Between requests a connection may sit idle for idle_timeout; the head's
  // own deadline starts with its first byte.
  void waitForRequest() {
    if (buffer_.size() > 0) return readHead();
    lowest().expires_after(limits_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->drop(ec);
      self->buffer_.commit(n);
      self->readHead();
    });
  }

  void readHead() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(limits_.max_header_bytes));
    parser_->body_limit(limits_.max_body_bytes);
    lowest().expires_after(limits_.head_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) { self->onHead(ec); });
  }

  void onHead(beast::error_code ec) {
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      return reject(431, "request head over " + std::to_string(limits_.max_header_bytes / 1024) + " KiB");
    }
    if (ec == http::error::body_limit) {  // the parser checks Content-Length against the limit itself
      return reject(413, "request body over " + std::to_string(limits_.max_body_bytes / 1024) + " KiB");
    }
    // On a deadline the stream has already closed the socket: nothing to answer on.
    if (ec == beast::error::timeout) return drop(ec);
    if (ec) {
      if (isQuietDisconnect(ec)) return drop(ec);
      return reject(400, "malformed HTTP request (" + ec.message() + ")");
    }
    const auto& req = parser_->get();
    size_t fields = 0;
    for (auto it = req.begin(); it != req.end(); ++it) ++fields;
    if (fields > limits_.max_header_count) {
      return reject(431, "more than " + std::to_string(limits_.max_header_count) + " header fields");
    }
    if (parser_->chunked()) {
      return reject(411, "chunked request bodies are not accepted; send a Content-Length (at most 64 KiB)");
    }
    const auto length = parser_->content_length();
    if (isBodyMethod(req.method()) && !length) {
      return reject(411, std::string(req.method_string()) +
                             " needs a Content-Length: send a JSON body, or '-d \"\"' / 'Content-Length: 0' for none");
    }
    if (length && *length > limits_.max_body_bytes) {
      return reject(413, "request body over " + std::to_string(limits_.max_body_bytes / 1024) + " KiB");
    }
    if (parser_->is_done()) return onBody({});
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      // curl sends Expect for bodies over 1 KiB and waits a second without this.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      lowest().expires_after(limits_.write_timeout);
      return asio::async_write(stream_, asio::buffer(kContinue),
                               [self = this->shared_from_this()](beast::error_code e, size_t) {
                                 if (e) return self->drop(e);
                                 self->readBody();
                               });
    }
    readBody();
  }

  void readBody() {
    lowest().expires_after(limits_.body_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->onBody(ec);
    });
  }

  void onBody(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return reject(413, "request body over " + std::to_string(limits_.max_body_bytes / 1024) + " KiB");
    }
    if (ec == beast::error::timeout) return drop(ec);
    if (ec) {
      if (isQuietDisconnect(ec)) return drop(ec);
      return reject(400, "malformed HTTP request body (" + ec.message() + ")");
    }
    auto req = parser_->release();
    keep_alive_ = req.keep_alive();
    ApiRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    if (auto st = parseTarget(request.target, &request.path, &request.params); !st.ok()) {
      return reject(400, st.error().message);
    }
    for (const auto& field : req) {
      std::string value(field.value());
      if (!isValidUtf8(value)) return reject(400, "a header value is not valid UTF-8");
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers.emplace_back(std::move(name), std::move(value));
    }
    request.body = std::move(req.body());
    if (!isValidUtf8(request.body)) return reject(400, "the request body is not valid UTF-8");
    request.remote_addr = source_;
    const bool inline_handler = limits_.run_inline && limits_.run_inline(request);
    auto run = [self = this->shared_from_this(), request = std::move(request)]() mutable {
      ApiResponse response;
      try {
        self->owner_.handler()(request, response);
      } catch (const std::exception& e) {
        logError("http_handler_threw", {{"error", printableExcerpt(e.what(), 200)}});
        response = {};
        self->owner_.rejectionBody()(500, "internal error while handling the request; see the daemon log", response);
      } catch (...) {
        response = {};
        self->owner_.rejectionBody()(500, "internal error while handling the request; see the daemon log", response);
      }
      // Back onto the connection's strand for the write.
      asio::dispatch(self->lowest().get_executor(),
                     [self, response = std::move(response)]() mutable { self->write(std::move(response)); });
    };
    if (inline_handler) {
      run();
    } else {
      owner_.blockingPool().post(std::move(run));
    }
  }

  void reject(int status, const std::string& message) {
    owner_.countRejected();
    keep_alive_ = false;
    ApiResponse response;
    owner_.rejectionBody()(status, message, response);
    write(std::move(response));
  }

  // Bytes a slow stream client may leave unread before it is cut off.
  static constexpr size_t kMaxStreamBacklog = 4 * 1024 * 1024;

 public:
  bool send(std::string bytes) override {
    std::lock_guard lock(out_mu_);
    if (stream_closed_) return false;
    if (pending_.size() + bytes.size() > kMaxStreamBacklog) {
      stream_closed_ = true;
      asio::post(lowest().get_executor(), [self = this->shared_from_this()] { self->close(); });
      return false;
    }
    pending_ += bytes;
    if (!writing_) {
      writing_ = true;
      asio::post(lowest().get_executor(), [self = this->shared_from_this()] { self->flush(); });
    }
    return true;
  }

  bool isOpen() const override {
    std::lock_guard lock(out_mu_);
    return !stream_closed_;
  }

  void end() override {
    {
      std::lock_guard lock(out_mu_);
      stream_closed_ = true;
    }
    asio::post(lowest().get_executor(), [self = this->shared_from_this()] { self->close(); });
  }

 private:
  void startStream(ApiResponse&& r) {
    keep_alive_ = false;
    std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " +
                       std::string(http::obsolete_reason(static_cast<http::status>(r.status))) +
                       "\r\nServer: sandman\r\n";
    if (!r.content_type.empty()) head += "Content-Type: " + r.content_type + "\r\n";
    for (auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
    // No length: the body runs until either side closes.
    head += "Connection: close\r\n\r\n";
    {
      std::lock_guard lock(out_mu_);
      pending_ = std::move(head);
      writing_ = true;
    }
    // The read only watches for the client leaving: it never times out,
    // while each write keeps its own deadline.
    lowest().expires_never();
    watchStreamClose();
    flush();
    auto on_stream = std::move(r.on_stream);
    on_stream(this->shared_from_this());
  }

  void watchStreamClose() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(1024), [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->markStreamClosed();
        return self->close();
      }
      self->watchStreamClose();  // a client has nothing to say on a stream: discarded
    });
  }

  void markStreamClosed() {
    std::lock_guard lock(out_mu_);
    stream_closed_ = true;
  }

  // On the strand; writing_ is set by whoever called.
  void flush() {
    {
      std::lock_guard lock(out_mu_);
      if (stream_closed_ || pending_.empty()) {
        writing_ = false;
        return;
      }
      in_flight_.swap(pending_);
      pending_.clear();
    }
    lowest().expires_after(limits_.write_timeout);
    asio::async_write(stream_, asio::buffer(in_flight_), [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->markStreamClosed();
        return self->drop(ec);
      }
      self->lowest().expires_never();
      self->flush();
    });
  }

  void write(ApiResponse&& r) {
    if (r.on_stream) return startStream(std::move(r));
    response_.emplace(static_cast<http::status>(r.status), 11);
    response_->set(http::field::server, "sandman");
    if (!r.content_type.empty()) response_->set(http::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) response_->set(name, value);
    response_->body() = std::move(r.body);
    response_->keep_alive(keep_alive_);
    response_->prepare_payload();
    lowest().expires_after(limits_.write_timeout);
    http::async_write(stream_, *response_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->drop(ec);
      if (!self->keep_alive_) return self->lingerClose();
      self->response_.reset();
      self->waitForRequest();
    });
  }

  void drop(const beast::error_code& ec) {
    if (ec == beast::error::timeout) owner_.countTimedOut();
    close();
  }

  // After a refusal the client may still be sending; closing with unread
  // bytes would reset the connection and could destroy our answer before the
  // client reads it. So: stop sending, discard what arrives for a moment, close.
  void lingerClose() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    buffer_.clear();
    lowest().expires_after(std::chrono::seconds(1));
    discard();
  }

  // At most 256 KiB or a second: a client that keeps sending is cut off.
  void discard() {
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](beast::error_code ec, size_t n) {
      self->buffer_.clear();
      self->discarded_ += n;
      if (ec || self->discarded_ > 256 * 1024) return self->close();
      self->discard();
    });
  }

  void close() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().close();
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  HttpListener::Impl& owner_;
  const HttpLimits& limits_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  bool keep_alive_ = false;
  size_t discarded_ = 0;
  std::string source_;
  mutable std::mutex out_mu_;
  std::string pending_;    // GUARDED_BY(out_mu_): queued stream bytes
  bool writing_ = false;   // GUARDED_BY(out_mu_): a flush is posted or in flight
  bool stream_closed_ = false;  // GUARDED_BY(out_mu_)
  std::string in_flight_;  // the strand's own: the bytes of the write in progress
};

}  // namespace

void HttpListener::Impl::admit(tcp::socket socket) {
  beast::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  std::string source = remote.address().to_string();
  bool over = open_.load() >= limits_.max_connections;
  if (!over) {
    std::lock_guard lock(sources_mu_);
    size_t& n = per_source_[source];
    if (n >= limits_.max_connections_per_source) {
      over = true;
      if (n == 0) per_source_.erase(source);
    } else {
      ++n;
    }
  }
  if (over) {
    // Closed at once: a capped client learns nothing it could wait on.
    refused_.fetch_add(1);
    socket.close(ec);
    return;
  }
  open_.fetch_add(1);
  accepted_.fetch_add(1);
  if (tls_) {
    std::make_shared<Connection<TlsStream>>(*this, std::move(socket), std::move(source), *tls_)->start();
  } else {
    std::make_shared<Connection<PlainStream>>(*this, std::move(socket), std::move(source))->start();
  }
}

HttpListener::HttpListener(HttpLimits limits, Handler handler, RejectionBody rejection_body)
    : impl_(std::make_unique<Impl>(limits, std::move(handler), std::move(rejection_body))) {}

HttpListener::~HttpListener() = default;

Status HttpListener::bind(const std::string& host, int port) { return impl_->bind(host, port); }
Status HttpListener::enableTls(const std::string& cert_file, const std::string& key_file) {
  return impl_->enableTls(cert_file, key_file);
}
int HttpListener::port() const { return impl_->port(); }
void HttpListener::serve() { impl_->serve(); }
void HttpListener::stop() { impl_->stop(); }
HttpListenerStats HttpListener::stats() const { return impl_->stats(); }

}  // namespace sandman
