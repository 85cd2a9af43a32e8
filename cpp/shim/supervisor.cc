#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../spawn-core.h"
#include "../syscalls.h"
#include "attach.h"
#include "plan-wire.h"

namespace nsbox {
namespace {

// A line longer than this is logged in pieces (docker's json-file does the same at 16 KiB).
constexpr size_t kMaxLine = 16 * 1024;
// A container that ran this long before exiting restarts without the backoff it had built up.
constexpr long long kResetBackoffMs = 10000;

long long NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

// RFC 3339 with nanoseconds, UTC: what docker's logs and inspect show.
std::string Timestamp() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

// temp + fsync + rename: a reader sees the old file or the new one, never a part.
void WriteAtomic(int dir, const char* name, const std::string& data) {
  std::string tmp = std::string(".") + name + ".tmp";
  UniqueFd fd(openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return;
  if (write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()) || fdatasync(fd.get()) < 0) {
    unlinkat(dir, tmp.c_str(), 0);
    return;
  }
  fd.reset();
  renameat(dir, tmp.c_str(), dir, name);
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : std::to_string(sig);
}

}  // namespace

std::string ErrorJson(const std::string& message, int err, const std::string& syscall, const std::string& path) {
  std::string o = "{\"error\":{\"message\":" + JsonQuote(message);
  if (err != 0) o += ",\"code\":" + JsonQuote(ErrnoName(err)) + ",\"errno\":" + std::to_string(err);
  if (!syscall.empty()) o += ",\"syscall\":" + JsonQuote(syscall);
  if (!path.empty()) o += ",\"path\":" + JsonQuote(path);
  return o + "}}";
}

bool ParseRestart(const std::string& s, RestartPolicy* p) {
  *p = RestartPolicy();
  if (s.empty() || s == "no") return true;
  if (s == "always") p->kind = RestartPolicy::kAlways;
  else if (s == "unless-stopped") p->kind = RestartPolicy::kUnlessStopped;
  else if (s.compare(0, 10, "on-failure") == 0) {
    p->kind = RestartPolicy::kOnFailure;
    if (s.size() == 10) return true;
    if (s[10] != ':' || s.size() == 11 || s.size() > 20) return false;
    for (size_t i = 11; i < s.size(); i++) {
      if (s[i] < '0' || s[i] > '9') return false;
    }
    p->max_retries = atoi(s.c_str() + 11);
  } else {
    return false;
  }
  return true;
}

Supervisor::Supervisor(UniqueFd dir, ShimConfig cfg, UniqueFd report)
    : dir_(std::move(dir)), cfg_(std::move(cfg)), report_(std::move(report)) {
  for (size_t i = 0; i < cfg_.plan.ops.size(); i++) {
    if (cfg_.plan.ops[i].kind == OpKind::kBind && cfg_.plan.ops[i].a == kConsolePlaceholder) console_ops_.push_back(i);
  }
}

void Supervisor::Watch(int fd, unsigned events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0 && errno == EEXIST) {
    epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
  }
}

void Supervisor::Unwatch(int fd) { epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

void Supervisor::Report(bool ok, const std::string& json) {
  if (!report_.valid()) return;
  std::string msg = (ok ? "0" : "1") + json + "\n";
  if (write(report_.get(), msg.data(), msg.size()) < 0) {
  }
  report_.reset();
}

bool Supervisor::Setup(std::string* err) {
  auto fail = [&](const char* what) {
    *err = ErrorJson(std::string("nsbox-shim: ") + what + ": " + ErrnoName(errno) + " (" + strerror(errno) + ")", errno, what, "");
    return false;
  };
  // Orphans of the container (processes it left behind without a pid namespace) become ours to reap.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return fail("prctl");
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP}) sigaddset(&set, sig);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) < 0) return fail("sigprocmask");
  signal(SIGPIPE, SIG_IGN);  // a client that went away is an EPIPE, not our death
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) return fail("epoll_create1");
  signal_fd_.reset(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_.valid()) return fail("signalfd");
  timer_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer_.valid()) return fail("timerfd_create");
  log_.reset(openat(dir_.get(), "container.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  if (!log_.valid()) return fail("open container.log");
  listen_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_.valid()) return fail("socket");
  // Bound by a relative name from inside the bundle: sun_path holds 108 bytes, a bundle path may not.
  unlinkat(dir_.get(), "attach.sock", 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, "attach.sock", sizeof "attach.sock");
  if (fchdir(dir_.get()) < 0) return fail("fchdir");
  int r = bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int bind_err = errno;
  if (chdir("/") < 0) {
  }
  errno = bind_err;
  if (r < 0) return fail("bind attach.sock");
  fchmodat(dir_.get(), "attach.sock", 0600, 0);
  if (listen(listen_.get(), 16) < 0) return fail("listen");
  for (int fd : {signal_fd_.get(), timer_.get(), listen_.get()}) Watch(fd, EPOLLIN);
  WriteAtomic(dir_.get(), "shim.pid", std::to_string(getpid()) + "\n");
  return true;
}

