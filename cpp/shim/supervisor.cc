#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../spawn-core.h"
#include "../syscalls.h"
#include "attach.h"
#include "bundle-files.h"
#include "plan-wire.h"

namespace nsbox {
namespace {

// v1 tells of an OOM before its kill: look at the count again this often, this many times.
constexpr int kOomRecheckMs = 20;
constexpr int kOomRechecks = 10;

}  // namespace

Supervisor::Supervisor(UniqueFd dir, ShimConfig cfg, UniqueFd report)
    : dir_(std::move(dir)), cfg_(std::move(cfg)), report_(std::move(report)), health_(std::move(cfg_.health)) {
  for (size_t i = 0; i < cfg_.plan.ops.size(); i++) {
    if (cfg_.plan.ops[i].kind == OpKind::kBind && cfg_.plan.ops[i].source == kConsolePlaceholder) console_ops_.push_back(i);
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
  std::string msg = (cfg_.bare_report ? std::string() : std::string(ok ? "0" : "1")) + json + "\n";
  // The caller that waits for it may be gone: then nobody is told, and nothing is lost.
  if (write(report_.get(), msg.data(), msg.size()) < 0) {
  }
  report_.reset();
}

bool Supervisor::Setup(std::string* err) {
  auto fail = [&](const char* what) {
    *err = bundle::ErrorJson(std::string("nsbox-shim: ") + what + ": " + ErrnoName(errno) + " (" + strerror(errno) + ")", errno, what, "");
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
  if (!log_.Open(dir_.get())) return fail("open container.log");
  if (!Listen(bundle::kAttach, &listen_, err) || !Listen(bundle::kEvents, &events_listen_, err)) return false;
  for (int fd : {signal_fd_.get(), timer_.get(), listen_.get(), events_listen_.get()}) Watch(fd, EPOLLIN);
  if (!health_.Setup(epoll_.get(), dir_.get())) return fail("health timerfd");
  std::string what;
  if (!proxy_.Setup(epoll_.get(), cfg_.proxies, cfg_.proxy_target, &what)) return fail(what.c_str());
  oom_.Open(cfg_.plan);
  if (oom_.fd() >= 0) Watch(oom_.fd(), EPOLLIN);
  // Not fsynced, as state.json: both describe processes that a reboot ends, and a kill -9 of the
  // shim leaves the renamed file in the page cache for the engine to read.
  bundle::WriteAtomic(dir_.get(), bundle::kShimPid, std::to_string(getpid()) + "\n", false);
  return true;
}

void Supervisor::RemoveSockets() {
  listen_.reset();
  events_listen_.reset();
  unlinkat(dir_.get(), bundle::kAttach, 0);
  unlinkat(dir_.get(), bundle::kEvents, 0);
}

int Supervisor::Run() {
  std::string err;
  if (!Setup(&err)) {
    Report(false, err);
    RemoveSockets();
    unlinkat(dir_.get(), bundle::kShimPid, 0);
    return 1;
  }
  if (!StartContainer()) {
    // Nothing to supervise: clean up first, so that the caller finds nothing of ours once told.
    SetState("exited");
    RemoveSockets();
    unlinkat(dir_.get(), bundle::kShimPid, 0);
    Report(false, start_error_);
    return 1;
  }
  // Our start time (the pid's identity: process-start-time.ts) and the container's, so that the
  // caller need not read them back from /proc and state.json.
  std::string start_time = bundle::SelfStartTime();
  Report(true, "{\"shimPid\":" + std::to_string(getpid()) + ",\"pid\":" + std::to_string(pid_) + (start_time.empty() ? "" : ",\"shimStartTime\":" + start_time) +
                   ",\"startedAt\":\"" + started_at_ + "\"}");
  Loop();
  if (cfg_.await_attach_ms > 0 && !attached_) Linger();
  // Done with the container and the client it waited for: the bundle is the engine's from here,
  // before our clients are let go (which waits for each to close, up to 2 s): shim.pid gone says
  // so (an auto-removal goes on from it, shim-control.ts's shimDone), and a new shim started in
  // the bundle meanwhile keeps its own sockets.
  RemoveSockets();
  unlinkat(dir_.get(), bundle::kShimPid, 0);
  CloseClients();
  return 0;
}

void Supervisor::Loop() {
  epoll_event events[16];
  while (!done_) {
    int n = epoll_wait(epoll_.get(), events, 16, oom_rechecks_ > 0 ? kOomRecheckMs : -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (n == 0 && oom_rechecks_ > 0) {
      oom_rechecks_--;
      CheckOom();
    }
    for (int i = 0; i < n && !done_; i++) OnEvent(events[i].data.fd, events[i].events);
  }
}

void Supervisor::SetState(const char* status) {
  state_ = bundle::StateJson(status, pid_, restarts_, started_at_);
  // Not fsynced: after a reboot the shim is gone, and then only exit.json says anything (reconcile).
  bundle::WriteAtomic(dir_.get(), bundle::kState, state_ + "\n", false);
  Event("{\"type\":\"state\"," + state_.substr(1));
}

void Supervisor::OnEvent(int fd, unsigned events) {
  if (fd == signal_fd_.get()) return OnSignal();
  if (fd == timer_.get()) return OnTimer();
  if (fd == listen_.get()) return Accept(fd, false);
  if (fd == events_listen_.get()) return Accept(fd, true);
  if (fd == oom_.fd()) {
    oom_.Drain();
    long long seen = oom_seen_;
    CheckOom();
    if (oom_seen_ == seen && oom_.NotifiesEarly()) oom_rechecks_ = kOomRechecks;
    return;
  }
  if (pidfd_.valid() && fd == pidfd_.get()) return ReapChildren();
  if (health_.Owns(fd)) return Event(health_.OnFd(fd));
  if (proxy_.OnEvent(fd, events)) return;
  if (out_.fd.valid() && fd == out_.fd.get()) return ReadStream(&out_, false);
  if (err_.fd.valid() && fd == err_.fd.get()) return ReadStream(&err_, false);
  if (stdin_w_.valid() && fd == stdin_w_.get()) return FlushStdin();
  for (size_t i = 0; i < clients_.size(); i++) {
    if (clients_[i].fd.get() == fd) return OnClient(i, events);
  }
}

void Supervisor::CheckOom() {
  long long kills = oom_.Count() - oom_base_;
  if (kills <= oom_seen_) return;
  oom_seen_ = kills;
  oom_rechecks_ = 0;
  Event("{\"type\":\"oom\",\"oomKills\":" + std::to_string(kills) + "}");
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
    } else if (health_.IsProbe(info.si_pid)) {
      Event(health_.Reap());
    } else {
      // pasta that ended by itself: reaped here, so its pid is not ours to signal any more
      if (info.si_pid == net_helper_) net_helper_ = 0;
      waitpid(info.si_pid, nullptr, WNOHANG | __WALL);
    }
  }
}

void Supervisor::OnContainerExit(const siginfo_t& info) {
  Unwatch(pidfd_.get());
  pidfd_.reset();
  pid_ = 0;
  health_.OnStop();
  // The exited process's output is in the pipes already: take it all before recording the exit.
  // (A descendant that keeps a pipe open, outside a pid namespace, is not waited for.)
  ReadStream(&out_, true);
  ReadStream(&err_, true);
  if (stdin_w_.valid()) {
    Unwatch(stdin_w_.get());
    stdin_w_.reset();
  }
  pty_master_.reset();
  // Its network namespace is gone with it: its pasta goes now, and its host ports with it (a
  // restart's pasta binds them again; pasta would outlive the namespace it serves otherwise).
  EndNetHelper(cfg_.plan, net_helper_);
  net_helper_ = 0;
  // The kill is counted before its SIGKILL is sent: by now the count has it.
  CheckOom();
  std::string exit = bundle::ExitJson(info.si_code, info.si_status, oom_seen_ > 0);
  bundle::WriteAtomic(dir_.get(), bundle::kExit, exit + "\n");
  Broadcast(attach::kExit, exit.data(), exit.size());
  Event("{\"type\":\"exit\"," + exit.substr(1));
  AfterRun(info.si_code != CLD_EXITED || info.si_status != 0);
}

void Supervisor::AfterRun(bool failed) {
  if (stopping_ || !ShouldRestart(cfg_.restart, failed, restarts_)) {
    SetState(stopping_ ? "stopped" : "exited");
    done_ = true;
    return;
  }
  backoff_ms_ = NextBackoffMs(backoff_ms_, MonotonicMs() - started_ms_);
  restarting_ = true;
  SetState("restarting");
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
      started_ms_ = MonotonicMs();
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
    SetState("stopped");
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

void Supervisor::ReadStream(OutputStream* s, bool drain) {
  if (!s->fd.valid()) return;
  char buf[65536];
  for (;;) {
    ssize_t n = read(s->fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      Broadcast(s->frame, buf, static_cast<size_t>(n));
      log_.Append(s, buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) == sizeof buf || drain) continue;
      return;
    }
    if (n < 0 && errno == EAGAIN && !drain) return;
    // EOF, an error, or (draining) nothing more for now: the stream is finished for this run.
    log_.Flush(s);
    Unwatch(s->fd.get());
    s->fd.reset();
    return;
  }
}

}  // namespace nsbox
