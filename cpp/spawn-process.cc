// spawnProcess: a helper program (nsbox-shim) started without a fork of this large process.
// Node's child_process forks the whole daemon (its page tables copied, then thrown away by the
// execve): ~17 ms of the event loop's time per start here. posix_spawn (glibc: clone with CLONE_VM
// and CLONE_VFORK, on a small stack of its own; the child allocates nothing before its execve)
// shares the memory instead and returns once the execve has succeeded or failed.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "addon-data.h"
#include "errors.h"
#include "syscalls.h"
#include "unique-fd.h"

namespace nsbox {
namespace {

std::vector<std::string> StringList(const Napi::Value& v) {
  std::vector<std::string> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  return out;
}

std::vector<char*> Pointers(std::vector<std::string>& list) {
  std::vector<char*> out;
  for (std::string& s : list) out.push_back(&s[0]);
  out.push_back(nullptr);
  return out;
}

// Closes what posix_spawn's attributes and file actions hold, however the call ends.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  bool attr_ok = false, actions_ok = false;
  ~SpawnSetup() {
    if (attr_ok) posix_spawnattr_destroy(&attr);
    if (actions_ok) posix_spawn_file_actions_destroy(&actions);
  }
};

// spawnProcess(file, argv, envp) -> { pid, pidfd, stdout, stderr }: the child's stdin is
// /dev/null, its stdout and stderr the write ends of two pipes whose (CLOEXEC) read ends are
// returned; every signal at its default and none blocked (as libuv does for a child). The child is
// this process's: watchExit(pidfd) reaps it. A failed execve is the throw of its errno.
Napi::Value SpawnProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 3 && info[0].IsString() && info[1].IsArray() && info[2].IsArray(),
                  "spawnProcess(file, argv, envp)");
  std::string file = info[0].As<Napi::String>().Utf8Value();
  std::vector<std::string> argv = StringList(info[1]), envp = StringList(info[2]);
  std::vector<char*> argv_p = Pointers(argv), envp_p = Pointers(envp);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0) {
    MakeSysError(env, errno, "pipe2", file).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (pipe2(err, O_CLOEXEC) < 0) {
    MakeSysError(env, errno, "pipe2", file).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  UniqueFd err_r(err[0]), err_w(err[1]);

  SpawnSetup s;
  int rc = posix_spawnattr_init(&s.attr);
  s.attr_ok = rc == 0;
  if (rc == 0) rc = posix_spawn_file_actions_init(&s.actions);
  s.actions_ok = s.attr_ok && rc == 0;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&s.attr, &all);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&s.attr, &none);
  if (rc == 0) rc = posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (rc == 0) rc = posix_spawn_file_actions_addopen(&s.actions, 0, "/dev/null", O_RDONLY, 0);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&s.actions, out_w.get(), 1);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&s.actions, err_w.get(), 2);
  pid_t pid = -1;
  if (rc == 0) rc = posix_spawn(&pid, file.c_str(), &s.actions, &s.attr, argv_p.data(), envp_p.data());
  if (rc != 0) {
    MakeSysError(env, rc, "posix_spawn", file).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Ours and not reaped until watchExit does: the pid cannot name another process yet.
  int pidfd = sys_pidfd_open(pid, 0);
  if (pidfd < 0) {
    int e = errno;
    kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    MakeSysError(env, e, "pidfd_open", file).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, pid));
  result.Set("pidfd", Napi::Number::New(env, pidfd));
  result.Set("stdout", Napi::Number::New(env, out_r.release()));
  result.Set("stderr", Napi::Number::New(env, err_r.release()));
  return result;
}

}  // namespace

void InitSpawnProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnProcess", Napi::Function::New(env, SpawnProcess, "spawnProcess"));
}

}  // namespace nsbox
