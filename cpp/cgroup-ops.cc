#include "cgroup-ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "unique-fd.h"

namespace nsbox {
namespace {

constexpr long kTimeoutMs = 10000;

long NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void SleepMs(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

void ParsePids(const std::string& text, std::vector<int>* out) {
  const char* p = text.c_str();
  while (*p) {
    char* end;
    long v = strtol(p, &end, 10);
    if (end == p) {
      ++p;
      continue;
    }
    if (v > 0) out->push_back(static_cast<int>(v));
    p = end;
  }
}

// `dir` and its sub-cgroups, deepest first.
void WalkDeepestFirst(const std::string& dir, std::vector<std::string>* out) {
  DIR* d = opendir(dir.c_str());
  if (!d) {
    if (errno != ENOENT) out->push_back(dir);
    return;
  }
  while (struct dirent* e = readdir(d)) {
    if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    WalkDeepestFirst(dir + "/" + e->d_name, out);
  }
  closedir(d);
  out->push_back(dir);
}

std::vector<int> AllProcs(const CgroupSet& c) {
  std::vector<std::string> dirs;
  for (const auto& d : c.procs) WalkDeepestFirst(d, &dirs);
  return Procs(dirs);
}

// Polls `done` from 5 ms up to 50 ms apart, as lib/cgroup/kill.ts's waitUntil.
template <typename F>
bool WaitUntil(F done, const std::string& what, Failure* err) {
  long deadline = NowMs() + kTimeoutMs;
  for (long delay = 5;; delay = std::min(50L, delay * 2)) {
    if (done()) return true;
    if (NowMs() > deadline) {
      *err = {"timed out after 10000 ms waiting for " + what};
      return false;
    }
    SleepMs(delay);
  }
}

bool FlatKeyed(const std::string& file, const char* key, long* value) {
  std::string text;
  int e;
  if (!ReadFile(file, &text, &e)) return false;
  std::string k = std::string(key) + " ";
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    if (text.compare(at, k.size(), k) == 0) {
      *value = strtol(text.c_str() + at + k.size(), nullptr, 10);
      return true;
    }
    at = nl + 1;
  }
  return false;
}

bool RmdirTree(const std::string& dir, Failure* err) {
  if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
  if (errno != EBUSY && errno != ENOTEMPTY) {
    *err = SysFailure("rmdir", dir, errno);
    return false;
  }
  std::vector<std::string> dirs;
  WalkDeepestFirst(dir, &dirs);
  for (const auto& d : dirs) {
    long deadline = NowMs() + 5000;
    while (rmdir(d.c_str()) < 0 && errno != ENOENT) {
      if (errno == EBUSY && NowMs() < deadline) {
        SleepMs(20);
        continue;
      }
      *err = SysFailure("rmdir", d, errno);
      return false;
    }
  }
  return true;
}

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\n"), b = s.find_last_not_of(" \t\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// lib/cgroup/cgroupfs.ts mkdirLevels: the levels below stop, parents that exist kept; the leaf
// must be new (an existing one is adopted by Node's create, which knows how).
bool MkdirLevels(const std::string& stop, const std::string& dir, std::vector<std::string>* created) {
  if (dir.size() <= stop.size() + 1 || dir.compare(0, stop.size() + 1, stop + "/") != 0) return false;
  for (int attempt = 1; attempt <= 5; attempt++) {
    std::string cur = stop;
    size_t at = stop.size() + 1;
    bool retry = false;
    while (at <= dir.size()) {
      size_t sl = dir.find('/', at);
      if (sl == std::string::npos) sl = dir.size();
      cur = dir.substr(0, sl);
      at = sl + 1;
      const bool leaf = sl == dir.size();
      if (!leaf && access(cur.c_str(), F_OK) == 0) continue;
      if (mkdir(cur.c_str(), 0755) == 0) {
        created->push_back(cur);
        // cgroupfs.ts markMade: only a parent level so marked is nsbox's to remove later.
        if (!leaf && lsetxattr(cur.c_str(), "user.nsbox.made", "1", 1, 0) < 0) lsetxattr(cur.c_str(), "trusted.nsbox.made", "1", 1, 0);
        continue;
      }
      if (errno == EEXIST && !leaf) continue;
      if (errno == ENOENT) {
        retry = true;
        break;
      }
      return false;
    }
    if (!retry) return true;
  }
  return false;
}

// lib/cgroup/v1/cpuset.ts initCpusetV1: empty cpus and mems of our levels copied from the parent.
bool InitCpuset(const std::string& mountpoint, const std::string& dir, const std::vector<std::string>& created) {
  std::string cur = mountpoint;
  size_t at = mountpoint.size() + 1;
  while (at <= dir.size()) {
    size_t sl = dir.find('/', at);
    if (sl == std::string::npos) sl = dir.size();
    std::string part = dir.substr(at, sl - at);
    std::string parent = cur;
    cur = dir.substr(0, sl);
    at = sl + 1;
    bool ours = cur == dir || std::find(created.begin(), created.end(), cur) != created.end() || part.find("nsbox") != std::string::npos;
    if (!ours) continue;
    for (const char* f : {"/cpuset.cpus", "/cpuset.mems"}) {
      std::string have, from;
      int e;
      if (!ReadFile(cur + f, &have, &e)) return false;
      if (!Trim(have).empty()) continue;
      if (!ReadFile(parent + f, &from, &e) || !WriteFile(cur + f, Trim(from).c_str(), &e)) return false;
    }
  }
  return true;
}

// lib/cgroup/v2.ts #enableControllers: in each nsbox-named ancestor, the listed controllers it offers.
bool EnableControllers(const std::string& mountpoint, const std::string& mount_root, const std::string& dir, const std::vector<std::string>& controllers) {
  std::string parent_dir = dir.substr(0, dir.rfind('/'));
  if (parent_dir.size() <= mountpoint.size()) return true;
  std::string rel = parent_dir.substr(mountpoint.size() + 1);
  std::string cur = mountpoint, cgroup_path = mount_root == "/" ? "" : mount_root;
  size_t at = 0;
  while (at <= rel.size()) {
    size_t sl = rel.find('/', at);
    if (sl == std::string::npos) sl = rel.size();
    std::string part = rel.substr(at, sl - at);
    at = sl + 1;
    cur += "/" + part;
    cgroup_path += "/" + part;
    if (cgroup_path.find("nsbox") == std::string::npos) continue;
    std::string available, enabled;
    int e;
    ReadFile(cur + "/cgroup.controllers", &available, &e);
    ReadFile(cur + "/cgroup.subtree_control", &enabled, &e);
    auto has = [](const std::string& list, const std::string& c) { return (" " + Trim(list) + " ").find(" " + c + " ") != std::string::npos; };
    for (const auto& c : controllers) {
      if (!has(available, c) || has(enabled, c)) continue;
      if (!WriteFile(cur + "/cgroup.subtree_control", ("+" + c).c_str(), &e) && e != EBUSY && e != ENOENT && e != EINVAL && e != EOPNOTSUPP) return false;
    }
  }
  return true;
}

}  // namespace

Failure SysFailure(const char* op, const std::string& path, int e) {
  const char* name = strerrorname_np(e);
  return {std::string(op) + " " + path + ": " + (name ? name : strerror(e)), e};
}

bool ReadFile(const std::string& path, std::string* out, int* err) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    *err = errno;
    return false;
  }
  char buf[8192];
  out->clear();
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = errno;
      return false;
    }
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
  }
}

