// nsbox-shim: the supervisor of one detached container (conmon's job), built from the addon's spawn
// code. `nsbox-shim --bundle DIR` reads DIR/plan.bin (with --plan-stdin: the same bytes from its
// stdin, up to EOF, so that no file is written for it), reports "started" (or the failure) on stdout
// as one JSON line, and lives on, detached, as the container's parent and subreaper. The bundle's
// files (shim.pid, state.json, exit.json, container.log, attach.sock, events.sock) are named in
// bundle-files.h, their schemas in lib/runtime/bundle.ts, the sockets' protocol in attach.h.
// SIGTERM (or SIGINT) to the shim stops the container (its stop signal, SIGKILL after the stop
// timeout), without restarting it, and then the shim exits. One thread, one epoll loop.
// `nsbox-shim --print-plan FILE` prints a plan file as JSON (after checking that it parses).
// `--spawned`: the caller started the shim in a session of its own (spawnProcess's setsid) and reads
// the report up to EOF without waiting for the shim's exit, so no fork is needed to detach: the
// report is the bare JSON line, and the shim's exit code is 1 when it is an error.
// `--spare` (with --plan-stdin --spawned): started ahead of its container, idle until its bundle
// directory comes as the first line of its stdin, then the plan up to EOF, as `--bundle DIR
// --plan-stdin` would read it; from there on the same shim. Its working directory is the bundle
// (its command line names none): /proc/PID/cwd tells whose shim it is. EOF before a line (its
// starter let it go unused): exits 0 without a report.
// `--hold-fds N`: the caller's fds 3 .. 3+N-1 (the bound sockets of the container's published host
// ports) are held, never used, for as long as the shim lives, i.e. the container's life: nothing
// else can take those ports, and they are free again the moment the shim is gone, however it ends.
// `--proxy FD ADDRESS PORT` (repeated): one of them listens and relays to the container
// (port-proxy.h: IPv6 loopback, which DNAT cannot serve); `--proxy-target FILE`: the address the
// proxies relay to is read from FILE at each connection (it follows the container's networks).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../plan-parse.h"
#include "../spawn-core.h"
#include "../syscalls.h"
#include "bundle-files.h"
#include "plan-wire.h"
#include "supervisor.h"

