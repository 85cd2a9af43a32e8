#include "bundle-files.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../spawn-core.h"
#include "../unique-fd.h"
#include "plan-wire.h"

namespace nsbox {
namespace bundle {
namespace {

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : std::to_string(sig);
}

}  // namespace

std::string Timestamp() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

void WriteAtomic(int dir, const char* name, const std::string& data, bool sync) {
  std::string tmp = std::string(".") + name + ".tmp";
  UniqueFd fd(openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return;
  if (write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()) || (sync && fdatasync(fd.get()) < 0)) {
    unlinkat(dir, tmp.c_str(), 0);
    return;
  }
  fd.reset();
  renameat(dir, tmp.c_str(), dir, name);
}

std::string StateJson(const char* status, pid_t pid, int restart_count, const std::string& started_at) {
  return std::string("{\"status\":\"") + status + "\",\"pid\":" + std::to_string(pid) + ",\"shimPid\":" + std::to_string(getpid()) +
         ",\"restartCount\":" + std::to_string(restart_count) +
         ",\"startedAt\":" + (started_at.empty() ? "null" : "\"" + started_at + "\"") + "}";
}

std::string ExitJson(int code, int status, bool oom_killed) {
  bool exited = code == CLD_EXITED;
  return std::string("{\"exitCode\":") + (exited ? std::to_string(status) : "null") +
         ",\"signal\":" + (exited ? "null" : "\"" + SignalName(status) + "\"") + ",\"finishedAt\":\"" + Timestamp() +
         "\",\"oomKilled\":" + (oom_killed ? "true" : "false") + "}";
}

std::string StartFailureJson(const std::string& error) {
  return "{\"exitCode\":127,\"signal\":null,\"finishedAt\":\"" + Timestamp() + "\",\"oomKilled\":false,\"error\":" + JsonQuote(error) + "}";
}

std::string SelfStartTime() {
  UniqueFd fd(open("/proc/self/stat", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  char buf[1024];
  ssize_t n = read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  // Field 2 (the command, in parentheses) may hold spaces and ")": count from after the last one.
  const char* p = strrchr(buf, ')');
  for (int field = 2; p != nullptr && field < 22; field++) p = strchr(p + 1, ' ');
  if (p == nullptr) return "";
  std::string out;
  for (p++; *p >= '0' && *p <= '9'; p++) out += *p;
  return out;
}

std::string ErrorJson(const std::string& message, int err, const std::string& syscall, const std::string& path) {
  std::string o = "{\"error\":{\"message\":" + JsonQuote(message);
  if (err != 0) o += ",\"code\":" + JsonQuote(ErrnoName(err)) + ",\"errno\":" + std::to_string(err);
  if (!syscall.empty()) o += ",\"syscall\":" + JsonQuote(syscall);
  if (!path.empty()) o += ",\"path\":" + JsonQuote(path);
  return o + "}}";
}

}  // namespace bundle
}  // namespace nsbox
