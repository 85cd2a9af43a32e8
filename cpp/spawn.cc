// spawn(plan) and enter(plan): clone3 on the thread pool, parent-side setup, then release the child.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "addon-data.h"
#include "errors.h"
#include "plan.h"
#include "raw-syscall.h"
#include "syscalls.h"
#include "unique-fd.h"

namespace nsbox {
namespace {

// ---- plan parsing (main thread) ----

std::string Str(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}
double Num(const Napi::Object& o, const char* key, double def = 0) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}
bool Bool(const Napi::Object& o, const char* key, bool def = false) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}
std::vector<std::string> StrList(const Napi::Object& o, const char* key) {
  std::vector<std::string> out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (e.IsString()) out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

bool ParseOpKind(const std::string& s, OpKind* k) {
  static const struct { const char* name; OpKind kind; } table[] = {
      {"mount", OpKind::kMount},       {"bind", OpKind::kBind},       {"setattr", OpKind::kSetAttr},
      {"umount", OpKind::kUmount},     {"mkdir", OpKind::kMkdir},     {"touch", OpKind::kTouch},
      {"mknod", OpKind::kMknod},       {"symlink", OpKind::kSymlink}, {"pivot_root", OpKind::kPivotRoot},
      {"chroot", OpKind::kChroot},     {"sethostname", OpKind::kSethostname},
      {"chdir", OpKind::kChdir},       {"write", OpKind::kWriteFile}, {"setids", OpKind::kSetIds},
      {"chmod", OpKind::kChmod},       {"lo_up", OpKind::kLoopbackUp}, {"unshare", OpKind::kUnshare},
      {"mask", OpKind::kMask},         {"readonly", OpKind::kReadonly}, {"setns", OpKind::kSetns},
      {"capbset", OpKind::kCapBset},   {"capset", OpKind::kCapSet},    {"ambient", OpKind::kAmbient},
      {"prctl", OpKind::kPrctl},       {"seccomp", OpKind::kSeccomp},
  };
  for (const auto& e : table) {
    if (s == e.name) {
      *k = e.kind;
      return true;
    }
  }
  return false;
}

// lib/runtime builds and validates the plan; here we only copy it into C++ memory.
bool ParsePlan(const Napi::Object& o, Plan* plan, std::string* bad) {
  plan->clone_flags = static_cast<uint64_t>(Num(o, "cloneFlags"));
  plan->argv_s = StrList(o, "argv");
  plan->envp_s = StrList(o, "env");
  plan->path_env = Str(o, "path");
  if (plan->path_env.empty()) plan->path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (plan->argv_s.empty()) {
    *bad = "plan.argv must not be empty";
    return false;
  }
  Napi::Value stdio = o.Get("stdio");
  if (stdio.IsArray()) {
    Napi::Array a = stdio.As<Napi::Array>();
    for (uint32_t i = 0; i < 3 && i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      plan->stdio[i] = v.IsNumber() ? v.As<Napi::Number>().Int32Value() : -1;
    }
  }
  plan->setsid = Bool(o, "setsid", true);
  plan->ctty = Bool(o, "ctty");
  plan->pdeathsig = Bool(o, "pdeathsig", true);
  plan->uid_map = Str(o, "uidMap");
  plan->gid_map = Str(o, "gidMap");
  plan->deny_setgroups = Bool(o, "denySetgroups");
  plan->uid_mapper = Str(o, "uidMapper");
  plan->gid_mapper = Str(o, "gidMapper");
  plan->cgroup_path = Str(o, "cgroupPath");
  plan->cgroup_procs = StrList(o, "cgroupProcs");
  plan->enter_pidfd = static_cast<int>(Num(o, "enterPidfd", -1));
  plan->enter_flags = static_cast<uint64_t>(Num(o, "enterFlags"));

  Napi::Value ops = o.Get("ops");
  if (ops.IsArray()) {
    Napi::Array a = ops.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsObject()) {
        *bad = "plan.ops[" + std::to_string(i) + "] is not an object";
        return false;
      }
      Napi::Object e = v.As<Napi::Object>();
      Op op;
      if (!ParseOpKind(Str(e, "op"), &op.kind)) {
        *bad = "plan.ops[" + std::to_string(i) + "]: unknown op '" + Str(e, "op") + "'";
        return false;
      }
      op.a = Str(e, "source");
      if (op.a.empty()) op.a = Str(e, "value");
      op.b = Str(e, "target");
      op.c = Str(e, "fstype");
      op.d = Str(e, "data");
      Napi::Value filter = e.Get("filter");
      if (filter.IsBuffer()) {
        Napi::Buffer<char> b = filter.As<Napi::Buffer<char>>();
        op.d.assign(b.Data(), b.Length());
      }
      op.flags = static_cast<unsigned long>(Num(e, "flags"));
      op.set = static_cast<uint64_t>(Num(e, "set"));
      op.clr = static_cast<uint64_t>(Num(e, "clear"));
      if (op.kind == OpKind::kCapBset || op.kind == OpKind::kAmbient) op.set = static_cast<uint64_t>(Num(e, "caps"));
      if (op.kind == OpKind::kCapSet) {
        op.set = static_cast<uint64_t>(Num(e, "effective"));
        op.clr = static_cast<uint64_t>(Num(e, "permitted"));
        op.dev = static_cast<uint64_t>(Num(e, "inheritable"));
      }
      if (op.kind == OpKind::kPrctl) {
        op.flags = static_cast<unsigned long>(Num(e, "option"));
        op.set = static_cast<uint64_t>(Num(e, "arg"));
      }
      op.mode = static_cast<unsigned>(Num(e, "mode"));
      if (op.kind == OpKind::kMknod) {
        op.dev = static_cast<uint64_t>(makedev(static_cast<unsigned>(Num(e, "major")),
                                               static_cast<unsigned>(Num(e, "minor"))));
      }
      op.recursive = Bool(e, "recursive");
      op.optional = Bool(e, "optional");
      op.uid = static_cast<uint32_t>(Num(e, "uid"));
      op.fd = static_cast<int>(Num(e, "fd", -1));
      op.gid = static_cast<uint32_t>(Num(e, "gid"));
      Napi::Value groups = e.Get("groups");
      op.set_groups = groups.IsArray();
      if (op.set_groups) {
        Napi::Array g = groups.As<Napi::Array>();
        for (uint32_t j = 0; j < g.Length(); j++) op.groups.push_back(g.Get(j).As<Napi::Number>().Uint32Value());
      }
      plan->ops.push_back(std::move(op));
    }
  }
  plan->Finish();
  return true;
}