namespace nsbox {
namespace {

bool ReadAll(int fd, std::string* out) {
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    out->append(buf, static_cast<size_t>(n));
  }
  return true;
}

// FILE under dirfd, or stdin when name is null.
bool ReadFile(int dirfd, const char* name, std::string* out) {
  if (name == nullptr) return ReadAll(0, out);
  UniqueFd fd(openat(dirfd, name, O_RDONLY | O_CLOEXEC));
  return fd.valid() && ReadAll(fd.get(), out);
}

void WriteOut(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Reads and checks FILE (plan.bin; stdin when name is null; `given` when a spare has read it
// already): the plan and the shim's own settings.
bool LoadConfig(int dirfd, const char* name, const std::string* given, WireValue* root, ShimConfig* cfg, std::string* err) {
  std::string data;
  if (given != nullptr) {
    data = *given;
  } else if (!ReadFile(dirfd, name, &data)) {
    *err = std::string("read ") + (name != nullptr ? name : "stdin") + ": " + ErrnoName(errno) + " (" + strerror(errno) + ")";
    return false;
  }
  if (!DecodeWire(data, root, err)) return false;
  const WireValue* plan = root->Field("plan");
  if (plan == nullptr || plan->type != 'o') {
    *err = "plan file has no plan";
    return false;
  }
  if (!ParsePlan(WireSource{}, *plan, &cfg->plan, err)) return false;
  if (cfg->plan.enter_pidfd >= 0) {
    *err = "a detached container cannot enter another one's namespaces";
    return false;
  }
  WireSource src;
  if (!ParseRestart(src.Str(*root, "restart"), &cfg->restart)) {
    *err = "bad restart policy '" + src.Str(*root, "restart") + "'";
    return false;
  }
  cfg->open_stdin = src.Bool(*root, "openStdin", false);
  cfg->tty = src.Bool(*root, "tty", false);
  cfg->cols = static_cast<unsigned short>(src.Num(*root, "cols", 80));
  cfg->rows = static_cast<unsigned short>(src.Num(*root, "rows", 24));
  cfg->stop_signal = static_cast<int>(src.Num(*root, "stopSignal", SIGTERM));
  cfg->stop_timeout_ms = static_cast<long>(src.Num(*root, "stopTimeout", 10) * 1000);
  cfg->await_attach_ms = static_cast<long>(src.Num(*root, "awaitAttach", 0) * 1000);
  if (src.Get(*root, "exitCommand") != nullptr) cfg->exit_command = src.StrList(*root, "exitCommand");
  cfg->first_started_at = src.Str(*root, "startedAt");
  return ParseHealth(*root, &cfg->health, err);
}

int PrintPlan(const char* file) {
  WireValue root;
  ShimConfig cfg;
  std::string err;
  if (!LoadConfig(AT_FDCWD, file, nullptr, &root, &cfg, &err)) {
    fprintf(stderr, "nsbox-shim: %s: %s\n", file, err.c_str());
    return 1;
  }
  WriteOut(1, WireToJson(root) + "\n");
  return 0;
}

// Forks twice (setsid between) so that the supervisor is nobody's child but init's (or the nearest
// subreaper's) and has no terminal. The caller's process waits for the supervisor's report on a
// pipe and prints it: returns in the supervisor with the pipe's write end, exits in the others.
int Daemonize() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    WriteOut(1, bundle::ErrorJson("nsbox-shim: pipe2", errno, "pipe2", "") + "\n");
    _exit(1);
  }
  pid_t child = fork();
  if (child < 0) {
    WriteOut(1, bundle::ErrorJson("nsbox-shim: fork", errno, "fork", "") + "\n");
    _exit(1);
  }
  if (child > 0) {
    close(p[1]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    std::string report;
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      report.append(buf, static_cast<size_t>(n));
    }
    // The first byte says how it went: '0' started, '1' failed.
    if (report.size() < 2) {
      WriteOut(1, bundle::ErrorJson("nsbox-shim: the supervisor exited before it reported", 0, "", "") + "\n");
      _exit(1);
    }
    WriteOut(1, report.substr(1));
    _exit(report[0] == '0' ? 0 : 1);
  }
  close(p[0]);
  setsid();
  pid_t grandchild = fork();
  if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
  // Nothing of the caller's: no terminal, no inherited pipes that would keep it waiting for us.
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    for (int fd = 0; fd < 3; fd++) dup2(null, fd);
    if (null > 2) close(null);
  }
  if (chdir("/") < 0) {
  }
  return p[1];
}

// --spawned: already detached by the caller's setsid spawn. The report goes out on a CLOEXEC copy
// of stdout; 0, 1 and 2 become /dev/null at once, so that nothing this process starts (pasta,
// probes, the exit command) holds the caller's pipes open, and its stdout ends with the report.
// `cwd`: "/", or a spare's bundle directory.
int Detached(const char* cwd) {
  int report = fcntl(1, F_DUPFD_CLOEXEC, 3);
  if (report < 0) {
    WriteOut(1, bundle::ErrorJson("nsbox-shim: dup stdout", errno, "fcntl", "") + "\n");
    _exit(1);
  }
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    for (int fd = 0; fd < 3; fd++) dup2(null, fd);
    if (null > 2) close(null);
  }
  if (chdir(cwd) < 0) {
  }
  return report;
}

// podman's --exit-command: what the engine wants done once the container is gone for good (remove
// an auto-remove container). Our last act; not waited for (init or a subreaper reaps it).
void RunExitCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) return;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  if (fork() == 0) {
    execv(args[0], args.data());
    _exit(127);
  }
}

// A spare's input: its bundle directory (stdin's first line), then its plan, until EOF (the start
// closes the pipe once both are written), read in a few reads rather than the line a byte at a
// time. False at EOF before a whole line (the spare ended unused), or for an empty or overlong one.
bool ReadSpareInput(std::string* dir, std::string* plan) {
  std::string all;
  if (!ReadAll(0, &all)) return false;
  size_t nl = all.find('\n');
  if (nl == std::string::npos || nl == 0 || nl > 4096) return false;
  dir->assign(all, 0, nl);
  plan->assign(all, nl + 1, std::string::npos);
  return true;
}

// The count after --hold-fds (0 without it, or for anything but a small number).
unsigned HeldFds(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i++) {
    if (strcmp(argv[i], "--hold-fds") != 0) continue;
    char* end = nullptr;
    unsigned long n = strtoul(argv[i + 1], &end, 10);
    return end != argv[i + 1] && *end == '\0' && n <= 1024 ? static_cast<unsigned>(n) : 0;
  }
  return 0;
}