int Supervisor::Run() {
  std::string err;
  if (!Setup(&err)) {
    Report(false, err);
    unlinkat(dir_.get(), "attach.sock", 0);
    unlinkat(dir_.get(), "shim.pid", 0);
    return 1;
  }
  if (!StartContainer()) {
    // Nothing to supervise: clean up first, so that the caller finds nothing of ours once told.
    WriteState("exited");
    listen_.reset();
    unlinkat(dir_.get(), "attach.sock", 0);
    unlinkat(dir_.get(), "shim.pid", 0);
    Report(false, start_error_);
    return 1;
  }
  Report(true, "{\"shimPid\":" + std::to_string(getpid()) + ",\"pid\":" + std::to_string(pid_) + "}");
  epoll_event events[16];
  while (!done_) {
    int n = epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < n && !done_; i++) OnEvent(events[i].data.fd, events[i].events);
  }
  if (cfg_.await_attach_ms > 0 && !attached_) Linger();
  CloseClients();
  listen_.reset();
  unlinkat(dir_.get(), "attach.sock", 0);
  unlinkat(dir_.get(), "shim.pid", 0);
  return 0;
}

bool Supervisor::OpenPty(UniqueFd* slave) {
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  char path[128];
  if (!master.valid() || grantpt(master.get()) < 0 || unlockpt(master.get()) < 0 ||
      ptsname_r(master.get(), path, sizeof path) != 0) {
    start_error_ = ErrorJson("nsbox-shim: open a pseudo-terminal", errno, "posix_openpt", "/dev/ptmx");
    return false;
  }
  winsize ws{};
  ws.ws_col = cfg_.cols;
  ws.ws_row = cfg_.rows;
  ioctl(master.get(), TIOCSWINSZ, &ws);
  slave->reset(open(path, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave->valid()) {
    start_error_ = ErrorJson(std::string("nsbox-shim: open ") + path, errno, "open", path);
    return false;
  }
  for (size_t i : console_ops_) cfg_.plan.ops[i].a = path;
  // Output and input share the master; each direction keeps its own fd (and epoll entry).
  out_.fd.reset(fcntl(master.get(), F_DUPFD_CLOEXEC, 3));
  stdin_w_.reset(fcntl(master.get(), F_DUPFD_CLOEXEC, 3));
  fcntl(master.get(), F_SETFL, O_NONBLOCK);  // the file description: all three fds
  pty_master_ = std::move(master);
  return out_.fd.valid() && stdin_w_.valid();
}

bool Supervisor::StartContainer() {
  stdin_pending_.clear();
  stdin_eof_ = false;
  UniqueFd slave, out_w, err_w, in_r;
  if (cfg_.tty) {
    if (!OpenPty(&slave)) return false;
    for (int i = 0; i < 3; i++) cfg_.plan.stdio[i] = slave.get();
    cfg_.plan.ctty = true;
  } else {
    int out[2], errp[2], in[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) < 0) {
      start_error_ = ErrorJson("nsbox-shim: pipe2", errno, "pipe2", "");
      return false;
    }
    out_w.reset(out[1]);
    out_.fd.reset(out[0]);
    if (pipe2(errp, O_CLOEXEC) < 0) {
      start_error_ = ErrorJson("nsbox-shim: pipe2", errno, "pipe2", "");
      out_.fd.reset();
      return false;
    }
    err_w.reset(errp[1]);
    err_.fd.reset(errp[0]);
    if (cfg_.open_stdin && pipe2(in, O_CLOEXEC) == 0) {
      in_r.reset(in[0]);
      stdin_w_.reset(in[1]);
      fcntl(stdin_w_.get(), F_SETFL, O_NONBLOCK);
    } else {
      in_r.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
    }
    for (int fd : {out_.fd.get(), err_.fd.get()}) fcntl(fd, F_SETFL, O_NONBLOCK);
    cfg_.plan.stdio[0] = in_r.get();
    cfg_.plan.stdio[1] = out_w.get();
    cfg_.plan.stdio[2] = err_w.get();
  }
  Spawned spawned;
  SpawnFailure fail;
  bool ok = SpawnProcess(cfg_.plan, &spawned, &fail);
  if (!ok) {
    out_.fd.reset();
    err_.fd.reset();
    stdin_w_.reset();
    pty_master_.reset();
    start_error_ = ErrorJson(fail.Message(), fail.err, fail.syscall, fail.path);
    if (!report_.valid()) {
      // A restart that could not start: recorded as an exit, with the reason.
      std::string exit = "{\"exitCode\":127,\"signal\":null,\"finishedAt\":\"" + Timestamp() +
                         "\",\"error\":" + JsonQuote(fail.Message()) + "}";
      WriteAtomic(dir_.get(), "exit.json", exit + "\n");
    }
    return false;
  }
  pid_ = spawned.pid;
  pidfd_ = std::move(spawned.pidfd);
  started_at_ = Timestamp();
  started_ms_ = NowMs();
  Watch(pidfd_.get(), EPOLLIN);
  for (int fd : {out_.fd.get(), err_.fd.get()}) {
    if (fd >= 0) Watch(fd, EPOLLIN);
  }
  WriteState("running");
  return true;
}

