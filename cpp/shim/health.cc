#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../plan-parse.h"
#include "../spawn-core.h"
#include "../syscalls.h"
#include "bundle-files.h"
#include "supervisor.h"

namespace nsbox {
namespace {

// docker's maxOutputLen and maxLogEntries.
constexpr size_t kMaxOutput = 4096;
constexpr size_t kMaxLog = 5;

// Go's time.Duration String() for whole milliseconds ("100ms", "1.5s", "1m30s"), as docker's
// timeout message prints the timeout.
std::string GoDuration(long ms) {
  if (ms == 0) return "0s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::string out;
  long h = ms / 3600000, m = ms / 60000 % 60;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  long s = ms / 1000 % 60, frac = ms % 1000;
  out += std::to_string(s);
  if (frac != 0) {
    char buf[8];
    snprintf(buf, sizeof buf, ".%03ld", frac);
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "s";
}

}  // namespace

bool ParseHealth(const WireValue& root, HealthConfig* cfg, std::string* err) {
  const WireValue* h = root.Field("healthcheck");
  if (h == nullptr || h->type != 'o') return true;
  const WireValue* plan = h->Field("plan");
  if (plan == nullptr || plan->type != 'o') {
    *err = "healthcheck has no plan";
    return false;
  }
  if (!ParsePlan(WireSource{}, *plan, &cfg->plan, err)) {
    *err = "healthcheck: " + *err;
    return false;
  }
  WireSource src;
  cfg->interval_ms = static_cast<long>(src.Num(*h, "interval", 30000));
  cfg->timeout_ms = static_cast<long>(src.Num(*h, "timeout", 30000));
  cfg->start_period_ms = static_cast<long>(src.Num(*h, "startPeriod", 0));
  cfg->start_interval_ms = static_cast<long>(src.Num(*h, "startInterval", 5000));
  cfg->retries = static_cast<int>(src.Num(*h, "retries", 3));
  cfg->freeze_file = src.Str(*h, "freezeFile");
  cfg->log = src.StrList(*h, "log");
  if (cfg->interval_ms <= 0 || cfg->timeout_ms <= 0 || cfg->start_interval_ms <= 0 || cfg->start_period_ms < 0 || cfg->retries <= 0) {
    *err = "healthcheck: intervals, timeout and retries must be positive";
    return false;
  }
  cfg->enabled = true;
  return true;
}

bool HealthRunner::Setup(int epoll, int dir) {
  if (!cfg_.enabled) return true;
  epoll_ = epoll;
  dir_ = dir;
  for (const std::string& e : cfg_.log) log_.push_back(e);
  while (log_.size() > kMaxLog) log_.pop_front();
  timer_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer_.valid()) return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = timer_.get();
  return epoll_ctl(epoll_, EPOLL_CTL_ADD, timer_.get(), &ev) == 0;
}

void HealthRunner::Arm(long ms) {
  itimerspec its{};
  its.it_value.tv_sec = ms / 1000;
  its.it_value.tv_nsec = (ms % 1000) * 1000000;
  timerfd_settime(timer_.get(), 0, &its, nullptr);
}

void HealthRunner::Write() {
  std::string o = "{\"Status\":\"" + status_ + "\",\"FailingStreak\":" + std::to_string(failing_streak_) + ",\"Log\":[";
  for (size_t i = 0; i < log_.size(); i++) o += (i ? "," : "") + log_[i];
  // Rewritten at every probe: not fsynced (it describes processes a reboot ends anyway).
  bundle::WriteAtomic(dir_, bundle::kHealth, o + "]}\n", false);
}

std::string HealthRunner::OnStart(int container_pidfd, long long started_ms) {
  if (!cfg_.enabled) return "";
  container_pidfd_ = container_pidfd;
  started_ms_ = started_ms;
  status_ = "starting";
  failing_streak_ = 0;
  Write();
  // docker's getInterval(): the start interval only while starting within the start period.
  Arm(cfg_.start_period_ms > 0 ? cfg_.start_interval_ms : cfg_.interval_ms);
  return "{\"type\":\"health\",\"status\":\"starting\",\"failingStreak\":0}";
}

void HealthRunner::OnStop() {
  if (!cfg_.enabled || status_.empty()) return;
  Arm(0);
  if (pid_ != 0) {
    // Its own process group (setsid): whatever it started goes with it.
    kill(-pid_, SIGKILL);
    sys_pidfd_send_signal(pidfd_.get(), SIGKILL);
    siginfo_t st{};
    while (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &st, WEXITED | __WALL) < 0 && errno == EINTR) {
    }
    pid_ = 0;
    pidfd_.reset();
    if (out_.valid()) epoll_ctl(epoll_, EPOLL_CTL_DEL, out_.get(), nullptr);
    out_.reset();
  }
  container_pidfd_ = -1;
  status_ = "unhealthy";
  Write();
}