int Main(int argc, char** argv) {
  // Fds the caller leaked to us would be held for the container's lifetime; the ones it gave us
  // to hold are kept, and none of our children (the container, health probes, the exit command)
  // gets them.
  unsigned held = HeldFds(argc, argv);
  sys_close_range(3 + held, ~0U, 0);
  for (unsigned fd = 3; fd < 3 + held; fd++) fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  const char* bundle_dir = nullptr;
  bool plan_stdin = false;
  bool spawned = false;
  bool spare = false;
  std::vector<ProxySpec> proxies;
  std::string proxy_target;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--print-plan" && i + 1 < argc) return PrintPlan(argv[i + 1]);
    if (a == "--hold-fds" && i + 1 < argc) {
      i++;
      continue;
    }
    if (a == "--proxy" && i + 3 < argc) {
      proxies.push_back({atoi(argv[i + 1]), argv[i + 2], atoi(argv[i + 3])});
      i += 3;
      continue;
    }
    if (a == "--proxy-target" && i + 1 < argc) {
      proxy_target = argv[++i];
      continue;
    }
    if (a == "--plan-stdin") {
      plan_stdin = true;
      continue;
    }
    if (a == "--spawned") {
      spawned = true;
      continue;
    }
    if (a == "--spare") {
      spare = true;
      continue;
    }
    if (a == "--bundle" && i + 1 < argc) {
      bundle_dir = argv[++i];
      continue;
    }
    fprintf(stderr, "usage: nsbox-shim --bundle DIR [--plan-stdin] [--spawned] [--spare] [--hold-fds N [--proxy FD ADDRESS PORT]... [--proxy-target FILE]] | --print-plan FILE\n");
    return 2;
  }
  std::string spare_dir;
  std::string spare_plan;
  if (spare) {
    if (!plan_stdin || !spawned || bundle_dir != nullptr) {
      fprintf(stderr, "nsbox-shim: --spare goes with --plan-stdin and --spawned, without --bundle\n");
      return 2;
    }
    if (!ReadSpareInput(&spare_dir, &spare_plan)) return 0;
    bundle_dir = spare_dir.c_str();
  }
  if (bundle_dir == nullptr) {
    fprintf(stderr, "usage: nsbox-shim --bundle DIR [--plan-stdin] [--spawned] [--spare] [--hold-fds N [--proxy FD ADDRESS PORT]... [--proxy-target FILE]] | --print-plan FILE\n");
    return 2;
  }
  UniqueFd dir(open(bundle_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    WriteOut(1, bundle::ErrorJson(std::string("open ") + bundle_dir + ": " + ErrnoName(errno), errno, "open", bundle_dir) + "\n");
    return 1;
  }
  WireValue root;
  ShimConfig cfg;
  std::string err;
  if (!LoadConfig(dir.get(), plan_stdin ? nullptr : bundle::kPlan, spare ? &spare_plan : nullptr, &root, &cfg, &err)) {
    std::string from = plan_stdin ? std::string("the plan on stdin") : std::string(bundle_dir) + "/" + bundle::kPlan;
    WriteOut(1, bundle::ErrorJson("nsbox-shim: " + from + ": " + err, 0, "", "") + "\n");
    return 1;
  }
  root = WireValue();  // the Plan has its own copy: keep the supervisor small
  for (const ProxySpec& p : proxies) {
    if (p.fd < 3 || p.fd >= static_cast<int>(3 + held)) {
      WriteOut(1, bundle::ErrorJson("nsbox-shim: --proxy " + std::to_string(p.fd) + ": not a held fd", EBADF, "", "") + "\n");
      return 1;
    }
  }
  cfg.proxies = std::move(proxies);
  cfg.proxy_target = std::move(proxy_target);
  cfg.bare_report = spawned;
  UniqueFd report(spawned ? Detached(spare ? bundle_dir : "/") : Daemonize());
  std::vector<std::string> exit_command = cfg.exit_command;
  int rc;
  {
    Supervisor sup(std::move(dir), std::move(cfg), std::move(report));
    rc = sup.Run();
  }
  // The ports are free before the exit command (an `nsbox rm`) runs: whoever waits for the
  // removal may bind them at once.
  if (held > 0) sys_close_range(3, 2 + held, 0);
  if (rc == 0) RunExitCommand(exit_command);
  return rc;
}

}  // namespace
}  // namespace nsbox

int main(int argc, char** argv) { return nsbox::Main(argc, argv); }
