// nsbox-runc's per-call commands in C++ (see main.cc): a container as the `calls` file that
// TypeScript compiled at create describes it (lib/oci/call-file.ts has the format), its status read
// from the kernel each time, and the cgroup operations those commands need.
#pragma once
#include <string>
#include <vector>

#include "../cgroup-ops.h"

namespace nsbox::runc {

// Its cgroup (procs, freezer, kill_dir, rmdirs) as ../cgroup-ops.h's CgroupSet.
struct Calls : CgroupSet {
  int pid = 0;
  unsigned long long start = 0;
  std::vector<std::string> node;  // commands handed to Node (hooks to run)
  std::string state;  // runc's state JSON with \x01P (pid) and \x01S (status)
  bool HandsToNode(const std::string& cmd) const;
};

// Reads <dir>/calls; false when there is none (the command then goes to Node).
bool LoadCalls(const std::string& dir, Calls* out, Failure* err);

enum class Status { kCreated, kRunning, kPaused, kStopped };
const char* StatusName(Status s);
bool StatusOf(const std::string& dir, const Calls& c, Status* out, Failure* err);

// The commands; each returns false with `err` set on failure.
bool State(const std::string& dir, const Calls& c, std::string* out, Failure* err);
bool Start(const std::string& dir, const Calls& c, Failure* err);
bool Kill(const std::string& dir, const Calls& c, int signo, bool all, Failure* err);
bool Delete(const std::string& dir, const std::string& id, const Calls& c, bool force, Failure* err);
bool Pause(const std::string& dir, const std::string& id, const Calls& c, bool pause, Failure* err);
bool PsJson(const std::string& dir, const Calls& c, std::string* out, Failure* err);

}  // namespace nsbox::runc
