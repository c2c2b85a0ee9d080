#include "gateway/relay_channel.h"

#include <libssh/server.h>

#include <algorithm>
#include <utility>

namespace sandman {

constexpr uint32_t kChunk = 64 * 1024;

// Static entry points that libssh calls; userdata is the RelayChannel.
struct RelayTrampolines {
  static RelayChannel* self(void* u) { return static_cast<RelayChannel*>(u); }
  static int data(ssh_session, ssh_channel ch, void* d, uint32_t len, int is_stderr, void* u) {
    return self(u)->onData(ch, static_cast<const char*>(d), len, is_stderr != 0);
  }
  static void eof(ssh_session, ssh_channel ch, void* u) { self(u)->onEof(ch); }
  static void close(ssh_session, ssh_channel ch, void* u) { self(u)->onClose(ch); }
  static void exitStatus(ssh_session, ssh_channel, int st, void* u) { self(u)->onExitStatus(st); }
  static void exitSignal(ssh_session, ssh_channel, const char* sig, int core, const char* msg,
                         const char* lang, void* u) {
    self(u)->onExitSignal(sig, core, msg, lang);
  }
  static int wontBlock(ssh_session, ssh_channel, uint32_t, void* u) {
    self(u)->onWontBlock();
    return 0;
  }
  static int pty(ssh_session, ssh_channel, const char* term, int w, int h, int pw, int ph, void* u) {
    return self(u)->onPty(term, w, h, pw, ph);
  }
  static int winch(ssh_session, ssh_channel, int w, int h, int pw, int ph, void* u) {
    return self(u)->onWindowChange(w, h, pw, ph);
  }
  static int shell(ssh_session, ssh_channel, void* u) {
    return self(u)->onStart(RelayChannel::Request::kStart,
                            [](ssh_channel c) { return ssh_channel_request_shell(c); }, true);
  }
  static int exec(ssh_session, ssh_channel, const char* command, void* u) {
    std::string cmd = command ? command : "";
    return self(u)->onStart(
        RelayChannel::Request::kStart,
        [cmd](ssh_channel c) { return ssh_channel_request_exec(c, cmd.c_str()); }, false);
  }
  static int subsystem(ssh_session, ssh_channel, const char* name, void* u) {
    std::string sub = name ? name : "";
    return self(u)->onStart(
        RelayChannel::Request::kStart,
        [sub](ssh_channel c) { return ssh_channel_request_subsystem(c, sub.c_str()); }, false);
  }
  static int env(ssh_session, ssh_channel, const char* n, const char* v, void* u) {
    return self(u)->onEnv(n, v);
  }
  static void signal(ssh_session, ssh_channel, const char* sig, void* u) { self(u)->onSignal(sig); }
  static void agent(ssh_session, ssh_channel, void* u) { self(u)->onAgentRequest(); }
};

RelayChannel::RelayChannel(Kind kind, ssh_channel down, RelayHost& host, Forward forward)
    : kind_(kind), host_(host), forward_(std::move(forward)), down_(down) {
  down_cb_.userdata = this;
  down_cb_.channel_data_function = RelayTrampolines::data;
  down_cb_.channel_eof_function = RelayTrampolines::eof;
  down_cb_.channel_close_function = RelayTrampolines::close;
  down_cb_.channel_write_wontblock_function = RelayTrampolines::wontBlock;
  if (kind_ == Kind::kSession) {
    down_cb_.channel_signal_function = RelayTrampolines::signal;
    down_cb_.channel_pty_request_function = RelayTrampolines::pty;
    down_cb_.channel_pty_window_change_function = RelayTrampolines::winch;
    down_cb_.channel_shell_request_function = RelayTrampolines::shell;
    down_cb_.channel_exec_request_function = RelayTrampolines::exec;
    down_cb_.channel_subsystem_request_function = RelayTrampolines::subsystem;
    down_cb_.channel_env_request_function = RelayTrampolines::env;
    down_cb_.channel_auth_agent_req_function = RelayTrampolines::agent;
  }
  ssh_callbacks_init(&down_cb_);
  ssh_set_channel_callbacks(down_, &down_cb_);
}

RelayChannel::RelayChannel(Kind kind, ssh_channel up, ssh_channel down_new, RelayHost& host, Forward forward)
    : kind_(kind), host_(host), forward_(std::move(forward)), down_(down_new), up_(up) {
  // Only bytes, EOF and close flow on an agent or forwarded-tcpip channel.
  down_cb_.userdata = this;
  down_cb_.channel_data_function = RelayTrampolines::data;
  down_cb_.channel_eof_function = RelayTrampolines::eof;
  down_cb_.channel_close_function = RelayTrampolines::close;
  down_cb_.channel_write_wontblock_function = RelayTrampolines::wontBlock;
  ssh_callbacks_init(&down_cb_);
  ssh_set_channel_callbacks(down_, &down_cb_);
  registerUp();
  std::function<int(ssh_channel)> open;
  if (kind_ == Kind::kAgent) {
    open = [](ssh_channel c) { return ssh_channel_open_auth_agent(c); };
  } else {
    Forward f = forward_;
    open = [f](ssh_channel c) {
      return ssh_channel_open_reverse_forward(c, f.host.c_str(), f.port, f.originator.c_str(), f.originator_port);
    };
  }
  // Opened from the pump, never from the libssh callback that handed us `up`:
  // that one is confirmed only after the callback returns.
  requests_.push_back({Request::kOpen, std::move(open)});
  opening_ = true;
  host_.relayDirty();
}

RelayChannel::~RelayChannel() {
  // Pitfall 4: a later CLOSE from a peer must not reach freed userdata.
  ssh_remove_channel_callbacks(down_, &down_cb_);
  ssh_channel_free(down_);
  if (up_ != nullptr) {
    ssh_remove_channel_callbacks(up_, &up_cb_);
    ssh_channel_free(up_);
  }
}

void RelayChannel::attachUpstream(ssh_session up) {
  if (up_ != nullptr || failed_ || down_closed_) return;
  up_ = ssh_channel_new(up);
  if (up_ == nullptr) {
    fail("sandman: cannot open a channel to the session");
    return;
  }
  registerUp();
  std::function<int(ssh_channel)> open;
  if (kind_ == Kind::kSession) {
    open = [](ssh_channel c) { return ssh_channel_open_session(c); };
  } else {
    Forward f = forward_;
    open = [f](ssh_channel c) {
      return ssh_channel_open_forward(c, f.host.c_str(), f.port, f.originator.c_str(), f.originator_port);
    };
  }
  requests_.push_front({Request::kOpen, std::move(open)});
  opening_ = true;
  host_.relayDirty();
}

void RelayChannel::registerUp() {
  up_cb_.userdata = this;
  up_cb_.channel_data_function = RelayTrampolines::data;
  up_cb_.channel_eof_function = RelayTrampolines::eof;
  up_cb_.channel_close_function = RelayTrampolines::close;
  if (kind_ == Kind::kSession) {
    up_cb_.channel_exit_status_function = RelayTrampolines::exitStatus;
    up_cb_.channel_exit_signal_function = RelayTrampolines::exitSignal;
  }
  up_cb_.channel_write_wontblock_function = RelayTrampolines::wontBlock;
  ssh_callbacks_init(&up_cb_);
  ssh_set_channel_callbacks(up_, &up_cb_);
}

void RelayChannel::fail(const std::string& message) {
  if (failed_) return;
  failed_ = true;
  failure_ = message;
  dropRequests();
  host_.relayDirty();
}

void RelayChannel::writeLine(const std::string& line) {
  if (down_closed_ || line.empty()) return;
  std::string text = line + (has_pty_ ? "\r\n" : "\n");
  ssh_channel_write_stderr(down_, text.data(), static_cast<uint32_t>(text.size()));
}

void RelayChannel::notify(const std::string& line) {
  if (interactive()) writeLine(line);
}

void RelayChannel::shutdown(const std::string& line) {
  // The reason a connection ends reaches every started session channel, exec
  // included: nothing more comes on that stderr anyway.
  if (kind_ == Kind::kSession && start_requested_) writeLine(line);
  dropRequests();
  closeBoth();
  host_.relayDirty();
}

// ---- callbacks: record and queue; the pump does the rest ----

int RelayChannel::onData(ssh_channel ch, const char* data, uint32_t len, bool is_stderr) {
  if (ch == down_) {
    if (failed_) return static_cast<int>(len);  // a failed relay discards input
    if (!canSendUp() || !carry_up_.empty()) {
      // Before the upstream start, or behind carried bytes that must go
      // first: libssh keeps these until the pump reads them.
      held_up_ = true;
      if (canSendUp()) host_.relayDirty();
      return 0;
    }
    uint32_t n = writeTo(up_, data, std::min(len, ssh_channel_window_size(up_)), false);
    host_.relayBytes(n, 0);
    held_up_ = n < len;
    // The rest waits for the session's window. libssh calls no callback when
    // that window reopens, so the loop must keep pumping this relay after
    // every poll (busy()) until it drains; without this wake-up it went
    // unpumped until the next packet arrived, up to a keepalive (30 s) later.
    if (held_up_) host_.relayDirty();
    return static_cast<int>(n);
  }
  int idx = is_stderr ? 1 : 0;
  if (down_closed_) return static_cast<int>(len);
  // Reversed: the client has not confirmed the twin yet; or carried bytes
  // must go first. libssh keeps these until the pump reads them.
  if (!downReady() || !carry_down_[idx].empty()) {
    held_down_[idx] = true;
    if (downReady()) host_.relayDirty();
    return 0;
  }
  uint32_t n = writeTo(down_, data, std::min(len, ssh_channel_window_size(down_)), is_stderr);
  host_.relayBytes(0, n);
  held_down_[idx] = n < len;
  if (held_down_[idx]) host_.relayDirty();  // as above, for the client's window
  return static_cast<int>(n);
}

void RelayChannel::onEof(ssh_channel ch) {
  if (ch == down_) {
    to_session_.push_back(Control::of(Control::kEof));
  } else {
    to_client_.push_back(Control::of(Control::kEof));
  }
  host_.relayDirty();
}

void RelayChannel::onClose(ssh_channel ch) {
  if (ch == down_) {
    to_session_.push_back(Control::of(Control::kClose));
  } else {
    to_client_.push_back(Control::of(Control::kClose));
  }
  host_.relayDirty();
}

void RelayChannel::onExitStatus(int status) {
  Control c = Control::of(Control::kExitStatus);
  c.status = status;
  to_client_.push_back(std::move(c));
  host_.relayDirty();
}

void RelayChannel::onExitSignal(const char* sig, int core, const char* errmsg, const char* lang) {
  Control c = Control::of(Control::kExitSignal);
  c.signal = sig ? sig : "KILL";
  c.core = core != 0;
  c.errmsg = errmsg ? errmsg : "";
  c.lang = lang ? lang : "";
  to_client_.push_back(std::move(c));
  host_.relayDirty();
}

void RelayChannel::onWontBlock() {
  if (pendingUp() || pendingDown()) host_.relayDirty();
}

int RelayChannel::onPty(const char* term, int cols, int rows, int, int) {
  has_pty_ = true;
  std::string t = term ? term : "xterm";
  queue(Request::kOptional,
        [t, cols, rows](ssh_channel c) { return ssh_channel_request_pty_size(c, t.c_str(), cols, rows); });
  return 0;
}

int RelayChannel::onWindowChange(int cols, int rows, int, int) {
  queue(Request::kOptional, [cols, rows](ssh_channel c) { return ssh_channel_change_pty_size(c, cols, rows); });
  return 0;
}

// `shell`: an interactive login. Only shells get the banner and the expiry
// warnings; exec, scp, sftp and rsync keep their stderr exactly as sent.
int RelayChannel::onStart(Request::Type type, std::function<int(ssh_channel)> send, bool shell) {
  if (start_requested_) return -1;
  start_requested_ = true;
  shell_ = shell;
  if (shell) banner_ = host_.takeLoginBanner();
  queue(type, std::move(send));
  return 0;  // pitfall 1: accepted now; a later upstream failure closes
}

int RelayChannel::onEnv(const char* name, const char* value) {
  std::string n = name ? name : "", v = value ? value : "";
  queue(Request::kOptional, [n, v](ssh_channel c) { return ssh_channel_request_env(c, n.c_str(), v.c_str()); });
  return 0;
}

void RelayChannel::onSignal(const char* sig) {
  std::string s = sig ? sig : "";
  queue(Request::kOptional, [s](ssh_channel c) { return ssh_channel_request_send_signal(c, s.c_str()); });
}

// Replayed in order with the other requests, so the session's sshd knows of
// the agent before the shell or command starts (it sets SSH_AUTH_SOCK then).
void RelayChannel::onAgentRequest() {
  if (host_.agentForwardingAllowed()) {
    queue(Request::kOptional, [](ssh_channel c) { return ssh_channel_request_auth_agent(c); });
    return;
  }
  host_.relayNotice(
      "sandman: agent forwarding (-A) is not available through this gateway; "
      "ask your admin to enable --allow-agent-forwarding");
}

void RelayChannel::queue(Request::Type type, std::function<int(ssh_channel)> send) {
  if (failed_ || down_closed_) {
    host_.relayDirty();
    return;
  }
  requests_.push_back({type, std::move(send)});
  host_.relayDirty();
}

// ---- the pump ----

// Keeps only an open in flight: its answer decides whether to close it.
void RelayChannel::dropRequests() {
  if (opening_ && !requests_.empty() && requests_.front().type == Request::kOpen) {
    requests_.erase(requests_.begin() + 1, requests_.end());
  } else {
    requests_.clear();
  }
}

void RelayChannel::pump() {
  writeBanner();
  runRequests();
  if (failed_) {
    deliverFailure();
    return;
  }
  drainToSession();
  drainToClient(false);
  drainToClient(true);
  runControls();
}

void RelayChannel::writeBanner() {
  if (banner_.empty()) return;
  writeLine(banner_);
  banner_.clear();
}

// Pitfall 2: one request in flight at a time, re-sent until it is answered.
void RelayChannel::runRequests() {
  while (opened() != nullptr && !requests_.empty() && !openedClosed()) {
    Request& r = requests_.front();
    int rc = r.send(opened());
    if (rc == SSH_AGAIN) return;
    Request::Type type = r.type;
    requests_.pop_front();
    if (type == Request::kOpen) {
      opening_ = false;
      if (rc != SSH_OK) {
        // pitfall 3: never close a channel that did not open
        (reversed() ? down_closed_ : up_closed_) = true;
        fail("sandman: the session refused the channel");
        if (kind_ != Kind::kSession) closeBoth();
        return;
      }
      if (close_when_open_) {
        closeBoth();
        return;
      }
      if (kind_ != Kind::kSession) started_ = true;
    } else if (type == Request::kStart) {
      if (rc != SSH_OK) {
        fail("sandman: the session refused the request");
        return;
      }
      started_ = true;
    }
  }
}

void RelayChannel::deliverFailure() {
  if (kind_ != Kind::kSession) {
    closeBoth();
    return;
  }
  if (!start_requested_ || failure_delivered_ || down_closed_) return;
  failure_delivered_ = true;
  writeLine(failure_);
  ssh_channel_request_send_exit_status(down_, 1);
  ssh_channel_send_eof(down_);
  closeBoth();
}

uint32_t RelayChannel::writeTo(ssh_channel dst, const char* data, uint32_t len, bool is_stderr) {
  if (len == 0) return 0;
  int n = is_stderr ? ssh_channel_write_stderr(dst, data, len) : ssh_channel_write(dst, data, len);
  return n > 0 ? static_cast<uint32_t>(n) : 0;
}

// Moves data libssh kept in the source channel (the data callback took less
// than it was offered) once the destination's window has room again.
void RelayChannel::drainToSession() {
  if (up_closed_) carry_up_.clear();  // nowhere left to deliver it
  // Queued EOF/close always came after this data: drain it first (typed-ahead
  // input and `cmd < file` arrive before the upstream shell/exec is answered).
  if (!canSendUp() || up_closed_) return;
  drain(down_, up_, false, held_up_, carry_up_, true);
}

void RelayChannel::drainToClient(bool is_stderr) {
  const int idx = is_stderr ? 1 : 0;
  if (down_closed_) carry_down_[idx].clear();
  if (up_ == nullptr || !downReady()) return;
  drain(up_, down_, is_stderr, held_down_[idx], carry_down_[idx], false);
}

// One direction: the carry first, then what libssh kept in `src`, read only
// into the carry so that nothing newer (a data callback run from inside a
// libssh call) can overtake it, and taken out of the carry only as far as
// `dst` accepted it.
void RelayChannel::drain(ssh_channel src, ssh_channel dst, bool is_stderr, bool& held, std::string& carry,
                         bool to_session) {
  const int stream = is_stderr ? 1 : 0;
  for (;;) {
    if (carry.empty()) {
      if (!held) return;
      // Polling an empty buffer runs libssh's packet loop, which may call
      // this relay's data callback, and that writes into dst's window: the
      // room is read only afterwards (sizing it first was the bug that read
      // more than the window, then dropped what the write refused).
      int avail = ssh_channel_poll(src, stream);
      if (avail <= 0) {
        held = false;  // libssh's buffer is empty (or the channel is at EOF)
        return;
      }
      uint32_t room = std::min({ssh_channel_window_size(dst), kChunk, static_cast<uint32_t>(avail)});
      if (room == 0) return;
      carry.resize(room);
      int n = ssh_channel_read_nonblocking(src, carry.data(), room, stream);
      carry.resize(n > 0 ? static_cast<size_t>(n) : 0);
      if (n <= 0) {
        held = false;
        return;
      }
    }
    uint32_t len = std::min(static_cast<uint32_t>(carry.size()), ssh_channel_window_size(dst));
    if (len == 0) return;  // the pump retries after the next poll (busy())
    uint32_t w = writeTo(dst, carry.data(), len, is_stderr);
    if (to_session) {
      host_.relayBytes(w, 0);
    } else {
      host_.relayBytes(0, w);
    }
    carry.erase(0, w);
    if (w < len) return;  // refused during a key re-exchange: kept, retried
  }
}

void RelayChannel::runControls() {
  // Reversed relays hold EOF/close for the client until its twin is open.
  while (!to_client_.empty() && !pendingDown() && (down_closed_ || downReady())) {
    Control c = std::move(to_client_.front());
    to_client_.pop_front();
    if (down_closed_) continue;
    switch (c.type) {
      case Control::kEof: ssh_channel_send_eof(down_); break;
      case Control::kExitStatus: ssh_channel_request_send_exit_status(down_, c.status); break;
      case Control::kExitSignal:
        ssh_channel_request_send_exit_signal(down_, c.signal.c_str(), c.core ? 1 : 0, c.errmsg.c_str(),
                                             c.lang.c_str());
        break;
      case Control::kClose: closeBoth(); break;
    }
  }
  while (!to_session_.empty() && (!pendingUp() || !canSendUp())) {
    Control& c = to_session_.front();
    if (c.type == Control::kEof) {
      if (!canSendUp()) return;  // EOF waits for the upstream start (and its data)
      if (!up_closed_) ssh_channel_send_eof(up_);
    } else if (c.type == Control::kClose) {
      closeBoth();
    }
    to_session_.pop_front();
  }
}

void RelayChannel::closeBoth() {
  if (reversed()) {
    // `up` was handed to us open; `down` is ours and closed only once its
    // open was answered (pitfall 3).
    if (!up_closed_) {
      up_closed_ = true;
      ssh_channel_close(up_);
    }
    if (down_closed_) return;
    if (opening_) {
      close_when_open_ = true;
      return;
    }
    down_closed_ = true;
    if (ssh_channel_is_open(down_)) ssh_channel_close(down_);
    return;
  }
  if (!down_closed_) {
    down_closed_ = true;
    ssh_channel_close(down_);
  }
  if (up_ == nullptr || up_closed_) return;
  if (opening_) {
    close_when_open_ = true;  // closed once the open is answered
    return;
  }
  up_closed_ = true;
  if (ssh_channel_is_open(up_)) ssh_channel_close(up_);
}

// libssh reports no window adjust, so a direction held back by a zero window
// is retried after each poll until it drains (only relays moving data).
bool RelayChannel::busy() const {
  bool waiting_request = opened() != nullptr && !requests_.empty() && !openedClosed();
  bool held_up = pendingUp() && canSendUp() && !up_closed_;
  bool held_down = pendingDown() && !down_closed_;
  return waiting_request || close_when_open_ || held_up || held_down;
}

bool RelayChannel::finished() const {
  return down_closed_ && (up_ == nullptr || up_closed_) && !opening_;
}

}  // namespace sandman
