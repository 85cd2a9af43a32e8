// OOM kills in the container's memory cgroup: the kernel's count (the `oom_kill` line of v2's
// memory.events, v1's memory.oom_control) and its notification, an fd for the supervisor's epoll:
// inotify on memory.events (v2), an eventfd registered in cgroup.event_control (v1).
#pragma once
#include <string>

#include "../plan.h"
#include "../unique-fd.h"

namespace nsbox {

class OomWatch {
 public:
  // Finds the memory cgroup among the plan's cgroups. Without one (no cgroup, or no memory
  // controller in it) there is nothing to watch: fd() is -1 and Count() 0.
  void Open(const Plan& plan);
  int fd() const { return notify_.get(); }
  // The cgroup's OOM kills so far (0 when it cannot be read: the cgroup is gone).
  long long Count() const;
  // Takes the notification that woke the loop.
  void Drain();
  // v1 notifies as the OOM starts, before its kill: the count may grow only a moment later.
  bool NotifiesEarly() const { return v1_; }

 private:
  std::string counter_;  // memory.events or memory.oom_control
  UniqueFd notify_;
  bool v1_ = false;
};

}  // namespace nsbox
