// `create` from a cached plan (plan-cache.h): the same steps as lib/oci/create.ts, with every
// decision already taken by TypeScript when it compiled the entry. Anything unexpected (a check of
// the entry that fails, a cgroup that exists, a spawn that fails) undoes what this side did and
// hands the command to Node, which creates the container or words the error: this side never
// tells a create error itself.
#include "create.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "../cgroup-bpf.h"
#include "../plan-parse.h"
#include "../spawn-core.h"
#include "../syscalls.h"
#include "../cgroup-ops.h"
#include "plan-cache.h"

namespace nsbox::runc {
namespace {

// Fd numbers the entry's plan holds in place of ones opened here (lib/oci/plan-cache.ts).
constexpr int kFifoFdHole = -1000;

std::string Str(const WireValue& o, const char* key) {
  const WireValue* v = o.Field(key);
  return v && v->type == 's' ? v->str : "";
}

bool Bool(const WireValue& o, const char* key) {
  const WireValue* v = o.Field(key);
  return v && v->type == 't';
}

// path.resolve: absolute, without '.', '..', empty parts or a trailing slash.
std::string Resolve(const std::string& p) {
  std::string full = p;
  if (p.empty() || p[0] != '/') {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return "";
    full = std::string(cwd) + "/" + p;
  }
  std::vector<std::string> parts;
  size_t at = 0;
  while (at <= full.size()) {
    size_t sl = full.find('/', at);
    if (sl == std::string::npos) sl = full.size();
    std::string part = full.substr(at, sl - at);
    at = sl + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else {
      parts.push_back(part);
    }
  }
  std::string out;
  for (const auto& part : parts) out += "/" + part;
  return out.empty() ? "/" : out;
}

bool IsDir(const std::string& p, bool* dir) {
  struct stat st;
  if (stat(p.c_str(), &st) < 0) return false;
  *dir = S_ISDIR(st.st_mode);
  return true;
}

bool WriteAtomic(const std::string& file, const std::string& text) {
  std::string tmp = file + ".tmp-" + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), file.c_str()) < 0) {
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::string FillHoles(const std::string& t, const std::string& id, const std::string& pid, const std::string& start, const std::string& created) {
  std::string out;
  for (size_t i = 0; i < t.size(); i++) {
    if (t[i] != kHole || i + 1 >= t.size()) {
      out.push_back(t[i]);
      continue;
    }
    char what = t[++i];
    if (what == 'I') out += id;
    else if (what == 'P') out += pid;
    else if (what == 'T') out += start;
    else if (what == 'C') out += created;
    else out.push_back(kHole), out.push_back(what);
  }
  return out;
}

unsigned long long StartTime(int pid) {
  std::string text;
  int e;
  if (!ReadFile("/proc/" + std::to_string(pid) + "/stat", &text, &e)) return 0;
  size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  const char* p = text.c_str() + close + 2;
  for (int field = 0; field < 19 && p; field++) {
    p = strchr(p, ' ');
    if (p) ++p;
  }
  return p ? strtoull(p, nullptr, 10) : 0;
}

struct Undo {
  std::string state_dir;
  std::vector<std::string> cgroups;  // levels made here, outermost first
  Spawned child;
  void Run() {
    if (child.pidfd.valid()) {
      sys_pidfd_send_signal(child.pidfd.get(), SIGKILL);
      siginfo_t info;
      waitid(P_PID, child.pid, &info, WEXITED);
    }
    for (auto it = cgroups.rbegin(); it != cgroups.rend(); ++it) rmdir(it->c_str());
    if (!state_dir.empty()) {
      unlink((state_dir + "/exec.fifo").c_str());
      unlink((state_dir + "/state.json").c_str());
      unlink((state_dir + "/calls").c_str());
      rmdir(state_dir.c_str());
    }
  }
};

// The create itself, from a decoded entry with the id filled in. False: undone, go to Node.
bool CreateFrom(const WireValue& e, const CreateArgs& a, Undo* undo) {
  const WireValue* plan_v = e.Field("plan");
  const WireValue* checks = e.Field("checks");
  const WireValue* cgroups = e.Field("cgroups");
  const WireValue* nsfds = e.Field("nsfds");
  const WireValue* ctl = e.Field("v2controllers");
  if (!plan_v || plan_v->type != 'o' || !checks || !cgroups || !nsfds || !ctl) return false;
  bool dir;
  if (!IsDir(a.bundle, &dir) || !dir) return false;
  if (access(Str(e, "rootfs").c_str(), F_OK) != 0) return false;
  for (const auto& c : checks->items)
    if (!IsDir(Str(c, "path"), &dir) || dir != Bool(c, "dir")) return false;
  for (int fd = 3; fd < 3 + a.preserve_fds; fd++)
    if (fcntl(fd, F_GETFD) < 0) return false;

  // As lib/oci/state.ts ensureRoot and create.ts: the root, then the container's own directory.
  std::string root_dir = a.root;
  for (size_t at = 1; at <= root_dir.size(); at++)
    if (at == root_dir.size() || root_dir[at] == '/') mkdir(root_dir.substr(0, at).c_str(), 0711);
  const std::string dir_path = a.root + "/" + a.id;
  if (mkdir(dir_path.c_str(), 0711) < 0) return false;  // EEXIST: Node says "container with id exists"
  undo->state_dir = dir_path;
  const std::string fifo = dir_path + "/exec.fifo";
  // Writable by the init whatever its ids, as create.ts makes it (mknod's mode went through the umask).
  if (mknod(fifo.c_str(), S_IFIFO | 0622, 0) < 0 || chmod(fifo.c_str(), 0622) < 0) return false;
  UniqueFd fifo_fd(open(fifo.c_str(), O_PATH | O_CLOEXEC));
  if (!fifo_fd.valid()) return false;
  std::vector<UniqueFd> opened;
  std::vector<std::pair<int, int>> fd_holes = {{kFifoFdHole, fifo_fd.get()}};
  for (const auto& n : nsfds->items) {
    UniqueFd fd(open(Str(n, "path").c_str(), O_RDONLY | O_CLOEXEC));
    const WireValue* hole = n.Field("fd");
    if (!fd.valid() || !hole || hole->type != 'n') return false;
    fd_holes.push_back({static_cast<int>(hole->num), fd.get()});
    opened.push_back(std::move(fd));
  }

  std::vector<std::string> controllers;
  for (const auto& c : ctl->items) controllers.push_back(c.str);
  for (const auto& c : cgroups->items) {
    const CgroupDirEntry entry = {Str(c, "mountpoint"), Str(c, "mountRoot"), Str(c, "dir"), Bool(c, "cpuset"), Bool(c, "v2")};
    Failure ignored;  // any failure hands the create to Node, which words it
    if (!MakeCgroupDir(entry, controllers, &undo->cgroups, &ignored)) return false;
  }

  const WireValue* writes = e.Field("writes");
  if (!writes) return false;
  for (const auto& w : writes->items) {
    int err;
    std::string program;
    if (w.Field("devices")) {
      // A cgroup-v2 device program (lib/cgroup/devices.ts's compact form), as the addon sets it.
      const char* step;
      if (!WireSource().Bytes(w, "devices", &program)) return false;
      if (SetDeviceProgram(Str(w, "dir"), reinterpret_cast<const uint8_t*>(program.data()), program.size(), &step) != 0) return false;
    } else if (!WriteFile(Str(w, "file"), Str(w, "value").c_str(), &err)) {
      return false;
    }
  }

  Plan plan;
  std::string bad;
  if (!ParsePlan(WireSource(), *plan_v, &plan, &bad)) return false;
  for (auto& op : plan.ops)
    for (const auto& h : fd_holes)
      if (op.fd == h.first) op.fd = h.second;
  plan.preserve_fds = a.preserve_fds;
  SpawnFailure fail;
  if (!SpawnProcess(plan, &undo->child, &fail)) return false;

  const std::string pid = std::to_string(undo->child.pid);
  const std::string start = std::to_string(StartTime(undo->child.pid));
  const std::string created = IsoNow();
  if (!WriteAtomic(dir_path + "/state.json", FillHoles(Str(e, "state"), a.id, pid, start, created))) return false;
  const std::string calls = Str(e, "calls");
  if (!calls.empty() && !WriteAtomic(dir_path + "/calls", FillHoles(calls, a.id, pid, start, created))) return false;
  if (!a.pid_file.empty() && !WriteAtomic(a.pid_file, pid)) return false;
  return true;
}

}  // namespace

