// RelayChannel: one client channel (a session or a direct-tcpip forward) of
// the gateway and its twin channel on the session's sshd, or the reverse: a
// channel the session's sshd opened (forwarded agent, remote forward) and its
// twin the relay opens to the client. Requests are
// replayed upstream in order (libssh serialises them), data is relayed within
// the peer's window and never dropped on short writes, and EOF / exit status /
// close follow the data of their direction. Used by the event-loop thread
// only (not thread-safe); every libssh call happens outside callbacks or is a
// write that cannot block.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

namespace sandman {

// What a relay needs from the connection that owns it.
class RelayHost {
 public:
  virtual ~RelayHost() = default;
  virtual void relayDirty() = 0;  // pump this relay soon (outside callbacks)
  virtual void relayBytes(uint64_t to_session, uint64_t to_client) = 0;
  virtual std::string takeLoginBanner() = 0;  // non-empty once per connection
  virtual void relayNotice(const std::string& line) = 0;  // refused feature
  virtual bool agentForwardingAllowed() const = 0;  // --allow-agent-forwarding
};

class RelayChannel {
 public:
  // kSession, kDirectTcpip: the client opened the channel, the relay opens
  // its twin upstream. kAgent, kForwardedTcpip: the session's sshd opened it,
  // the relay opens its twin to the client (reversed).
  enum class Kind { kSession, kDirectTcpip, kAgent, kForwardedTcpip };
  struct Forward {
    std::string host;
    int port = 0;
    std::string originator;
    int originator_port = 0;
  };

  // Takes `down` (an open channel of the client's session) and registers the
  // relay's callbacks on it.
  RelayChannel(Kind kind, ssh_channel down, RelayHost& host, Forward forward);
  // Reversed kinds: takes `up` (a channel the session's sshd opened; it may
  // be confirmed only after this returns) and `down_new` (ssh_channel_new of
  // the client's session), which the pump opens. For kForwardedTcpip,
  // `forward` is the listen address/port as the client asked for it and the
  // originator; kAgent ignores it.
  RelayChannel(Kind kind, ssh_channel up, ssh_channel down_new, RelayHost& host, Forward forward);
  ~RelayChannel();  // removes the callbacks, then frees both channels
  RelayChannel(const RelayChannel&) = delete;
  RelayChannel& operator=(const RelayChannel&) = delete;

  // The upstream session is ready: open the twin channel and replay requests.
  void attachUpstream(ssh_session up);
  // There is no upstream: a session channel tells the client `message` on
  // stderr and exits 1 once it asks for a shell/exec/subsystem.
  void fail(const std::string& message);
  // One line on stderr of a started shell/exec channel (warnings).
  void notify(const std::string& line);
  // One line on stderr, then both channels are closed.
  void shutdown(const std::string& line);

  void pump();
  bool busy() const;      // waits on an upstream reply: pump after every poll
  bool finished() const;  // both channels closed by us: safe to delete
  bool interactive() const { return kind_ == Kind::kSession && shell_ && !down_closed_; }

 private:
  struct Request {
    enum Type { kOpen, kStart, kOptional } type;
    std::function<int(ssh_channel)> send;
  };
  struct Control {
    enum Type { kEof, kExitStatus, kExitSignal, kClose } type = kEof;
    static Control of(Type t) {
      Control c;
      c.type = t;
      return c;
    }
    int status = 0;
    std::string signal, errmsg, lang;
    bool core = false;
  };

  // Callbacks (trampolines in the .cc call these).
  int onData(ssh_channel ch, const char* data, uint32_t len, bool is_stderr);
  void onEof(ssh_channel ch);
  void onClose(ssh_channel ch);
  void onExitStatus(int status);
  void onExitSignal(const char* sig, int core, const char* errmsg, const char* lang);
  void onWontBlock();
  int onPty(const char* term, int cols, int rows, int px, int py);
  int onWindowChange(int cols, int rows, int px, int py);
  int onStart(Request::Type type, std::function<int(ssh_channel)> send, bool shell);
  int onEnv(const char* name, const char* value);
  void onSignal(const char* sig);
  void onAgentRequest();
  friend struct RelayTrampolines;

  void queue(Request::Type type, std::function<int(ssh_channel)> send);
  void runRequests();
  void dropRequests();
  void writeBanner();
  void deliverFailure();
  void drainToSession();
  void drainToClient(bool is_stderr);
  void drain(ssh_channel src, ssh_channel dst, bool is_stderr, bool& held, std::string& carry, bool to_session);
  uint32_t writeTo(ssh_channel dst, const char* data, uint32_t len, bool is_stderr);
  bool pendingUp() const { return held_up_ || !carry_up_.empty(); }
  bool pendingDown() const {
    return held_down_[0] || held_down_[1] || !carry_down_[0].empty() || !carry_down_[1].empty();
  }
  void registerUp();
  bool reversed() const { return kind_ == Kind::kAgent || kind_ == Kind::kForwardedTcpip; }
  // The channel this relay opens (up for client-opened kinds, down for
  // reversed ones) and whether it is closed for good.
  ssh_channel opened() const { return reversed() ? down_ : up_; }
  bool openedClosed() const { return reversed() ? down_closed_ : up_closed_; }
  bool downReady() const { return !down_closed_ && (!reversed() || started_); }
  void runControls();
  void closeBoth();
  void writeLine(const std::string& line);
  bool canSendUp() const { return up_ != nullptr && started_ && !failed_; }

  Kind kind_;
  RelayHost& host_;
  Forward forward_;
  ssh_channel down_;
  ssh_channel up_ = nullptr;
  ssh_channel_callbacks_struct down_cb_{};
  ssh_channel_callbacks_struct up_cb_{};

  std::deque<Request> requests_;
  bool opening_ = false;  // the open of opened() is in flight
  bool start_requested_ = false;
  bool shell_ = false;  // a shell request (not exec/subsystem)
  bool started_ = false;
  bool has_pty_ = false;
  bool failed_ = false;
  bool failure_delivered_ = false;
  std::string failure_;
  std::string banner_;

  // libssh may still hold bytes of this direction in the source channel's
  // buffer (the data callback took less than it was offered). A flag, not a
  // count: libssh can re-enter the data callback from inside a read or a
  // write of the pump, and a count kept beside libssh's buffer drifted below
  // it, leaving bytes nobody drained while both windows stayed shut (the old
  // 30-60 s upload stall). The pump reads until libssh says the buffer is
  // empty, so the buffer itself is the only count.
  bool held_up_ = false;           // client -> session
  bool held_down_[2] = {};         // session -> client: stdout, stderr
  // Bytes the pump read out of libssh that the destination did not take
  // (its write came back short: a key re-exchange in progress, or a window
  // used up by a data callback that libssh ran from inside the read). They
  // go out before anything newer of their direction; dropping them lost
  // data mid-stream (scp -O stalled short of its size, uploads came out
  // with a different checksum).
  std::string carry_up_;
  std::string carry_down_[2];
  std::deque<Control> to_session_;  // after held_up_ and carry_up_
  std::deque<Control> to_client_;   // after held_down_ and carry_down_
  bool down_closed_ = false;
  bool up_closed_ = false;
  bool close_when_open_ = false;
};

}  // namespace sandman
