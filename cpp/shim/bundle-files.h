// The files nsbox-shim writes in its bundle, named and shaped as lib/runtime/bundle.ts (their zod
// schemas) says; test/integration/shim-bundle.test.ts reads what this writes through them.
#pragma once
#include <sys/types.h>

#include <string>

namespace nsbox {
namespace bundle {

constexpr const char* kPlan = "plan.bin";
constexpr const char* kShimPid = "shim.pid";
constexpr const char* kState = "state.json";
constexpr const char* kExit = "exit.json";
constexpr const char* kLog = "container.log";
constexpr const char* kAttach = "attach.sock";
constexpr const char* kEvents = "events.sock";
constexpr const char* kHealth = "health.json";

// RFC 3339 with nanoseconds, UTC: what docker's logs and inspect show.
std::string Timestamp();

// temp + fsync + rename: a reader sees the old file or the new one, never a part. Without `sync`,
// no fsync: for a file whose loss in a crash does not matter.
void WriteAtomic(int dir, const char* name, const std::string& data, bool sync = true);

// state.json (ShimStateSchema), without its newline.
std::string StateJson(const char* status, pid_t pid, int restart_count, const std::string& started_at);

// exit.json (ShimExitSchema), without its newline. `code`, `status`: si_code and si_status as waitid gave them.
std::string ExitJson(int code, int status, bool oom_killed);
// A restart that could not start: exit code 127 and the reason.
std::string StartFailureJson(const std::string& error);

// Field 22 of /proc/self/stat (clock ticks after boot: with the pid, this process's identity), as
// text; empty when it cannot be read.
std::string SelfStartTime();

// The shim's report on stdout when it fails (ShimReportSchema's error):
// {"error":{"message","code","errno","syscall","path"}}.
std::string ErrorJson(const std::string& message, int err, const std::string& syscall, const std::string& path);

}  // namespace bundle
}  // namespace nsbox