std::string IsoNow() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char b[40];
  size_t n = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(b + n, sizeof b - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return b;
}


bool ParseCreate(int argc, char** argv, int i, CreateArgs* a) {
  std::string bundle = ".", pid_file;
  std::vector<std::string> rest;
  auto value = [&](const std::string& arg, const char* name, std::string* out) {
    for (const std::string& f : {std::string("-") + name, std::string("--") + name}) {
      if (arg == f) {
        if (i + 1 >= argc) return false;
        *out = argv[++i];
        return true;
      }
      if (arg.compare(0, f.size() + 1, f + "=") == 0) return *out = arg.substr(f.size() + 1), true;
    }
    return false;
  };
  for (; i < argc; i++) {
    std::string arg = argv[i], fds;
    if (arg.size() < 2 || arg[0] != '-') {
      rest.push_back(arg);
      continue;
    }
    if (value(arg, "bundle", &bundle) || value(arg, "b", &bundle) || value(arg, "pid-file", &pid_file)) continue;
    if (value(arg, "preserve-fds", &fds)) {
      if (fds.empty() || fds.find_first_not_of("0123456789") != std::string::npos || fds.size() > 4) return false;
      a->preserve_fds = atoi(fds.c_str());
      continue;
    }
    // Ignored by Node's create as well.
    if (arg == "--no-pivot" || arg == "-no-pivot" || arg == "--no-new-keyring" || arg == "-no-new-keyring") continue;
    return false;  // --console-socket, --pidfd-socket, anything else: Node's
  }
  if (rest.size() != 1) return false;
  a->id = rest[0];
  a->bundle = Resolve(bundle);
  if (!pid_file.empty()) a->pid_file = Resolve(pid_file);
  return !a->bundle.empty();
}

bool CreateFromCache(const CreateArgs& a, int* key_fd) {
  *key_fd = -1;
  PlanKey key;
  if (!MakePlanKey(a.root, a.bundle, a.id, &key)) return false;
  WireValue entry;
  bool param = false;
  if (LoadPlanEntry(key, &entry, &param)) {
    if (param) FillIdDeep(&entry, a.id);
    Undo undo;
    if (CreateFrom(entry, a, &undo)) {
      // The init stays: this process exits and the caller (containerd's shim) inherits it.
      undo.child.pidfd.reset();
      return true;
    }
    undo.Run();
  }
  *key_fd = PlanKeyFd(key);
  return false;
}

}  // namespace nsbox::runc
