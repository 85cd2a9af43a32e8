// spawnProcess: a helper program (nsbox-shim) started without a fork of this large process.
// Node's child_process forks the whole daemon (its page tables copied, then thrown away by the
// execve): ~17 ms of the event loop's time per start here. posix_spawn (glibc: clone with CLONE_VM
// and CLONE_VFORK, on a small stack of its own; the child allocates nothing before its execve)
// shares the memory instead, and it runs on the thread pool, so that the event loop does not wait
// for the execve either.
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

// What posix_spawn's attributes and file actions hold, released however the call ends.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  bool attr_ok = false, actions_ok = false;
  ~SpawnSetup() {
    if (attr_ok) posix_spawnattr_destroy(&attr);
    if (actions_ok) posix_spawn_file_actions_destroy(&actions);
  }
};

struct Spawned {
  pid_t pid = -1;
  UniqueFd pidfd, out, err;
};

// Returns 0, or the errno with *syscall naming the call that failed.
int Run(const std::string& file, std::vector<std::string>& argv, std::vector<std::string>& envp, Spawned* s, const char** syscall) {
  *syscall = "pipe2";
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0) return errno;
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (pipe2(err, O_CLOEXEC) < 0) return errno;
  UniqueFd err_r(err[0]), err_w(err[1]);

  *syscall = "posix_spawn";
  SpawnSetup setup;
  int rc = posix_spawnattr_init(&setup.attr);
  setup.attr_ok = rc == 0;
  if (rc == 0) rc = posix_spawn_file_actions_init(&setup.actions);
  setup.actions_ok = setup.attr_ok && rc == 0;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  // As libuv does for a child: no signal ignored (SIGPIPE is, in Node) or blocked across the execve.
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&setup.attr, &all);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&setup.attr, &none);
  if (rc == 0) rc = posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (rc == 0) rc = posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&setup.actions, out_w.get(), 1);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&setup.actions, err_w.get(), 2);
  std::vector<char*> argv_p = Pointers(argv), envp_p = Pointers(envp);
  pid_t pid = -1;
  if (rc == 0) rc = posix_spawn(&pid, file.c_str(), &setup.actions, &setup.attr, argv_p.data(), envp_p.data());
  if (rc != 0) return rc;
  // Ours and not reaped until watchExit does it: the pid cannot name another process yet.
  int pidfd = sys_pidfd_open(pid, 0);
  if (pidfd < 0) {
    int e = errno;
    kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    *syscall = "pidfd_open";
    return e;
  }
  s->pid = pid;
  s->pidfd.reset(pidfd);
  s->out = std::move(out_r);
  s->err = std::move(err_r);
  return 0;
}

class SpawnProcessWorker : public Napi::AsyncWorker {
 public:
  SpawnProcessWorker(Napi::Env env, std::string file, std::vector<std::string> argv, std::vector<std::string> envp)
      : Napi::AsyncWorker(env, "nsbox.spawnProcess"),
        file_(std::move(file)),
        argv_(std::move(argv)),
        envp_(std::move(envp)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { err_ = Run(file_, argv_, envp_, &spawned_, &syscall_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      deferred_.Reject(MakeSysError(env, err_, syscall_, file_).Value());
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("pid", Napi::Number::New(env, spawned_.pid));
    r.Set("pidfd", Napi::Number::New(env, spawned_.pidfd.release()));
    r.Set("stdout", Napi::Number::New(env, spawned_.out.release()));
    r.Set("stderr", Napi::Number::New(env, spawned_.err.release()));
    deferred_.Resolve(r);
  }

 private:
  std::string file_;
  std::vector<std::string> argv_, envp_;
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  const char* syscall_ = "";
  Spawned spawned_;
};

// spawnProcess(file, argv, envp) -> Promise<{ pid, pidfd, stdout, stderr }>: the child's stdin is
// /dev/null, its stdout and stderr the write ends of two pipes whose (CLOEXEC) read ends are
// returned; every signal at its default and none blocked. The child is this process's:
// watchExit(pidfd) reaps it. A failed execve rejects with its errno (syscall 'posix_spawn').
Napi::Value SpawnProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 3 && info[0].IsString() && info[1].IsArray() && info[2].IsArray(),
                  "spawnProcess(file, argv, envp)");
  auto* worker = new SpawnProcessWorker(env, info[0].As<Napi::String>().Utf8Value(), StringList(info[1]), StringList(info[2]));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

}  // namespace

void InitSpawnProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnProcess", Napi::Function::New(env, SpawnProcess, "spawnProcess"));
}

}  // namespace nsbox
