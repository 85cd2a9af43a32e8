// The cgroup operations of nsbox-runc's per-call path, on the exact directories the calls file
// names: the same steps as lib/cgroup's drivers (cgroup.kill, else freeze + SIGKILL + thaw until
// empty; sub-cgroups removed deepest first, EBUSY retried; nsbox-named parents climbed).
#pragma once
#include <string>
#include <vector>

#include "container.h"

namespace nsbox::runc {

// The pids in the listed directories (not their sub-cgroups), sorted, each once.
std::vector<int> Procs(const std::vector<std::string>& dirs);
bool Frozen(const Calls& c);
bool SetFrozen(const Calls& c, bool frozen, Failure* err);
bool KillAll(const Calls& c, Failure* err);
bool RemoveCgroups(const Calls& c, Failure* err);

// errno text as lib/errors words it: "<op> <path>: <CODE>".
Failure SysFailure(const char* op, const std::string& path, int err);
bool ReadFile(const std::string& path, std::string* out, int* err);
bool WriteFile(const std::string& path, const char* text, int* err);

}  // namespace nsbox::runc
