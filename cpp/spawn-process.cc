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
  UniqueFd pidfd, in, out, err;
};

// Writes all of `input` to the child's stdin and closes it. The pipe is made big enough first when
// it can be (the child reads its stdin only once it runs); a child gone before it read is EPIPE
// (Node ignores SIGPIPE), which is for its exit status and report to tell, not this call.
void Feed(UniqueFd fd, const std::string& input) {
  if (input.size() > 65536) fcntl(fd.get(), F_SETPIPE_SZ, static_cast<int>(input.size()));
  size_t off = 0;
  while (off < input.size()) {
    ssize_t n = write(fd.get(), input.data() + off, input.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Returns 0, or the errno with *syscall naming the call that failed. `moved` are fds the child
// gets as 3, 4, ... (CLOEXEC copies, all above 3 + moved.size(), so that no dup2 onto 3 + i
// overwrites a source still to be copied).
// `keep_stdin`: the stdin pipe's write end is returned (s->in) instead of fed with `input`.
int Run(const std::string& file, std::vector<std::string>& argv, std::vector<std::string>& envp, const std::string* input,
        const std::vector<UniqueFd>& moved, bool setsid, bool keep_stdin, Spawned* s, const char** syscall) {
  *syscall = "pipe2";
  int in[2] = {-1, -1}, out[2], err[2];
  if ((input != nullptr || keep_stdin) && pipe2(in, O_CLOEXEC) < 0) return errno;
  UniqueFd in_r(in[0]), in_w(in[1]);
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
  // setsid: a session of its own (no terminal, no process group of ours), as a daemon's double fork
  // would give it, in one spawn.
  short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (setsid ? POSIX_SPAWN_SETSID : 0);
  if (rc == 0) rc = posix_spawnattr_setflags(&setup.attr, flags);
  if (rc == 0) {
    rc = in_r.valid() ? posix_spawn_file_actions_adddup2(&setup.actions, in_r.get(), 0)
                          : posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
  }
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&setup.actions, out_w.get(), 1);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&setup.actions, err_w.get(), 2);
  for (size_t i = 0; rc == 0 && i < moved.size(); i++) rc = posix_spawn_file_actions_adddup2(&setup.actions, moved[i].get(), static_cast<int>(3 + i));
  std::vector<char*> argv_p = Pointers(argv), envp_p = Pointers(envp);
  pid_t pid = -1;
  if (rc == 0) rc = posix_spawn(&pid, file.c_str(), &setup.actions, &setup.attr, argv_p.data(), envp_p.data());
  if (rc != 0) return rc;
  in_r.reset();
  if (keep_stdin) s->in = std::move(in_w);
  else if (input != nullptr) Feed(std::move(in_w), *input);
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
  SpawnProcessWorker(Napi::Env env, std::string file, std::vector<std::string> argv, std::vector<std::string> envp, bool has_input,
                     std::string input, std::vector<UniqueFd> keep, bool setsid, bool keep_stdin)
      : Napi::AsyncWorker(env, "nsbox.spawnProcess"),
        file_(std::move(file)),
        argv_(std::move(argv)),
        envp_(std::move(envp)),
        has_input_(has_input),
        input_(std::move(input)),
        keep_(std::move(keep)),
        setsid_(setsid),
        keep_stdin_(keep_stdin),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { err_ = Run(file_, argv_, envp_, has_input_ ? &input_ : nullptr, keep_, setsid_, keep_stdin_, &spawned_, &syscall_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      deferred_.Reject(MakeSysError(env, err_, syscall_, file_).Value());
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("pid", Napi::Number::New(env, spawned_.pid));
    r.Set("pidfd", Napi::Number::New(env, spawned_.pidfd.release()));
    if (spawned_.in.valid()) r.Set("stdin", Napi::Number::New(env, spawned_.in.release()));
    r.Set("stdout", Napi::Number::New(env, spawned_.out.release()));
    r.Set("stderr", Napi::Number::New(env, spawned_.err.release()));
    deferred_.Resolve(r);
  }

 private:
  std::string file_;
  std::vector<std::string> argv_, envp_;
  bool has_input_;
  std::string input_;
  std::vector<UniqueFd> keep_;
  bool setsid_;
  bool keep_stdin_;
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  const char* syscall_ = "";
  Spawned spawned_;
};

// spawnProcess(file, argv, envp, input?, keepFds?, options?) -> Promise<{ pid, pidfd, stdout, stderr }>: the child's
// stdin is a pipe that gets `input` (a Buffer) and then EOF, or /dev/null without it; its stdout and stderr the write ends of two pipes whose (CLOEXEC) read ends are
// returned; `keepFds` (this process's fds, still its own after the call) become the child's 3, 4, ...; every signal at its default and none blocked. The child is this process's:
// watchExit(pidfd) reaps it. A failed execve rejects with its errno (syscall 'posix_spawn'). options.setsid: the child
// starts in a new session (setsid). options.stdinPipe (without input): the child's stdin is a pipe whose (CLOEXEC) write end
// is returned as `stdin`, for the caller to write and close when it will.
Napi::Value SpawnProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env,
                  info.Length() >= 3 && info[0].IsString() && info[1].IsArray() && info[2].IsArray() && (info.Length() < 4 || info[3].IsUndefined() || info[3].IsBuffer()) &&
                      (info.Length() < 5 || info[4].IsUndefined() || info[4].IsArray()) && (info.Length() < 6 || info[5].IsUndefined() || info[5].IsObject()),
                  "spawnProcess(file, argv, envp, input?: Buffer, keepFds?: number[], options?: { setsid?: boolean })");
  bool has_input = info.Length() >= 4 && info[3].IsBuffer();
  std::string input;
  if (has_input) {
    Napi::Buffer<char> b = info[3].As<Napi::Buffer<char>>();
    input.assign(b.Data(), b.Length());
  }
  // Copied here, on the caller's thread: the caller may close its own fds once this returns.
  std::vector<UniqueFd> keep;
  if (info.Length() >= 5 && info[4].IsArray()) {
    Napi::Array a = info[4].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      NSBOX_CHECK_ARG(env, v.IsNumber() && v.As<Napi::Number>().Int32Value() >= 0, "spawnProcess: keepFds must be fds");
      int fd = v.As<Napi::Number>().Int32Value();
      int m = fcntl(fd, F_DUPFD_CLOEXEC, static_cast<int>(3 + a.Length()));
      if (m < 0) {
        MakeSysError(env, errno, "fcntl", "", "spawnProcess: fd " + std::to_string(fd)).ThrowAsJavaScriptException();
        return env.Undefined();
      }
      keep.emplace_back(m);
    }
  }
  bool setsid = info.Length() >= 6 && info[5].IsObject() && info[5].As<Napi::Object>().Get("setsid").ToBoolean().Value();
  bool keep_stdin = info.Length() >= 6 && info[5].IsObject() && info[5].As<Napi::Object>().Get("stdinPipe").ToBoolean().Value();
  NSBOX_CHECK_ARG(env, !(keep_stdin && has_input), "spawnProcess: stdinPipe and input exclude each other");
  auto* worker = new SpawnProcessWorker(env, info[0].As<Napi::String>().Utf8Value(), StringList(info[1]), StringList(info[2]), has_input, std::move(input),
                                        std::move(keep), setsid, keep_stdin);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

}  // namespace

void InitSpawnProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnProcess", Napi::Function::New(env, SpawnProcess, "spawnProcess"));
}

}  // namespace nsbox