bool WriteFile(const std::string& path, const char* text, int* err) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || write(fd.get(), text, strlen(text)) < 0) {
    *err = errno;
    return false;
  }
  return true;
}

std::vector<int> Procs(const std::vector<std::string>& dirs) {
  std::vector<int> pids;
  for (const auto& d : dirs) {
    std::string text;
    int e;
    if (ReadFile(d + "/cgroup.procs", &text, &e)) ParsePids(text, &pids);
  }
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

bool Frozen(const CgroupSet& c) {
  if (c.freezer.empty()) return false;
  std::string text;
  int e;
  if (!c.freezer_v2) return ReadFile(c.freezer + "/freezer.state", &text, &e) && text.compare(0, 6, "THAWED") != 0;
  long v = 0;
  if (FlatKeyed(c.freezer + "/cgroup.events", "frozen", &v) && v == 1) return true;
  return ReadFile(c.freezer + "/cgroup.freeze", &text, &e) && text.compare(0, 1, "1") == 0;
}

bool SetFrozen(const CgroupSet& c, bool frozen, Failure* err) {
  int e;
  if (!c.freezer_v2) {
    std::string file = c.freezer + "/freezer.state";
    const char* want = frozen ? "FROZEN" : "THAWED";
    if (!WriteFile(file, want, &e)) {
      *err = SysFailure("write", file, e);
      return false;
    }
    return WaitUntil([&] {
      std::string text;
      int re;
      if (ReadFile(file, &text, &re) && text.compare(0, strlen(want), want) == 0) return true;
      WriteFile(file, want, &re);
      return false;
    }, c.freezer + " to become " + want, err);
  }
  std::string file = c.freezer + "/cgroup.freeze";
  if (!WriteFile(file, frozen ? "1" : "0", &e)) {
    *err = SysFailure("write", file, e);
    return false;
  }
  return WaitUntil([&] {
    long v = 0;
    FlatKeyed(c.freezer + "/cgroup.events", "frozen", &v);
    return (v == 1) == frozen;
  }, c.freezer + (frozen ? " to freeze" : " to thaw"), err);
}

bool KillAll(const CgroupSet& c, Failure* err) {
  int e;
  // cgroup.kill takes everything placed there in one step; the loop catches what is only in v1.
  if (!c.kill_dir.empty() && !WriteFile(c.kill_dir + "/cgroup.kill", "1", &e) && e != ENOENT && e != ENODEV) {
    *err = SysFailure("write", c.kill_dir + "/cgroup.kill", e);
    return false;
  }
  Failure inner;
  bool ok = WaitUntil([&] {
    if (AllProcs(c).empty()) return true;
    // A freeze that fails only lets a fork slip by: the next round catches it.
    Failure ignored;
    if (!c.freezer.empty()) SetFrozen(c, true, &ignored);
    for (int pid : AllProcs(c)) kill(pid, SIGKILL);
    if (!c.freezer.empty() && !SetFrozen(c, false, &inner)) return true;
    return AllProcs(c).empty();
  }, "the processes of " + (c.procs.empty() ? std::string("the container") : c.procs[0]) + " to exit", err);
  if (!inner.msg.empty()) {
    *err = inner;
    return false;
  }
  return ok;
}

bool RemoveCgroups(const CgroupSet& c, Failure* err) {
  for (const auto& chain : c.rmdirs) {
    if (!RmdirTree(chain[0], err)) return false;
    for (size_t i = 1; i < chain.size(); i++) {
      // cgroupfs.ts madeByNsbox: a parent level is climbed only while it carries nsbox's mark (the
      // calls file may be older than the level: one another tool made since is not nsbox's).
      if (lgetxattr(chain[i].c_str(), "user.nsbox.made", nullptr, 0) < 0 && lgetxattr(chain[i].c_str(), "trusted.nsbox.made", nullptr, 0) < 0) break;
      if (rmdir(chain[i].c_str()) == 0) continue;
      if (errno == EBUSY || errno == ENOTEMPTY || errno == ENOENT) break;
      *err = SysFailure("rmdir", chain[i], errno);
      return false;
    }
  }
  return true;
}

bool MakeCgroupDir(const CgroupDirEntry& e, const std::vector<std::string>& controllers, std::vector<std::string>* created, Failure* err) {
  size_t before = created->size();
  if (!MkdirLevels(e.mountpoint, e.dir, created)) {
    *err = SysFailure("mkdir", e.dir, errno);
    return false;
  }
  std::vector<std::string> mine(created->begin() + static_cast<long>(before), created->end());
  if (e.cpuset && !InitCpuset(e.mountpoint, e.dir, mine)) {
    *err = SysFailure("cpuset of", e.dir, errno);
    return false;
  }
  if (e.v2 && !EnableControllers(e.mountpoint, e.mount_root, e.dir, controllers)) {
    *err = SysFailure("subtree_control above", e.dir, errno);
    return false;
  }
  return true;
}

}  // namespace nsbox
