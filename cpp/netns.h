// Network namespaces for the thread pool: run something with the calling thread inside one (setns
// of that thread only, then back), and the failure shape the network exports share.
#pragma once
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>

#include <string>

#include "unique-fd.h"

namespace nsbox {

struct NetFailure {
  int err = 0;
  std::string what;  // "RTM_NEWLINK veth nsv1234 (peer eth0)", "setns /run/nsbox/netns/ID"
};

inline bool Failed(NetFailure* f, int err, const std::string& what) {
  f->err = err;
  f->what = what;
  return false;
}

// Runs fn() (-> bool) with the calling thread in the network namespace at `path` ('' = as it is).
// A thread that cannot go back to its own namespace is not left to run other work: abort.
template <typename Fn>
bool InNetns(const std::string& path, NetFailure* f, Fn fn) {
  if (path.empty()) return fn();
  UniqueFd target(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target.valid()) return Failed(f, errno, "open " + path);
  UniqueFd self(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!self.valid()) return Failed(f, errno, "open /proc/thread-self/ns/net");
  if (setns(target.get(), CLONE_NEWNET) < 0) return Failed(f, errno, "setns " + path);
  bool ok = fn();
  if (setns(self.get(), CLONE_NEWNET) < 0) abort();
  return ok;
}

}  // namespace nsbox
