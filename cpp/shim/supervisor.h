// The supervisor of nsbox-shim: one epoll loop over the container's pidfd and output, a signalfd,
// a timerfd (restart backoff, stop timeout), the OOM notification, and the attach and events
// sockets with their clients. Its jobs live in separate files: the loop, starts and exits here;
// the sockets in attach-server.cc; the log in json-log.cc; the policy in restart-policy.cc; the
// bundle's files in bundle-files.cc; OOM kills in oom-watch.cc; the HEALTHCHECK in health.cc.
#pragma once
#include <signal.h>
#include <sys/types.h>
#include <time.h>

#include <string>
#include <vector>

#include "../plan.h"
#include "../unique-fd.h"
#include "health.h"
#include "json-log.h"
#include "oom-watch.h"
#include "port-proxy.h"
#include "restart-policy.h"

namespace nsbox {

constexpr const char* kConsolePlaceholder = "@console";

inline long long MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

struct ShimConfig {
  Plan plan;
  RestartPolicy restart;
  bool open_stdin = false;   // a pipe that attach clients write to; else /dev/null
  // A terminal: the container's stdio is a pty slave (its controlling terminal); output is one
  // stream (stdout), attach's stdin goes to the master, resize sets its size. A bind op whose
  // source is kConsolePlaceholder gets the slave's path (docker binds it on /dev/console).
  bool tty = false;
  unsigned short cols = 80, rows = 24;
  int stop_signal = 15;      // SIGTERM
  long stop_timeout_ms = 10000;
  // A caller attaches right after start (docker run: create, attach, start): when the container is
  // gone for good before anyone attached, wait this long for the first client, so that it still
  // gets the whole run (the replay below) and the exit. 0: end at once.
  long await_attach_ms = 0;
  std::vector<std::string> exit_command;  // run once the shim is done (argv[0] an absolute path)
  // The first run's start time as the caller chose it (RFC 3339, UTC), so that the caller can write
  // its record with that time before the report; empty: the shim's clock, as for every restart.
  std::string first_started_at;
  HealthConfig health;                    // the HEALTHCHECK (health.cc); not enabled without one
  std::vector<ProxySpec> proxies;         // held sockets to listen on and relay (port-proxy.h)
  std::string proxy_target;               // the file with the address they relay to (may be empty)
  // The report is the bare JSON line (--spawned: read by the caller itself), not the status byte
  // and line that Daemonize's waiting parent relays.
  bool bare_report = false;
};

class Supervisor {
 public:
  Supervisor(UniqueFd dir, ShimConfig cfg, UniqueFd report);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;
  // Runs until the container is gone for good; returns the shim's exit code.
  int Run();

 private:
  struct Client {
    UniqueFd fd;
    bool events;          // on events.sock: event frames only
    std::string in;       // partial frame from the client
    std::string pending;  // output the socket did not take yet
    bool shut = false;    // our side is shut down (CloseClients)
  };

  // supervisor.cc: the loop, starts, exits, stop.
  bool Setup(std::string* err);
  bool StartContainer();
  bool OpenPty(UniqueFd* slave);
  void Loop();
  void OnEvent(int fd, unsigned events);
  void OnSignal();
  void ReapChildren();
  void OnContainerExit(const siginfo_t& info);
  void AfterRun(bool failed);
  void OnTimer();
  void ArmTimer(long ms);
  void Stop();
  void ReadStream(OutputStream* s, bool drain);
  void CheckOom();
  void SetState(const char* status);
  void Report(bool ok, const std::string& json);
  void Watch(int fd, unsigned events);
  void Unwatch(int fd);
  void RemoveSockets();

  // attach-server.cc: attach.sock and events.sock.
  bool Listen(const char* name, UniqueFd* fd, std::string* err);
  void Broadcast(int type, const char* data, size_t len);
  void Event(const std::string& json);
  void SendFrame(Client* c, int type, const char* data, size_t len);
  void Accept(int listen_fd, bool events);
  void Linger();
  void CloseClients();
  void OnClient(size_t i, unsigned events);
  void DropClient(size_t i);
  void HandleFrame(int type, const std::string& payload);
  void WriteStdin(const char* data, size_t len);
  void FlushStdin();
  void CloseStdin();

  UniqueFd dir_;
  ShimConfig cfg_;
  UniqueFd report_;
  UniqueFd epoll_, signal_fd_, timer_, listen_, events_listen_;
  JsonLog log_;
  OomWatch oom_;
  HealthRunner health_;
  PortProxy proxy_;
  UniqueFd pidfd_, stdin_w_, pty_master_;
  std::string stdin_pending_;
  bool stdin_eof_ = false;
  OutputStream out_{UniqueFd(), "stdout", 1, {}}, err_{UniqueFd(), "stderr", 2, {}};
  std::vector<Client> clients_;
  // Frames broadcast before the first attach client (up to kMaxPending): that client gets them
  // first, so attaching just after start misses nothing of the run.
  std::string early_;
  bool attached_ = false;
  std::vector<size_t> console_ops_;  // binds of kConsolePlaceholder: get each run's pty slave
  pid_t pid_ = 0;
  pid_t net_helper_ = 0;  // the run's pasta (rootless networking): ended when the container exits
  int restarts_ = 0;
  std::string state_;        // state.json as last written: what an events client gets first
  std::string start_error_;  // why the last StartContainer failed, as ErrorJson
  std::string started_at_;
  long long started_ms_ = 0;
  long backoff_ms_ = 0;
  long long oom_base_ = 0;   // the OOM kill count when this run started
  long long oom_seen_ = 0;   // the count last reported in an oom event
  int oom_rechecks_ = 0;     // v1: checks left after a notification that came before its kill
  bool stopping_ = false, restarting_ = false, done_ = false;
};

}  // namespace nsbox
