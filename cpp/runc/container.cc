#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

#include "../syscalls.h"
#include "../unique-fd.h"
#include "../cgroup-ops.h"

namespace nsbox::runc {
namespace {

const char kFifo[] = "/exec.fifo";

// Field 22 of /proc/PID/stat (after the command, which may hold spaces) and the state letter.
bool ProcStat(int pid, char* state, unsigned long long* start) {
  std::string text;
  int e;
  if (!ReadFile("/proc/" + std::to_string(pid) + "/stat", &text, &e)) return false;
  size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return false;
  const char* p = text.c_str() + close + 2;
  *state = *p;
  for (int field = 0; field < 19; field++) {
    p = strchr(p, ' ');
    if (!p) return false;
    ++p;
  }
  *start = strtoull(p, nullptr, 10);
  return true;
}

// The init of this container still the process it was: not gone, not a zombie, not a reused pid.
bool InitAlive(const Calls& c) {
  char st;
  unsigned long long start;
  return ProcStat(c.pid, &st, &start) && start == c.start && st != 'Z' && st != 'X';
}

int RemoveEntry(const char* path, const struct stat*, int type, struct FTW*) {
  return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

bool RemoveStateDir(const std::string& dir, Failure* err) {
  if (nftw(dir.c_str(), RemoveEntry, 8, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT) {
    *err = SysFailure("rm", dir, errno);
    return false;
  }
  return true;
}

// Waits until the init (pidfd readable) has exited.
void WaitGone(int pidfd) {
  struct pollfd p = {pidfd, POLLIN, 0};
  while (poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
}

}  // namespace

bool Calls::HandsToNode(const std::string& cmd) const {
  return std::find(node.begin(), node.end(), cmd) != node.end();
}

bool LoadCalls(const std::string& dir, Calls* out, Failure* err) {
  std::string text;
  int e;
  if (!ReadFile(dir + "/calls", &text, &e)) {
    if (e == ENOENT || e == ENOTDIR) return false;
    *err = SysFailure("open", dir + "/calls", e);
    return false;
  }
  size_t at = 0;
  bool first = true;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) return false;  // no state part: not a file this reader knows
    std::string line = text.substr(at, nl - at);
    at = nl + 1;
    if (first) {
      if (line != "nsbox-runc-calls 1") return false;
      first = false;
      continue;
    }
    if (line == "state") {
      out->state = text.substr(at);
      return out->pid > 0;
    }
    size_t sp = line.find(' ');
    if (sp == std::string::npos) return false;
    std::string key = line.substr(0, sp), value = line.substr(sp + 1);
    if (key == "pid") out->pid = atoi(value.c_str());
    else if (key == "start") out->start = strtoull(value.c_str(), nullptr, 10);
    else if (key == "node") out->node.push_back(value);
    else if (key == "procs") out->procs.push_back(value);
    else if (key == "freezer-v1" || key == "freezer-v2") {
      out->freezer = value;
      out->freezer_v2 = key == "freezer-v2";
    } else if (key == "kill") out->kill_dir = value;
    else if (key == "rmdir") out->rmdirs.push_back({value});
    else if (key == "parent" && !out->rmdirs.empty()) out->rmdirs.back().push_back(value);
    else return false;
  }
  return false;
}

const char* StatusName(Status s) {
  switch (s) {
    case Status::kCreated: return "created";
    case Status::kRunning: return "running";
    case Status::kPaused: return "paused";
    case Status::kStopped: return "stopped";
  }
  return "unknown";
}

bool StatusOf(const std::string& dir, const Calls& c, Status* out, Failure*) {
  if (!InitAlive(c)) *out = Status::kStopped;
  else if (access((dir + kFifo).c_str(), F_OK) == 0) *out = Status::kCreated;
  else *out = Frozen(c) ? Status::kPaused : Status::kRunning;
  return true;
}

bool State(const std::string& dir, const Calls& c, std::string* out, Failure* err) {
  Status s;
  if (!StatusOf(dir, c, &s, err)) return false;
  out->clear();
  for (size_t i = 0; i < c.state.size(); i++) {
    if (c.state[i] != '\x01' || i + 1 >= c.state.size()) {
      out->push_back(c.state[i]);
      continue;
    }
    char what = c.state[++i];
    if (what == 'P') *out += std::to_string(s == Status::kStopped ? 0 : c.pid);
    else if (what == 'S') *out += StatusName(s);
  }
  return true;
}

// Releases the init from its fifo; fails fast (not hanging on the fifo) when the init has died.
bool Start(const std::string& dir, const Calls& c, Failure* err) {
  Status s;
  if (!StatusOf(dir, c, &s, err)) return false;
  const Failure stopped{"cannot start a container that has stopped"};
  if (s == Status::kStopped) return *err = stopped, false;
  if (s != Status::kCreated) return *err = {"cannot start an already running container"}, false;
  std::string fifo = dir + kFifo;
  // The init is held (or dead) until the reader below is open, so it is checked before: once the
  // reader is open, a quick program (/bin/true) can write its byte, run and exit, and the shim
  // reap it, before this process looks; only the byte then says it was started.
  UniqueFd pidfd(sys_pidfd_open(c.pid, 0));
  if (!pidfd.valid() || !InitAlive(c)) return *err = stopped, false;
  // A reader opened without blocking; the init's open for writing then returns, and its byte comes.
  UniqueFd rd(open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!rd.valid()) return *err = SysFailure("open", fifo, errno), false;
  struct pollfd p[2] = {{rd.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
  for (;;) {
    char b;
    ssize_t n = read(rd.get(), &b, 1);
    if (n == 1) break;
    // EOF: a writer came and went without its byte. A dead init that never opened it: the pidfd.
    if (n == 0 && (p[0].revents & POLLHUP)) return *err = stopped, false;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return *err = SysFailure("read", fifo, errno), false;
    if (p[1].revents & POLLIN) return *err = stopped, false;
    while (poll(p, 2, -1) < 0 && errno == EINTR) {
    }
  }
  if (unlink(fifo.c_str()) < 0 && errno != ENOENT) return *err = SysFailure("unlink", fifo, errno), false;
  return true;
}

// Sends a signal to the init, or with `all` to every process of the container's cgroup.
bool Kill(const std::string& dir, const Calls& c, int signo, bool all, Failure* err) {
  Status s;
  if (!StatusOf(dir, c, &s, err)) return false;
  const Failure not_running{"container not running"};
  if (s == Status::kStopped && !all) return *err = not_running, false;
  if (all) {
    std::vector<int> pids = c.procs.empty() ? std::vector<int>{} : Procs(c.procs);
    for (int pid : pids)
      if (kill(pid, signo) < 0 && errno != ESRCH) return *err = SysFailure("kill", std::to_string(pid), errno), false;
    // A frozen process only sees SIGKILL once thawed (runc's kill --all of a paused container).
    if (signo == SIGKILL && !c.freezer.empty() && s == Status::kPaused && !SetFrozen(c, false, err)) return false;
    if (s == Status::kStopped && pids.empty()) return *err = not_running, false;
    return true;
  }
  UniqueFd pidfd(sys_pidfd_open(c.pid, 0));
  if (!pidfd.valid()) {
    if (errno == ESRCH) return *err = not_running, false;
    return *err = SysFailure("pidfd_open", std::to_string(c.pid), errno), false;
  }
  if (!InitAlive(c)) return *err = not_running, false;
  if (sys_pidfd_send_signal(pidfd.get(), signo) < 0) {
    if (errno == ESRCH) return *err = not_running, false;
    return *err = SysFailure("pidfd_send_signal", std::to_string(c.pid), errno), false;
  }
  return true;
}

// Kills what is left (force, or a created container), removes the cgroup and the state.
bool Delete(const std::string& dir, const std::string& id, const Calls& c, bool force, Failure* err) {
  Status s;
  if (!StatusOf(dir, c, &s, err)) return false;
  if ((s == Status::kRunning || s == Status::kPaused) && !force)
    return *err = {"cannot delete container " + id + " that is not stopped: " + StatusName(s)}, false;
  if (s != Status::kStopped) {
    UniqueFd pidfd(sys_pidfd_open(c.pid, 0));
    bool ours = pidfd.valid() && InitAlive(c);
    if (!c.procs.empty()) {
      if (!KillAll(c, err)) return false;
    } else if (ours) {
      sys_pidfd_send_signal(pidfd.get(), SIGKILL);
    }
    if (ours) WaitGone(pidfd.get());
  } else if (!c.procs.empty() && !Procs(c.procs).empty()) {
    // The init is gone; a process it left (a container sharing the host's pid namespace) is not kept.
    if (!KillAll(c, err)) return false;
  }
  return RemoveCgroups(c, err) && RemoveStateDir(dir, err);
}

bool Pause(const std::string& dir, const std::string& id, const Calls& c, bool pause, Failure* err) {
  Status s;
  if (!StatusOf(dir, c, &s, err)) return false;
  if (c.freezer.empty()) return *err = {"container " + id + " has no cgroup to freeze"}, false;
  if (pause && s != Status::kRunning && s != Status::kCreated) return *err = {"container not running"}, false;
  if (!pause && s != Status::kPaused) return *err = {"container not paused"}, false;
  return SetFrozen(c, pause, err);
}

bool PsJson(const std::string& dir, const Calls& c, std::string* out, Failure* err) {
  std::vector<int> pids;
  if (c.procs.empty()) {
    Status s;
    if (!StatusOf(dir, c, &s, err)) return false;
    if (s != Status::kStopped) pids.push_back(c.pid);
  } else {
    pids = Procs(c.procs);
  }
  *out = "[";
  for (size_t i = 0; i < pids.size(); i++) *out += (i ? "," : "") + std::to_string(pids[i]);
  *out += "]";
  return true;
}

}  // namespace nsbox::runc