void Supervisor::WriteState(const char* status) {
  std::string s = std::string("{\"status\":\"") + status + "\",\"pid\":" + std::to_string(pid_) +
                  ",\"shimPid\":" + std::to_string(getpid()) + ",\"restartCount\":" + std::to_string(restarts_) +
                  ",\"startedAt\":" + (started_at_.empty() ? "null" : "\"" + started_at_ + "\"") + "}\n";
  WriteAtomic(dir_.get(), "state.json", s);
}

void Supervisor::OnEvent(int fd, unsigned events) {
  if (fd == signal_fd_.get()) return OnSignal();
  if (fd == timer_.get()) return OnTimer();
  if (fd == listen_.get()) return Accept();
  if (pidfd_.valid() && fd == pidfd_.get()) return ReapChildren();
  if (out_.fd.valid() && fd == out_.fd.get()) return ReadStream(&out_, false);
  if (err_.fd.valid() && fd == err_.fd.get()) return ReadStream(&err_, false);
  if (stdin_w_.valid() && fd == stdin_w_.get()) return FlushStdin();
  for (size_t i = 0; i < clients_.size(); i++) {
    if (clients_[i].fd.get() == fd) return OnClient(i, events);
  }
}

void Supervisor::OnSignal() {
  signalfd_siginfo si;
  while (read(signal_fd_.get(), &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGCHLD) ReapChildren();
    else if (si.ssi_signo != SIGHUP) Stop();
  }
}

void Supervisor::ReapChildren() {
  for (;;) {
    siginfo_t info{};
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0 || info.si_pid == 0) return;
    if (pidfd_.valid() && info.si_pid == pid_) {
      siginfo_t st{};
      if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &st, WEXITED | __WALL) < 0) return;
      OnContainerExit(st);
      if (done_) return;
    } else {
      waitpid(info.si_pid, nullptr, WNOHANG | __WALL);
    }
  }
}

void Supervisor::OnContainerExit(const siginfo_t& info) {
  Unwatch(pidfd_.get());
  pidfd_.reset();
  pid_ = 0;
  // The exited process's output is in the pipes already: take it all before recording the exit.
  // (A descendant that keeps a pipe open, outside a pid namespace, is not waited for.)
  ReadStream(&out_, true);
  ReadStream(&err_, true);
  if (stdin_w_.valid()) {
    Unwatch(stdin_w_.get());
    stdin_w_.reset();
  }
  pty_master_.reset();
  bool exited = info.si_code == CLD_EXITED;
  std::string exit = std::string("{\"exitCode\":") + (exited ? std::to_string(info.si_status) : "null") +
                     ",\"signal\":" + (exited ? "null" : "\"" + SignalName(info.si_status) + "\"") +
                     ",\"finishedAt\":\"" + Timestamp() + "\"}";
  WriteAtomic(dir_.get(), "exit.json", exit + "\n");
  Broadcast(attach::kExit, exit.data(), exit.size());
  AfterRun(!exited || info.si_status != 0);
}

