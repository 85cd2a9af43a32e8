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

// Runs fn() (-> bool) with the calling thread in the namespace of type `nstype` at `path` ('' = as
// it is); `self` names the thread's own one to go back to. For a pid namespace only the thread's
// children are affected (pid_for_children), and going back is joining its active one again.
// A thread that cannot go back to its own namespace is not left to run other work: abort.
template <typename Fn>
bool InNamespace(const std::string& path, int nstype, const char* self_link, NetFailure* f, Fn fn) {
  if (path.empty()) return fn();
  UniqueFd target(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target.valid()) return Failed(f, errno, "open " + path);
  UniqueFd self(open(self_link, O_RDONLY | O_CLOEXEC));
  if (!self.valid()) return Failed(f, errno, std::string("open ") + self_link);
  if (setns(target.get(), nstype) < 0) return Failed(f, errno, "setns " + path);
  bool ok = fn();
  if (setns(self.get(), nstype) < 0) abort();
  return ok;
}

// The network namespace at `path`, as InNamespace.
template <typename Fn>
bool InNetns(const std::string& path, NetFailure* f, Fn fn) {
  return InNamespace(path, CLONE_NEWNET, "/proc/thread-self/ns/net", f, fn);
}

}  // namespace nsbox