// ---- parent side (thread pool) ----

struct Failure {
  int err = 0;
  int32_t step = 0;
  bool in_child = false;
  std::string syscall, path;
};

// Runs `helper PID inside outside count ...` (newuidmap / newgidmap) with the map's numbers.
bool RunMapper(const std::string& helper, pid_t pid, const std::string& map, Failure* f) {
  std::vector<std::string> args{helper, std::to_string(pid)};
  std::string word;
  for (char c : map) {
    if (c == ' ' || c == '\n') {
      if (!word.empty()) args.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) args.push_back(word);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t child;
  int err = posix_spawn(&child, helper.c_str(), nullptr, nullptr, argv.data(), envp);
  int status = 0;
  if (err == 0) {
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
    err = EPERM;
  }
  f->err = err;
  f->syscall = helper.substr(helper.rfind('/') + 1);
  f->path = helper;
  return false;
}

bool WriteAll(const std::string& file, const std::string& data, Failure* f) {
  UniqueFd fd(open(file.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    f->err = errno;
    f->syscall = "write";
    f->path = file;
    return false;
  }
  return true;
}

ssize_t ReadFull(int fd, void* buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, static_cast<char*>(buf) + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? n : static_cast<ssize_t>(got);
    got += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

void ReapNow(pid_t pid) {
  while (waitpid(pid, nullptr, __WALL) < 0 && errno == EINTR) {
  }
}

// A stack for a CLONE_VM child, with a guard page below it. Unmapped only once the child has
// exec'd (it then has memory of its own) or has been reaped.
class ChildStack {
 public:
  static constexpr size_t kSize = 256 * 1024;
  ChildStack() {
    void* p = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return;
    mprotect(p, 4096, PROT_NONE);
    base_ = p;
  }
  ~ChildStack() {
    if (base_ != nullptr) munmap(base_, kSize);
  }
  ChildStack(const ChildStack&) = delete;
  ChildStack& operator=(const ChildStack&) = delete;
  bool valid() const { return base_ != nullptr; }
  uint64_t base() const { return reinterpret_cast<uint64_t>(base_); }

 private:
  void* base_ = nullptr;
};

// Runs fn(arg) in a new process. Where we have the trampoline, the child shares our memory
// (CLONE_VM, like posix_spawn): no page tables are copied, so the cost does not grow with the
// Node heap and the other threads are not stalled on the memory map lock while it is copied.
long CloneRun(CloneArgs* args, ChildStack* stack, int (*fn)(void*), void* arg) {
#if NSBOX_HAVE_CLONE_VM
  if (stack != nullptr && stack->valid()) {
    args->flags |= CLONE_VM;
    args->stack = stack->base();
    args->stack_size = ChildStack::kSize;
    return nsbox_clone3_run(args, sizeof(CloneArgs), fn, arg);
  }
#else
  (void)stack;
#endif
  long r = sys_clone3(args);
  if (r < 0) return -errno;
  if (r == 0) raw::Exit(fn(arg));
  return r;
}

struct ChildArgs {
  const Plan* plan;
  int sync_fd, err_fd, pid_fd;
  // enter: the grandchild's clone arguments, prepared by the parent.
  CloneArgs* grandchild_args;
};

int ChildMain(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  RunChild(*a->plan, a->sync_fd, a->err_fd, a->pid_fd);
}

// enter: setns() into a pid namespace only affects children, so this first child joins the
// namespaces and clones the real process as our sibling (CLONE_PARENT): it is then our child.
int EnterMain(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  raw::Sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);  // see RunChild: a copy of Node, not to be reached
  long r = raw::Sys(SYS_setns, a->plan->enter_pidfd, a->plan->enter_flags);
  ChildError e{kStepSetns, static_cast<int32_t>(-r)};
  if (r >= 0) {
    // Its own copy of the arguments: the kernel writes nothing back without CLONE_PIDFD, but the
    // grandchild must not depend on this process's stack after it exits.
    CloneArgs args = *a->grandchild_args;
    r = CloneRun(&args, nullptr, ChildMain, a);
    if (r > 0) {
      pid_t gp = static_cast<pid_t>(r);
      raw::Sys(SYS_write, a->pid_fd, &gp, sizeof gp);
      return 0;
    }
    e = ChildError{kStepClone, static_cast<int32_t>(-r)};
  }
  raw::Sys(SYS_write, a->err_fd, &e, sizeof e);
  return 1;
}

class SpawnWorker : public Napi::AsyncWorker {
 public:
  SpawnWorker(Napi::Env env, Plan plan)
      : Napi::AsyncWorker(env, "nsbox.spawn"), plan_(std::move(plan)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { Run(); }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      std::string syscall = fail_.syscall, path = fail_.path;
      std::string what;
      if (fail_.in_child) what = DescribeStep(plan_, fail_.step, &syscall, &path);
      deferred_.Reject(MakeSysError(env, fail_.err, syscall, path, what).Value());
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("pid", Napi::Number::New(env, pid_));
    r.Set("pidfd", Napi::Number::New(env, pidfd_.release()));
    deferred_.Resolve(r);
  }

 private:
  void Fail(int err, const char* syscall, const std::string& path = "") {
    failed_ = true;
    fail_.err = err;
    fail_.syscall = syscall;
    fail_.path = path;
  }

  void Run() {
    UniqueFd cgroup_fd;
    if (!plan_.cgroup_path.empty()) {
      cgroup_fd.reset(open(plan_.cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!cgroup_fd.valid()) return Fail(errno, "open", plan_.cgroup_path);
    }
    int sync[2], errp[2], pidp[2] = {-1, -1};
    if (pipe2(sync, O_CLOEXEC) < 0) return Fail(errno, "pipe2");
    UniqueFd sync_r(sync[0]), sync_w(sync[1]);
    if (pipe2(errp, O_CLOEXEC) < 0) return Fail(errno, "pipe2");
    UniqueFd err_r(errp[0]), err_w(errp[1]);
    bool entering = plan_.enter_pidfd >= 0;
    if (entering && pipe2(pidp, O_CLOEXEC) < 0) return Fail(errno, "pipe2");
    UniqueFd pid_r(pidp[0]), pid_w(pidp[1]);

    CloneArgs args{};
    args.exit_signal = SIGCHLD;
    if (cgroup_fd.valid()) {
      args.flags |= CLONE_INTO_CGROUP;
      args.cgroup = static_cast<uint64_t>(cgroup_fd.get());
    }
    ChildStack stack;
    ChildArgs child{&plan_, sync_r.get(), err_w.get(), -1, nullptr};
    pid_t pid;
    if (!entering) {
      int pidfd = -1;
      args.flags |= plan_.clone_flags | CLONE_PIDFD;
      args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
      long r = CloneRun(&args, &stack, ChildMain, &child);
      if (r < 0) return Fail(static_cast<int>(-r), "clone3");
      pid = static_cast<pid_t>(r);
      pidfd_.reset(pidfd);
    } else {
      // The grandchild's exit signal comes from its creator under CLONE_PARENT (clone3 wants 0 here).
      args.flags |= CLONE_PARENT;
      args.exit_signal = 0;
      child.pid_fd = pid_w.get();
      child.grandchild_args = &args;
      // Entering: memory of its own (no CLONE_VM), so that it can make itself non-dumpable without
      // making the Node process so (dumpability belongs to the memory map).
      CloneArgs first{};
      first.exit_signal = SIGCHLD;
      long r = CloneRun(&first, nullptr, EnterMain, &child);
      if (r < 0) return Fail(static_cast<int>(-r), "clone3");
      ReapNow(static_cast<pid_t>(r));
      pid_w.reset();
      pid_t gp = 0;
      if (ReadFull(pid_r.get(), &gp, sizeof gp) != sizeof gp) {
        err_w.reset();
        ChildError e{};
        if (ReadFull(err_r.get(), &e, sizeof e) == sizeof e) {
          failed_ = true;
          fail_.in_child = true;
          fail_.step = e.step;
          fail_.err = e.err;
          return;
        }
        return Fail(EIO, "enter");
      }
      pid = gp;
      pidfd_.reset(sys_pidfd_open(pid, 0));
      if (!pidfd_.valid()) {
        int err = errno;
        kill(pid, SIGKILL);
        ReapNow(pid);
        return Fail(err, "pidfd_open");
      }
    }
    pid_ = pid;
    sync_r.reset();
    err_w.reset();

    auto abort_child = [&]() {
      sys_pidfd_send_signal(pidfd_.get(), SIGKILL);
      ReapNow(pid);
      pidfd_.reset();
    };
    const std::string proc = "/proc/" + std::to_string(pid);
    if (!plan_.uid_mapper.empty() && !RunMapper(plan_.uid_mapper, pid, plan_.uid_map, &fail_)) {
      failed_ = true;
      return abort_child();
    }
    if (!plan_.gid_mapper.empty() && !RunMapper(plan_.gid_mapper, pid, plan_.gid_map, &fail_)) {
      failed_ = true;
      return abort_child();
    }
    if (plan_.uid_mapper.empty() && !plan_.uid_map.empty() && !WriteAll(proc + "/uid_map", plan_.uid_map, &fail_)) {
      failed_ = true;
      return abort_child();
    }
    if (plan_.deny_setgroups && !WriteAll(proc + "/setgroups", "deny", &fail_)) {
      failed_ = true;
      return abort_child();
    }
    if (plan_.gid_mapper.empty() && !plan_.gid_map.empty() && !WriteAll(proc + "/gid_map", plan_.gid_map, &fail_)) {
      failed_ = true;
      return abort_child();
    }
    const std::string pidtext = std::to_string(pid);
    for (const auto& file : plan_.cgroup_procs) {
      if (!WriteAll(file, pidtext, &fail_)) {
        failed_ = true;
        return abort_child();
      }
    }
    char go = 1;
    if (write(sync_w.get(), &go, 1) != 1) {
      int err = errno;
      abort_child();
      return Fail(err, "write", "sync pipe");
    }
    sync_w.reset();
    // A successful execve closes the CLOEXEC error pipe: EOF means "started".
    ChildError e{};
    ssize_t n = ReadFull(err_r.get(), &e, sizeof e);
    if (n == sizeof e) {
      ReapNow(pid);
      pidfd_.reset();
      failed_ = true;
      fail_.in_child = true;
      fail_.step = e.step;
      fail_.err = e.err;
    } else if (n != 0) {
      int err = n < 0 ? errno : EIO;
      abort_child();
      Fail(err, "read", "error pipe");
    }
  }

  Plan plan_;
  Napi::Promise::Deferred deferred_;
  UniqueFd pidfd_;
  pid_t pid_ = 0;
  bool failed_ = false;
  Failure fail_;
};

Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsObject(), "spawn(plan): plan must be an object");
  Plan plan;
  std::string bad;
  if (!ParsePlan(info[0].As<Napi::Object>(), &plan, &bad)) {
    Napi::TypeError::New(env, bad).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* worker = new SpawnWorker(env, std::move(plan));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// pipe() -> [readFd, writeFd], both close-on-exec: stdio for a container's process.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    MakeSysError(env, errno, "pipe2", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, fds[0]));
  a.Set(1u, Napi::Number::New(env, fds[1]));
  return a;
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, Spawn, "spawn"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
}

}  // namespace nsbox