void Supervisor::AfterRun(bool failed) {
  bool again = false;
  switch (cfg_.restart.kind) {
    case RestartPolicy::kNo: break;
    case RestartPolicy::kOnFailure:
      again = failed && (cfg_.restart.max_retries == 0 || restarts_ < cfg_.restart.max_retries);
      break;
    // The two differ only for an engine coming back up (a stopped container stays stopped): here
    // the shim itself stops either one for good on SIGTERM.
    case RestartPolicy::kAlways:
    case RestartPolicy::kUnlessStopped: again = true; break;
  }
  if (stopping_ || !again) {
    WriteState(stopping_ ? "stopped" : "exited");
    done_ = true;
    return;
  }
  // Docker's backoff: 100 ms, doubling up to a minute; reset after a run of 10 s or more.
  if (NowMs() - started_ms_ >= kResetBackoffMs) backoff_ms_ = 0;
  backoff_ms_ = backoff_ms_ == 0 ? 100 : (backoff_ms_ * 2 > 60000 ? 60000 : backoff_ms_ * 2);
  restarting_ = true;
  WriteState("restarting");
  ArmTimer(backoff_ms_);
}

void Supervisor::ArmTimer(long ms) {
  itimerspec its{};
  its.it_value.tv_sec = ms / 1000;
  its.it_value.tv_nsec = (ms % 1000) * 1000000;
  timerfd_settime(timer_.get(), 0, &its, nullptr);
}

void Supervisor::OnTimer() {
  uint64_t expirations;
  if (read(timer_.get(), &expirations, sizeof expirations) != sizeof expirations) return;
  if (restarting_) {
    restarting_ = false;
    restarts_++;
    if (!StartContainer()) {
      // Counted as a failed run (exit.json has the reason); the policy decides about the next one.
      started_ms_ = NowMs();
      AfterRun(true);
    }
    return;
  }
  // The stop timeout ran out.
  if (stopping_ && pidfd_.valid()) sys_pidfd_send_signal(pidfd_.get(), SIGKILL);
}

void Supervisor::Stop() {
  if (stopping_) return;
  stopping_ = true;
  if (restarting_) {
    restarting_ = false;
    ArmTimer(0);  // disarms
    WriteState("stopped");
    done_ = true;
    return;
  }
  if (!pidfd_.valid()) {
    done_ = true;
    return;
  }
  sys_pidfd_send_signal(pidfd_.get(), cfg_.stop_signal);
  ArmTimer(cfg_.stop_timeout_ms > 0 ? cfg_.stop_timeout_ms : 1);
}

void Supervisor::ReadStream(Stream* s, bool drain) {
  if (!s->fd.valid()) return;
  char buf[65536];
  for (;;) {
    ssize_t n = read(s->fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      Broadcast(s->frame, buf, static_cast<size_t>(n));
      const char* p = buf;
      const char* end = buf + n;
      while (p < end) {
        const char* nl = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
        size_t take = nl != nullptr ? static_cast<size_t>(nl - p) + 1 : static_cast<size_t>(end - p);
        if (kMaxLine - s->partial.size() < take) take = kMaxLine - s->partial.size();
        s->partial.append(p, take);
        p += take;
        if (s->partial.back() == '\n' || s->partial.size() >= kMaxLine) {
          LogLine(*s, s->partial.data(), s->partial.size());
          s->partial.clear();
        }
      }
      if (static_cast<size_t>(n) == sizeof buf || drain) continue;
      return;
    }
    if (n < 0 && errno == EAGAIN && !drain) return;
    // EOF, an error, or (draining) nothing more for now: the stream is finished for this run.
    if (!s->partial.empty()) LogLine(*s, s->partial.data(), s->partial.size());
    s->partial.clear();
    Unwatch(s->fd.get());
    s->fd.reset();
    return;
  }
}