bool HealthRunner::Frozen() const {
  if (cfg_.freeze_file.empty()) return false;
  UniqueFd fd(open(cfg_.freeze_file.c_str(), O_RDONLY | O_CLOEXEC));
  char buf[16] = {};
  if (!fd.valid() || read(fd.get(), buf, sizeof buf - 1) <= 0) return false;
  // cgroup.freeze: "1"; freezer.state: FROZEN or FREEZING.
  return buf[0] == '1' || strncmp(buf, "FR", 2) == 0;
}

std::string HealthRunner::StartProbe() {
  probe_start_ = bundle::Timestamp();
  probe_start_ms_ = MonotonicMs();
  output_.clear();
  truncated_ = timed_out_ = false;
  if (container_pidfd_ < 0) return "";
  // docker's exec refuses a paused container; the probe counts that as a failure.
  if (Frozen()) return Finish(-1, "container is paused, unpause the container before exec");
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return Finish(-1, std::string("pipe2: ") + strerror(errno));
  UniqueFd r(p[0]), w(p[1]);
  UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  Plan& plan = cfg_.plan;
  plan.enter_pidfd = container_pidfd_;
  for (Op& op : plan.ops) {
    if (op.kind == OpKind::kSetns) op.fd = container_pidfd_;
  }
  plan.stdio[0] = null.get();
  plan.stdio[1] = plan.stdio[2] = w.get();
  Spawned spawned;
  SpawnFailure fail;
  if (!SpawnProcess(plan, &spawned, &fail)) return Finish(-1, fail.Message());
  pid_ = spawned.pid;
  pidfd_ = std::move(spawned.pidfd);
  out_ = std::move(r);
  fcntl(out_.get(), F_SETFL, O_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = out_.get();
  epoll_ctl(epoll_, EPOLL_CTL_ADD, out_.get(), &ev);
  Arm(cfg_.timeout_ms);
  return "";
}

void HealthRunner::ReadOutput(bool drain) {
  char buf[4096];
  while (out_.valid()) {
    ssize_t n = read(out_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      size_t keep = output_.size() < kMaxOutput ? kMaxOutput - output_.size() : 0;
      if (keep > static_cast<size_t>(n)) keep = static_cast<size_t>(n);
      output_.append(buf, keep);
      if (keep < static_cast<size_t>(n)) truncated_ = true;
      continue;
    }
    if (n < 0 && errno == EAGAIN && !drain) return;
    // EOF, or (draining after the probe's exit) nothing more now: a descendant that keeps the pipe
    // open is not waited for.
    epoll_ctl(epoll_, EPOLL_CTL_DEL, out_.get(), nullptr);
    out_.reset();
  }
}

std::string HealthRunner::OnFd(int fd) {
  if (out_.valid() && fd == out_.get()) {
    ReadOutput(false);
    return "";
  }
  uint64_t expirations;
  if (read(timer_.get(), &expirations, sizeof expirations) != sizeof expirations) return "";
  if (pid_ != 0) {
    // The timeout ran out: the probe is killed; its reaping finishes it.
    timed_out_ = true;
    kill(-pid_, SIGKILL);
    sys_pidfd_send_signal(pidfd_.get(), SIGKILL);
    return "";
  }
  return StartProbe();
}

std::string HealthRunner::Reap() {
  siginfo_t st{};
  if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &st, WEXITED | __WALL) < 0) return "";
  pid_ = 0;
  pidfd_.reset();
  ReadOutput(true);
  std::string out = output_ + (truncated_ ? "..." : "");
  if (timed_out_) {
    std::string msg = "Health check exceeded timeout (" + GoDuration(cfg_.timeout_ms) + ")";
    return Finish(-1, out.empty() ? msg : msg + ": " + out);
  }
  return Finish(st.si_code == CLD_EXITED ? st.si_status : 128 + st.si_status, out);
}

// docker's handleProbeResult.
std::string HealthRunner::Finish(int exit_code, const std::string& output) {
  if (status_.empty()) return "";
  log_.push_back("{\"Start\":\"" + probe_start_ + "\",\"End\":\"" + bundle::Timestamp() + "\",\"ExitCode\":" + std::to_string(exit_code) +
                 ",\"Output\":" + JsonQuote(output) + "}");
  while (log_.size() > kMaxLog) log_.pop_front();
  std::string old = status_;
  if (exit_code == 0) {
    failing_streak_ = 0;
    status_ = "healthy";
  } else if (status_ != "starting" || probe_start_ms_ - started_ms_ >= cfg_.start_period_ms) {
    // A failure while starting within the start period is not counted.
    if (++failing_streak_ >= cfg_.retries) status_ = "unhealthy";
  }
  Write();
  bool starting_period = MonotonicMs() - started_ms_ < cfg_.start_period_ms && status_ == "starting";
  Arm(starting_period ? cfg_.start_interval_ms : cfg_.interval_ms);
  if (old == status_) return "";
  return "{\"type\":\"health\",\"status\":\"" + status_ + "\",\"failingStreak\":" + std::to_string(failing_streak_) + "}";
}

}  // namespace nsbox
