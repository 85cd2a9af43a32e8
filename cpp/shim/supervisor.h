// The supervisor loop of nsbox-shim: one epoll over the container's pidfd and output pipes, a
// signalfd, a timerfd (restart backoff, stop timeout) and the attach socket and its clients.
#pragma once
#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "../plan.h"
#include "../unique-fd.h"

namespace nsbox {

struct RestartPolicy {
  enum Kind { kNo, kOnFailure, kAlways, kUnlessStopped } kind = kNo;
  int max_retries = 0;  // on-failure:N; 0 = no limit
};

// "no", "on-failure", "on-failure:N", "always", "unless-stopped" ("" = "no").
bool ParseRestart(const std::string& s, RestartPolicy* p);

// {"error":{"message","code","errno","syscall","path"}}: how a failure is reported to lib/runtime/shim.ts.
std::string ErrorJson(const std::string& message, int err, const std::string& syscall, const std::string& path);

constexpr const char* kConsolePlaceholder = "@console";

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
    std::string in;       // partial frame from the client
    std::string pending;  // output the socket did not take yet
    bool shut = false;    // our side is shut down (CloseClients)
  };
  struct Stream {
    UniqueFd fd;
    const char* name;
    int frame;            // attach frame type
    std::string partial;  // a line without its newline yet
  };

  bool Setup(std::string* err);
  bool StartContainer();
  bool OpenPty(UniqueFd* slave);
  void OnEvent(int fd, unsigned events);
  void OnSignal();
  void ReapChildren();
  void OnContainerExit(const siginfo_t& info);
  void AfterRun(bool failed);
  void OnTimer();
  void ReadStream(Stream* s, bool drain);
  void LogLine(const Stream& s, const char* data, size_t len);
  void Broadcast(int type, const char* data, size_t len);
  void SendFrame(Client* c, int type, const char* data, size_t len);
  void Accept();
  void Linger();
  void CloseClients();
  void OnClient(size_t i, unsigned events);
  void DropClient(size_t i);
  void HandleFrame(int type, const std::string& payload);
  void WriteStdin(const char* data, size_t len);
  void FlushStdin();
  void CloseStdin();
  void Stop();
  void ArmTimer(long ms);
  void WriteState(const char* status);
  void Report(bool ok, const std::string& json);
  void Watch(int fd, unsigned events);
  void Unwatch(int fd);

  UniqueFd dir_;
  ShimConfig cfg_;
  UniqueFd report_;
  UniqueFd epoll_, signal_fd_, timer_, listen_, log_;
  UniqueFd pidfd_, stdin_w_, pty_master_;
  std::string stdin_pending_;
  bool stdin_eof_ = false;
  Stream out_{UniqueFd(), "stdout", 1, {}}, err_{UniqueFd(), "stderr", 2, {}};
  std::vector<Client> clients_;
  // Frames broadcast before the first client attached (up to kMaxPending): that client gets them
  // first, so attaching just after start misses nothing of the run.
  std::string early_;
  bool attached_ = false;
  std::vector<size_t> console_ops_;  // binds of kConsolePlaceholder: get each run's pty slave
  pid_t pid_ = 0;
  int restarts_ = 0;
  std::string start_error_;  // why the last StartContainer failed, as ErrorJson
  std::string started_at_;
  long long started_ms_ = 0;
  long backoff_ms_ = 0;
  bool stopping_ = false, killed_ = false, restarting_ = false, done_ = false;
  int exit_code_ = 0;
};

}  // namespace nsbox