void Supervisor::LogLine(const Stream& s, const char* data, size_t len) {
  std::string line = "{\"log\":" + JsonQuote(std::string(data, len)) + ",\"stream\":\"" + s.name +
                     "\",\"time\":\"" + Timestamp() + "\"}\n";
  if (write(log_.get(), line.data(), line.size()) < 0) {
  }
}

void Supervisor::Broadcast(int type, const char* data, size_t len) {
  if (!attached_ && early_.size() + attach::kHeader + len <= attach::kMaxPending) {
    const unsigned char h[attach::kHeader] = {static_cast<unsigned char>(type), static_cast<unsigned char>(len >> 24),
                                              static_cast<unsigned char>(len >> 16), static_cast<unsigned char>(len >> 8),
                                              static_cast<unsigned char>(len)};
    early_.append(reinterpret_cast<const char*>(h), sizeof h);
    early_.append(data, len);
  }
  for (size_t i = clients_.size(); i-- > 0;) {
    SendFrame(&clients_[i], type, data, len);
    if (clients_[i].pending.size() > attach::kMaxPending) DropClient(i);
  }
}

void Supervisor::SendFrame(Client* c, int type, const char* data, size_t len) {
  unsigned char h[attach::kHeader] = {static_cast<unsigned char>(type), static_cast<unsigned char>(len >> 24),
                                      static_cast<unsigned char>(len >> 16), static_cast<unsigned char>(len >> 8),
                                      static_cast<unsigned char>(len)};
  size_t sent = 0;
  if (c->pending.empty()) {
    iovec iov[2] = {{h, sizeof h}, {const_cast<char*>(data), len}};
    ssize_t n = writev(c->fd.get(), iov, 2);
    if (n < 0 && errno != EAGAIN) {
      c->pending.assign(attach::kMaxPending + 1, '\0');  // broken: dropped by the caller
      return;
    }
    sent = n < 0 ? 0 : static_cast<size_t>(n);
    if (sent == sizeof h + len) return;
    Watch(c->fd.get(), EPOLLIN | EPOLLOUT);
  }
  std::string frame(reinterpret_cast<char*>(h), sizeof h);
  frame.append(data, len);
  c->pending.append(frame, sent, std::string::npos);
}

void Supervisor::Accept() {
  for (;;) {
    int fd = accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    clients_.push_back(Client{UniqueFd(fd), {}, {}, false});
    if (!attached_ && !early_.empty()) {
      clients_.back().pending.swap(early_);
      Watch(fd, EPOLLIN | EPOLLOUT);
    } else {
      Watch(fd, EPOLLIN);
    }
    attached_ = true;
    early_.clear();
  }
}

// Ends each client's stream once its output is all sent, then waits (2 s at most) for it to hang
// up, reading and dropping what it still sends. Closing with input unread, or before the client has
// stopped writing, would reset the connection, and the client could lose the output it had not
// read yet (the end of a short run).
void Supervisor::CloseClients() {
  long long deadline = NowMs() + 2000;
  epoll_event events[16];
  for (;;) {
    for (Client& c : clients_) {
      if (!c.shut && c.pending.empty()) {
        shutdown(c.fd.get(), SHUT_WR);
        c.shut = true;
        Watch(c.fd.get(), EPOLLIN);
      }
    }
    long long left = deadline - NowMs();
    if (clients_.empty() || left <= 0) break;
    int n = epoll_wait(epoll_.get(), events, 16, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int k = 0; k < n; k++) {
      int fd = events[k].data.fd;
      size_t i = 0;
      while (i < clients_.size() && clients_[i].fd.get() != fd) i++;
      if (i == clients_.size()) {
        OnEvent(fd, events[k].events);
        continue;
      }
      Client& c = clients_[i];
      if ((events[k].events & EPOLLOUT) && !c.pending.empty()) {
        ssize_t w = write(c.fd.get(), c.pending.data(), c.pending.size());
        if (w < 0 && errno != EAGAIN) {
          DropClient(i);
          continue;
        }
        if (w > 0) c.pending.erase(0, static_cast<size_t>(w));
      }
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        char buf[4096];
        ssize_t r;
        while ((r = read(c.fd.get(), buf, sizeof buf)) > 0) {
        }
        if (r == 0 || (r < 0 && errno != EAGAIN)) DropClient(i);
      }
    }
  }
  clients_.clear();
}

