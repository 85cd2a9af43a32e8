#include "oom-watch.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

namespace nsbox {
namespace {

bool Exists(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

// The v1 way to hear of OOM: "<eventfd> <fd of memory.oom_control>" into cgroup.event_control.
UniqueFd RegisterV1(const std::string& dir) {
  UniqueFd efd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  UniqueFd control(open((dir + "/memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd events(open((dir + "/cgroup.event_control").c_str(), O_WRONLY | O_CLOEXEC));
  if (!efd.valid() || !control.valid() || !events.valid()) return UniqueFd();
  std::string line = std::to_string(efd.get()) + " " + std::to_string(control.get());
  if (write(events.get(), line.data(), line.size()) < 0) return UniqueFd();
  return efd;  // the registration lives as long as the eventfd
}

}  // namespace

void OomWatch::Open(const Plan& plan) {
  std::vector<std::string> dirs;
  if (!plan.cgroup_path.empty()) dirs.push_back(plan.cgroup_path);
  for (const std::string& tasks : plan.cgroup_tasks) {
    size_t slash = tasks.rfind('/');
    if (slash != std::string::npos) dirs.push_back(tasks.substr(0, slash));
  }
  for (const std::string& dir : dirs) {
    if (Exists(dir + "/memory.oom_control")) {
      counter_ = dir + "/memory.oom_control";
      v1_ = true;
      notify_ = RegisterV1(dir);
      return;
    }
    if (Exists(dir + "/memory.events")) {
      counter_ = dir + "/memory.events";
      notify_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
      // cgroupfs signals IN_MODIFY on memory.events whenever one of its counters changes.
      if (notify_.valid() && inotify_add_watch(notify_.get(), counter_.c_str(), IN_MODIFY) < 0) notify_.reset();
      return;
    }
  }
}

long long OomWatch::Count() const {
  if (counter_.empty()) return 0;
  UniqueFd fd(open(counter_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return 0;
  char buf[1024];
  ssize_t n = read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // "oom_kill N" on a line of its own (not "oom_kill_disable", nor v2's "oom_group_kill").
  for (const char* p = buf; p != nullptr && *p != '\0'; p = strchr(p, '\n'), p = p != nullptr ? p + 1 : nullptr) {
    if (strncmp(p, "oom_kill ", 9) == 0) return strtoll(p + 9, nullptr, 10);
  }
  return 0;
}

void OomWatch::Drain() {
  char buf[4096];
  while (read(notify_.get(), buf, sizeof buf) > 0) {
  }
}

}  // namespace nsbox
