// nsbox-runc, the entry containerd runs: the OCI runtime CLI (runc's). The calls containerd makes
// most and that need no config.json translation (`state`, `start`, `kill`, `delete`, `pause`,
// `resume`, `ps --format json`) are served here from the state dir, through the `calls` file that
// TypeScript wrote at create (lib/oci/call-file.ts), so they cost a few milliseconds instead of a
// Node start. Everything else (create, run, exec, update, spec, features, list, events, a flag
// this reader does not know, a container without a calls file, a command with hooks to run) is
// handed to Node with the same arguments (execv: same pid, so create's init is still this process's
// child): bin/nsbox-runc.js, lib/oci/cli.ts. Errors are told as cli.ts tells them (stderr, and with
// --log a line in runc's text or JSON form), exit status 1.
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../cgroup-ops.h"
#include "container.h"
#include "create.h"
#include "plan-cache.h"

namespace nsbox::runc {
namespace {

#ifndef NSBOX_NODE_PATH
#define NSBOX_NODE_PATH "node"
#endif

[[noreturn]] void HandToNode(char** argv) {
  // build/Release/nsbox-runc → bin/nsbox-runc.js; NSBOX_RUNC_JS overrides (an installed copy elsewhere).
  std::string js = RuncJsPath();
  const char* node_env = getenv("NSBOX_NODE");
  const char* node = node_env && *node_env ? node_env : NSBOX_NODE_PATH;
  if (access(node, X_OK) != 0) node = "node";
  std::vector<char*> args = {const_cast<char*>(node), const_cast<char*>(js.c_str())};
  for (char** a = argv + 1; *a; a++) args.push_back(*a);
  args.push_back(nullptr);
  // Node reads this CA file at start (tens of ms here); nsbox-runc makes no TLS connection, and
  // hooks and the container get the environment their config gives them, not this one.
  unsetenv("NODE_EXTRA_CA_CERTS");
  execvp(node, args.data());
  fprintf(stderr, "nsbox-runc: exec %s: %s\n", node, strerror(errno));
  exit(1);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\', out += static_cast<char>(ch);
    else if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else if (ch == '\r') out += "\\r";
    else if (ch < 0x20) {
      char b[8];
      snprintf(b, sizeof b, "\\u%04x", ch);
      out += b;
    } else out += static_cast<char>(ch);
  }
  return out + "\"";
}

void LogError(const std::string& file, bool json, const std::string& msg) {
  if (!file.empty()) {
    const std::string time = IsoNow();
    std::string line = json ? "{\"level\":\"error\",\"msg\":" + JsonString(msg) + ",\"time\":\"" + time + "\"}\n"
                            : std::string("time=\"") + time + "\" level=error msg=" + JsonString(msg) + "\n";
    if (FILE* f = fopen(file.c_str(), "ae")) {
      fputs(line.c_str(), f);
      fclose(f);
    }
  }
  fprintf(stderr, "%s\n", msg.c_str());
}

bool ValidId(const std::string& id) {
  if (id.empty() || id == "." || id == "..") return false;
  for (unsigned char ch : id)
    if (!isalnum(ch) && ch != '_' && ch != '+' && ch != '-' && ch != '.') return false;
  return true;
}

// Signal names and numbers as kill(1) and runc take them: 9, KILL, SIGKILL. 0 when unknown.
int ParseSignal(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
    int n = atoi(s.c_str());
    return n > 0 && n < 65 ? n : 0;
  }
  std::string name = s;
  for (char& ch : name) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
  if (name.compare(0, 3, "SIG") == 0) name = name.substr(3);
  for (int n = 1; n < 32; n++) {
    const char* abbrev = sigabbrev_np(n);
    if (abbrev && name == abbrev) return n;
  }
  return 0;
}

struct Args {
  std::string root = "/run/nsbox-runc", log;
  bool json = false;
  std::string cmd, id, signal = "SIGTERM";
  bool force = false, all = false, ps_json = false;
  CreateArgs create;
};