void Supervisor::Linger() {
  long long deadline = NowMs() + cfg_.await_attach_ms;
  epoll_event events[16];
  for (;;) {
    bool flushed = true;
    for (const Client& c : clients_) flushed = flushed && c.pending.empty();
    if ((attached_ && flushed) || stopping_) return;
    long long left = deadline - NowMs();
    if (left <= 0) return;
    int n = epoll_wait(epoll_.get(), events, 16, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    for (int i = 0; i < n; i++) OnEvent(events[i].data.fd, events[i].events);
  }
}

void Supervisor::DropClient(size_t i) {
  Unwatch(clients_[i].fd.get());
  clients_.erase(clients_.begin() + static_cast<long>(i));
}

void Supervisor::OnClient(size_t i, unsigned events) {
  Client* c = &clients_[i];
  if (events & EPOLLOUT) {
    ssize_t n = write(c->fd.get(), c->pending.data(), c->pending.size());
    if (n < 0 && errno != EAGAIN) return DropClient(i);
    if (n > 0) c->pending.erase(0, static_cast<size_t>(n));
    if (c->pending.empty()) Watch(c->fd.get(), EPOLLIN);
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    char buf[65536];
    ssize_t n = read(c->fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) return DropClient(i);
    c->in.append(buf, static_cast<size_t>(n));
    while (c->in.size() >= attach::kHeader) {
      const auto* h = reinterpret_cast<const unsigned char*>(c->in.data());
      uint32_t len = (static_cast<uint32_t>(h[1]) << 24) | (h[2] << 16) | (h[3] << 8) | h[4];
      if (len > attach::kMaxPayload) return DropClient(i);
      if (c->in.size() < attach::kHeader + len) break;
      int type = h[0];
      std::string payload = c->in.substr(attach::kHeader, len);
      c->in.erase(0, attach::kHeader + len);
      HandleFrame(type, payload);
      c = &clients_[i];  // HandleFrame does not touch clients_, but stay safe if it ever does
    }
  }
}

void Supervisor::HandleFrame(int type, const std::string& payload) {
  if (type == attach::kStdin) WriteStdin(payload.data(), payload.size());
  else if (type == attach::kCloseStdin) CloseStdin();
  else if (type == attach::kResize && payload.size() == 4 && pty_master_.valid()) {
    const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
    winsize ws{};
    ws.ws_col = static_cast<unsigned short>((p[0] << 8) | p[1]);
    ws.ws_row = static_cast<unsigned short>((p[2] << 8) | p[3]);
    ioctl(pty_master_.get(), TIOCSWINSZ, &ws);  // the container gets SIGWINCH
  }
  // Unknown types are ignored, for forward compatibility.
}

void Supervisor::WriteStdin(const char* data, size_t len) {
  if (!stdin_w_.valid() || stdin_eof_) return;
  if (stdin_pending_.empty()) {
    ssize_t n = write(stdin_w_.get(), data, len);
    if (n < 0 && errno != EAGAIN) {
      Unwatch(stdin_w_.get());
      stdin_w_.reset();  // the container closed its stdin
      return;
    }
    size_t sent = n < 0 ? 0 : static_cast<size_t>(n);
    if (sent == len) return;
    data += sent;
    len -= sent;
    Watch(stdin_w_.get(), EPOLLOUT);
  }
  if (stdin_pending_.size() + len <= attach::kMaxPending) stdin_pending_.append(data, len);
}

void Supervisor::FlushStdin() {
  ssize_t n = write(stdin_w_.get(), stdin_pending_.data(), stdin_pending_.size());
  if (n < 0 && errno == EAGAIN) return;
  if (n < 0) stdin_pending_.clear();
  else stdin_pending_.erase(0, static_cast<size_t>(n));
  if (!stdin_pending_.empty() && n >= 0) return;
  Unwatch(stdin_w_.get());
  if (n < 0 || stdin_eof_) stdin_w_.reset();
}

void Supervisor::CloseStdin() {
  if (!stdin_w_.valid()) return;
  if (pty_master_.valid()) return WriteStdin("\x04", 1);  // a terminal's EOF is its VEOF character
  stdin_eof_ = true;
  if (stdin_pending_.empty()) stdin_w_.reset();
}

}  // namespace nsbox
