// Each run of the container: its stdio (pipes, or a pty), the spawn, and what a start tells.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "../spawn-core.h"
#include "bundle-files.h"
#include "supervisor.h"

namespace nsbox {

bool Supervisor::OpenPty(UniqueFd* slave) {
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  char path[128];
  if (!master.valid() || grantpt(master.get()) < 0 || unlockpt(master.get()) < 0 ||
      ptsname_r(master.get(), path, sizeof path) != 0) {
    start_error_ = bundle::ErrorJson("nsbox-shim: open a pseudo-terminal", errno, "posix_openpt", "/dev/ptmx");
    return false;
  }
  winsize ws{};
  ws.ws_col = cfg_.cols;
  ws.ws_row = cfg_.rows;
  ioctl(master.get(), TIOCSWINSZ, &ws);
  slave->reset(open(path, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave->valid()) {
    start_error_ = bundle::ErrorJson(std::string("nsbox-shim: open ") + path, errno, "open", path);
    return false;
  }
  for (size_t i : console_ops_) cfg_.plan.ops[i].source = path;
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
      start_error_ = bundle::ErrorJson("nsbox-shim: pipe2", errno, "pipe2", "");
      return false;
    }
    out_w.reset(out[1]);
    out_.fd.reset(out[0]);
    if (pipe2(errp, O_CLOEXEC) < 0) {
      start_error_ = bundle::ErrorJson("nsbox-shim: pipe2", errno, "pipe2", "");
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
  // Before the spawn: a run that is OOM-killed at once still counts its kill.
  oom_base_ = oom_.Count();
  oom_seen_ = 0;
  Spawned spawned;
  SpawnFailure fail;
  if (!SpawnProcess(cfg_.plan, &spawned, &fail)) {
    out_.fd.reset();
    err_.fd.reset();
    stdin_w_.reset();
    pty_master_.reset();
    start_error_ = bundle::ErrorJson(fail.Message(), fail.err, fail.syscall, fail.path);
    if (!report_.valid()) {
      // A restart that could not start: recorded as an exit, with the reason.
      std::string exit = bundle::StartFailureJson(fail.Message());
      bundle::WriteAtomic(dir_.get(), bundle::kExit, exit + "\n");
      Event("{\"type\":\"exit\"," + exit.substr(1));
    }
    return false;
  }
  pid_ = spawned.pid;
  pidfd_ = std::move(spawned.pidfd);
  net_helper_ = spawned.net_helper;
  // The caller's time for the first run (its record may be written with it already), once.
  started_at_ = cfg_.first_started_at.empty() ? bundle::Timestamp() : cfg_.first_started_at;
  cfg_.first_started_at.clear();
  started_ms_ = MonotonicMs();
  Watch(pidfd_.get(), EPOLLIN);
  for (int fd : {out_.fd.get(), err_.fd.get()}) {
    if (fd >= 0) Watch(fd, EPOLLIN);
  }
  Event("{\"type\":\"start\",\"pid\":" + std::to_string(pid_) + ",\"startedAt\":\"" + started_at_ +
        "\",\"restartCount\":" + std::to_string(restarts_) + "}");
  SetState("running");
  Event(health_.OnStart(pidfd_.get(), started_ms_));
  return true;
}

}  // namespace nsbox