// True when the command line is one this side serves, in full; else the caller hands it to Node.
bool Parse(int argc, char** argv, Args* a) {
  int i = 1;
  auto value = [&](const std::string& arg, const char* name, std::string* out) {
    std::string flag = std::string("-") + name, dflag = std::string("--") + name;
    if (arg == flag || arg == dflag) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    }
    for (const std::string& f : {flag + "=", dflag + "="})
      if (arg.compare(0, f.size(), f) == 0) return *out = arg.substr(f.size()), true;
    return false;
  };
  for (; i < argc && argv[i][0] == '-'; i++) {
    std::string arg = argv[i], ignored, format;
    if (value(arg, "root", &a->root) || value(arg, "log", &a->log) || value(arg, "criu", &ignored) || value(arg, "rootless", &ignored)) continue;
    if (value(arg, "log-format", &format)) {
      a->json = format == "json";
      continue;
    }
    if (arg == "--debug" || arg == "-debug") continue;
    return false;  // --systemd-cgroup, --version, --help, anything else: Node's answer
  }
  if (i >= argc) return false;
  a->cmd = argv[i++];
  if (a->cmd == "create") {
    a->create.root = a->root;
    return ParseCreate(argc, argv, i, &a->create) && ValidId(a->create.id);
  }
  const bool kill = a->cmd == "kill";
  if (a->cmd != "state" && a->cmd != "start" && !kill && a->cmd != "delete" && a->cmd != "pause" && a->cmd != "resume" && a->cmd != "ps") return false;
  std::vector<std::string> rest;
  for (; i < argc; i++) {
    std::string arg = argv[i], format;
    if (arg == "--") {
      for (i++; i < argc; i++) rest.push_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      rest.push_back(arg);
      if (!kill) {
        for (i++; i < argc; i++) rest.push_back(argv[i]);
        break;
      }
      continue;
    }
    if (kill && (arg == "--all" || arg == "-a" || arg == "--all=true" || arg == "-all")) a->all = true;
    else if (a->cmd == "delete" && (arg == "--force" || arg == "-f" || arg == "--force=true" || arg == "-force")) a->force = true;
    else if (a->cmd == "ps" && (value(arg, "format", &format) || value(arg, "f", &format)) && format == "json") a->ps_json = true;
    else return false;
  }
  if (a->cmd == "ps" && !a->ps_json) return false;  // ps's table runs ps(1): Node's
  const size_t want = kill ? 2 : 1;
  if (rest.empty() || rest.size() > want || !ValidId(rest[0])) return false;
  a->id = rest[0];
  if (rest.size() == 2) a->signal = rest[1];
  return true;
}

// --preserve-fds N of create or run: the caller's fds 3 .. 3+N-1 must be open here, before Node
// starts and takes free numbers of its own (which would then pass for the caller's).
bool CheckPreservedFds(int argc, char** argv, std::string* msg) {
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i], value;
    if ((arg == "--preserve-fds" || arg == "-preserve-fds") && i + 1 < argc) value = argv[i + 1];
    else if (arg.compare(0, 15, "--preserve-fds=") == 0) value = arg.substr(15);
    else continue;
    int n = atoi(value.c_str());
    for (int fd = 3; fd < 3 + n; fd++) {
      if (fcntl(fd, F_GETFD) < 0) {
        *msg = "--preserve-fds " + value + ": fd " + std::to_string(fd) + " is not open";
        return false;
      }
    }
  }
  return true;
}

int Run(int argc, char** argv) {
  Args a;
  if (!Parse(argc, argv, &a)) {
    std::string msg;
    if (!CheckPreservedFds(argc, argv, &msg)) {
      fprintf(stderr, "%s\n", msg.c_str());
      return 1;
    }
    HandToNode(argv);
  }
  if (a.cmd == "create") {
    std::string msg;
    if (!CheckPreservedFds(argc, argv, &msg)) {
      fprintf(stderr, "%s\n", msg.c_str());
      return 1;
    }
    int key_fd;
    if (CreateFromCache(a.create, &key_fd)) return 0;
    if (key_fd >= 0) setenv("NSBOX_RUNC_PLAN_KEY_FD", std::to_string(key_fd).c_str(), 1);
    HandToNode(argv);
  }
  const std::string dir = a.root + "/" + a.id;
  Calls c;
  Failure err;
  if (!LoadCalls(dir, &c, &err)) {
    // runc: a forced delete of a container that is not there succeeds (containerd's shim runs one
    // after each delete); as lib/oci/lifecycle.ts, without a Node start for it.
    if (err.msg.empty() && a.cmd == "delete" && a.force && access(dir.c_str(), F_OK) != 0 && errno == ENOENT) return 0;
    if (err.msg.empty()) HandToNode(argv);  // no calls file: Node knows (does not exist, an older state)
  } else if (c.HandsToNode(a.cmd)) {
    HandToNode(argv);
  } else {
    std::string out;
    bool ok = false;
    if (a.cmd == "state") ok = State(dir, c, &out, &err);
    else if (a.cmd == "start") ok = Start(dir, c, &err);
    else if (a.cmd == "kill") {
      int signo = ParseSignal(a.signal);
      if (!signo) HandToNode(argv);  // Node words the refusal
      ok = Kill(dir, c, signo, a.all, &err);
    } else if (a.cmd == "delete") ok = Delete(dir, a.id, c, a.force, &err);
    else if (a.cmd == "pause" || a.cmd == "resume") ok = Pause(dir, a.id, c, a.cmd == "pause", &err);
    else if (a.cmd == "ps") ok = PsJson(dir, c, &out, &err);
    if (ok) {
      if (!out.empty()) printf("%s\n", out.c_str());
      return fflush(stdout) == 0 ? 0 : 1;
    }
  }
  LogError(a.log, a.json, err.msg);
  return 1;
}

}  // namespace
}  // namespace nsbox::runc

int main(int argc, char** argv) { return nsbox::runc::Run(argc, argv); }
