// The container's HEALTHCHECK, run by its shim (docker's daemon/health.go): an exec plan compiled in
// TypeScript (lib/runtime/health-plan.ts) run through the same spawn code as an exec, every interval
// (the start interval while starting within the start period), killed after its timeout. Results go
// to health.json (ShimHealthSchema in lib/runtime/bundle.ts: docker's State.Health), and a status
// change to the events socket as {"type":"health","status","failingStreak"}.
#pragma once
#include <sys/types.h>

#include <deque>
#include <string>
#include <vector>

#include "../plan.h"
#include "../unique-fd.h"
#include "plan-wire.h"

namespace nsbox {

struct HealthConfig {
  bool enabled = false;
  // An exec plan; each run joins the container's current init: enter_pidfd and the fd of every
  // setns op are set to its pidfd. Its stdio is the shim's (stdout and stderr into one pipe).
  Plan plan;
  long interval_ms = 30000, timeout_ms = 30000, start_period_ms = 0, start_interval_ms = 5000;
  int retries = 3;
  // The cgroup's freezer file (cgroup.freeze or freezer.state): no probe is spawned into a frozen
  // container (its child would stop before execve, and the shim with it).
  std::string freeze_file;
  // Results of the container's earlier starts (JSON objects, as health.json has them): docker keeps
  // the log across restarts.
  std::vector<std::string> log;
};

// Reads the plan file's "healthcheck" (absent: not enabled). False with *err on a bad one.
bool ParseHealth(const WireValue& root, HealthConfig* cfg, std::string* err);

class HealthRunner {
 public:
  explicit HealthRunner(HealthConfig cfg) : cfg_(std::move(cfg)) {}
  HealthRunner(const HealthRunner&) = delete;
  HealthRunner& operator=(const HealthRunner&) = delete;

  bool enabled() const { return cfg_.enabled; }
  // Its timer, watched in `epoll`; results written in the bundle `dir`. False with errno set.
  bool Setup(int epoll, int dir);
  // Each (re)start: status starting, failing streak 0 (the log is kept), first probe after an interval.
  std::string OnStart(int container_pidfd, long long started_ms);
  // The container exited: the running probe is killed and reaped, and the status is unhealthy (as
  // docker's monitor leaves it when it stops). Told on no socket, as docker emits no event for it.
  void OnStop();
  bool Owns(int fd) const { return fd == timer_.get() || (out_.valid() && fd == out_.get()); }
  // An event JSON for the events socket when the status changed; empty otherwise.
  std::string OnFd(int fd);
  bool IsProbe(pid_t pid) const { return pid_ != 0 && pid == pid_; }
  std::string Reap();

 private:
  std::string StartProbe();
  std::string Finish(int exit_code, const std::string& output);
  void ReadOutput(bool drain);
  void Arm(long ms);
  void Write();
  bool Frozen() const;

  HealthConfig cfg_;
  int epoll_ = -1, dir_ = -1, container_pidfd_ = -1;
  UniqueFd timer_;
  std::string status_;  // "" before the first start
  int failing_streak_ = 0;
  std::deque<std::string> log_;
  long long started_ms_ = 0;
  // The probe that runs.
  pid_t pid_ = 0;
  UniqueFd pidfd_, out_;
  std::string output_, probe_start_;
  long long probe_start_ms_ = 0;
  bool truncated_ = false, timed_out_ = false;
};

}  // namespace nsbox
