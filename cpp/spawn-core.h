// The spawn core, without N-API: clone3 + parent-side setup (id maps, cgroup v1 placement), then
// release the child and wait for its execve. Used by the addon (on the thread pool) and nsbox-shim.
#pragma once
#include <sys/types.h>

#include <string>

#include "plan.h"
#include "unique-fd.h"

namespace nsbox {

struct SpawnFailure {
  int err = 0;
  std::string syscall, path;
  // For a failed step of the child: what it was doing ("pivot_root /x"); empty otherwise.
  std::string what;

  // "<what | syscall path>: CODE (strerror)": the message of the NsboxError the addon throws.
  std::string Message() const;
};

struct Spawned {
  pid_t pid = 0;
  UniqueFd pidfd;
  // The plan's net helper (pasta) that serves the container, still our child; 0 when none.
  pid_t net_helper = 0;
};

// Runs the plan. True with *out filled once the child's execve succeeded; false with *fail filled
// (the child, if any, reaped).
bool SpawnProcess(const Plan& plan, Spawned* out, SpawnFailure* fail);

// Ends a net helper that RunNetHelper started (SIGKILL, reaped) and removes its pid file, so its
// host ports are free on return: a failed spawn's, or (nsbox-shim) that of a container that exited.
void EndNetHelper(const Plan& plan, pid_t helper);

// Connects to the stream socket at `path` and sends `message` (not empty) with `fd` attached
// (SCM_RIGHTS) on its first byte, then closes the connection: the console socket's pty master, a
// seccomp agent's listener.
bool SendFdTo(const std::string& path, int fd, const std::string& message, SpawnFailure* f);

// "EINVAL" for EINVAL; the number as text if the libc has no name for it.
std::string ErrnoName(int err);

}  // namespace nsbox
