// cgroup directories made, emptied and removed in C++, on the exact directories TypeScript compiled
// (lib/cgroup/native-ops.ts): the same steps as lib/cgroup's drivers. Made: each level below the
// mountpoint (parents kept, marked as nsbox's), v1 cpusets filled from the parent, v2 controllers
// enabled in nsbox-named parents. Emptied: cgroup.kill, else freeze + SIGKILL + thaw until empty.
// Removed: sub-cgroups deepest first, EBUSY retried, nsbox-made parents climbed. Used by
// nsbox-runc's per-call path (cpp/runc/) and by the addon (cpp/cgroup-dirs.cc: the quick run).
#pragma once
#include <string>
#include <vector>

namespace nsbox {

// A failure told the way runc tells it (and lib/errors words errno): "<op> <path>: <CODE>".
struct Failure {
  std::string msg;
  int err = 0;  // the errno, where a system call failed
};

// A container's cgroup as its removal sees it.
struct CgroupSet {
  std::vector<std::string> procs;  // directories whose cgroup.procs list its processes
  std::string freezer;
  bool freezer_v2 = false;
  std::string kill_dir;  // a cgroup2 directory with cgroup.kill
  // Each chain: the container's directory, then the nsbox-named parents to climb.
  std::vector<std::vector<std::string>> rmdirs;
};

// One directory to make (lib/cgroup/native-ops.ts CgroupDirEntry).
struct CgroupDirEntry {
  std::string mountpoint;
  std::string mount_root;
  std::string dir;
  bool cpuset = false;
  bool v2 = false;
};

// The pids in the listed directories (not their sub-cgroups), sorted, each once.
std::vector<int> Procs(const std::vector<std::string>& dirs);
bool Frozen(const CgroupSet& c);
bool SetFrozen(const CgroupSet& c, bool frozen, Failure* err);
bool KillAll(const CgroupSet& c, Failure* err);
bool RemoveCgroups(const CgroupSet& c, Failure* err);

// Makes the entry's directory (lib/cgroup/cgroupfs.ts mkdirLevels, v1/cpuset.ts initCpusetV1,
// v2.ts #enableControllers with `controllers`); the levels it made are appended to `created`,
// outermost first, also when it fails (the caller removes them). The leaf must be new.
bool MakeCgroupDir(const CgroupDirEntry& e, const std::vector<std::string>& controllers, std::vector<std::string>* created, Failure* err);

Failure SysFailure(const char* op, const std::string& path, int err);
bool ReadFile(const std::string& path, std::string* out, int* err);
bool WriteFile(const std::string& path, const char* text, int* err);

}  // namespace nsbox
