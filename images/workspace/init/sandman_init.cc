// sandman-init: PID 1 of a session container. Runs the command after "--"
// (sshd) under it, restarts it whenever it exits, reaps every orphan, and
// ignores signals sent from inside the container, so that the session's user
// (same uid, no capabilities) cannot end the session by killing sshd or PID 1.
// Docker's stop signals come from outside the pid namespace and are obeyed.
// Built static and bind-mounted read-only, so it needs nothing from the image.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {

constexpr long kMinBackoffMs = 100;
constexpr long kMaxBackoffMs = 5000;
constexpr long kHealthyRunMs = 10000;  // a child that ran this long resets the back-off
constexpr int kStopGraceSeconds = 8;

long nowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void say(const char* fmt, long a = 0, long b = 0) {
  std::fprintf(stderr, "sandman-init: ");
  std::fprintf(stderr, fmt, a, b);
  std::fprintf(stderr, "\n");
}

// Forks and execs argv with the signal mask cleared. Returns the pid, or -1
// with *exec_errno set when exec failed (reported through a close-on-exec pipe).
pid_t spawn(char** argv, int* exec_errno) {
  *exec_errno = 0;
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setsid();
    execvp(argv[0], argv);
    int e = errno;
    (void)!write(report[1], &e, sizeof e);
    _exit(127);
  }
  close(report[1]);
  if (pid > 0) {
    int e = 0;
    ssize_t n;
    do n = read(report[0], &e, sizeof e); while (n < 0 && errno == EINTR);
    if (n == sizeof e) {
      *exec_errno = e;
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  close(report[0]);
  return pid;
}

// From outside the container (docker stop / kill): kill(2) by a process this
// pid namespace cannot see arrives with si_pid 0. Anything inside has a pid
// here, and sigqueue-style senders cannot claim SI_USER.
bool fromOutside(const siginfo_t& info) { return info.si_code == SI_USER && info.si_pid == 0; }

struct State {
  char** argv;
  pid_t child = -1;
  long started_ms = 0;
  long backoff_ms = kMinBackoffMs;
  long restart_at_ms = -1;  // >= 0: start the child again at this time
  bool stopping = false;
  long stop_deadline_ms = 0;
};

void startChild(State& s, bool first) {
  int err = 0;
  s.child = spawn(s.argv, &err);
  s.started_ms = nowMs();
  s.restart_at_ms = -1;
  if (s.child > 0) return;
  if (first) {
    std::fprintf(stderr, "sandman-init: cannot run %s: %s\n", s.argv[0], std::strerror(err));
    _exit(127);  // the image lacks the command: end the container so the cause shows
  }
  s.restart_at_ms = nowMs() + s.backoff_ms;
  s.backoff_ms = s.backoff_ms * 2 > kMaxBackoffMs ? kMaxBackoffMs : s.backoff_ms * 2;
}

void reap(State& s) {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid != s.child) continue;  // an orphan: reaped, nothing else to do
    s.child = -1;
    if (s.stopping) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 0);
    long ran = nowMs() - s.started_ms;
    if (ran >= kHealthyRunMs) s.backoff_ms = kMinBackoffMs;
    say("child exited after %ld ms; restarting in %ld ms", ran, s.backoff_ms);
    s.restart_at_ms = nowMs() + s.backoff_ms;
    s.backoff_ms = s.backoff_ms * 2 > kMaxBackoffMs ? kMaxBackoffMs : s.backoff_ms * 2;
  }
}

void onSignal(State& s, const siginfo_t& info) {
  int sig = info.si_signo;
  if (sig == SIGCHLD) return reap(s);
  if (!fromOutside(info)) {
    say("ignored signal %ld from pid %ld inside the container", sig, info.si_pid);
    return;
  }
  if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
    if (s.child <= 0) _exit(0);
    s.stopping = true;
    s.stop_deadline_ms = nowMs() + kStopGraceSeconds * 1000L;
  }
  if (s.child > 0) kill(s.child, sig);  // SIGHUP and friends: for the child to act on
}

}  // namespace

int main(int argc, char** argv) {
  int first = 1;
  if (argc > 1 && std::strcmp(argv[1], "--") == 0) first = 2;
  if (first >= argc) {
    std::fprintf(stderr, "usage: sandman-init -- COMMAND [ARGS...]\n");
    return 2;
  }
  // Not dumpable: a same-uid process cannot ptrace PID 1 or write its memory.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Orphans of the command (its sessions, once the listener dies) are ours to reap.
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, nullptr);  // every signal is read below, none runs a handler

  State s;
  s.argv = argv + first;
  startChild(s, /*first=*/true);
  for (;;) {
    long wait_ms = 1000;
    if (s.restart_at_ms >= 0) wait_ms = s.restart_at_ms - nowMs();
    if (s.stopping) wait_ms = s.stop_deadline_ms - nowMs();
    if (wait_ms < 0) wait_ms = 0;
    timespec timeout{wait_ms / 1000, (wait_ms % 1000) * 1000000};
    siginfo_t info{};
    int sig = sigtimedwait(&all, &info, &timeout);
    if (sig > 0) onSignal(s, info);
    if (s.stopping && nowMs() >= s.stop_deadline_ms) {
      if (s.child > 0) kill(s.child, SIGKILL);
      _exit(0);
    }
    if (!s.stopping && s.child < 0 && s.restart_at_ms >= 0 && nowMs() >= s.restart_at_ms) {
      startChild(s, /*first=*/false);
    }
  }
}
