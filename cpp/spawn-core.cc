// The spawn core (see spawn-core.h): no N-API, so that nsbox-shim runs the same code as the addon.
#include "spawn-core.h"

#include <sys/mount.h>  // first: before linux/ headers that define the same names

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fd-message.h"
#include "netns.h"
#include "plan-parse.h"
#include "raw-syscall.h"
#include "syscalls.h"

namespace nsbox {
namespace {

// Runs `helper PID inside outside count ...` (newuidmap / newgidmap) with the map's numbers.
bool RunMapper(const std::string& helper, pid_t pid, const std::string& map, SpawnFailure* f) {
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

// Runs the plan's net helper for the child `pid` and waits until it writes to fd 3 (ready), or
// closes it without writing (failed: its exit status is the error). The helper stays our child;
// whoever spawned it reaps it (a pidfd from its pid file; the shim reaps every child).
bool RunNetHelper(const Plan& plan, pid_t pid, pid_t* helper, SpawnFailure* f) {
  std::vector<std::string> args = plan.net_helper;
  for (auto& a : args) {
    if (a == "{pid}") a = std::to_string(pid);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  const std::string& file = plan.net_helper[0];
  auto fail = [&](int err, const char* syscall, const std::string& path) {
    f->err = err;
    f->syscall = syscall;
    f->path = path;
    return false;
  };
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return fail(errno, "pipe2", file);
  UniqueFd r(p[0]), w(p[1]);
  pid_t self = getpid();
  pid_t child = fork();
  if (child < 0) return fail(errno, "fork", file);
  if (child == 0) {
    // async-signal-safe calls only: the parent may be multi-threaded
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != self) _exit(127);
    if (w.get() == 3) {
      fcntl(3, F_SETFD, 0);
    } else if (dup2(w.get(), 3) < 0) {
      _exit(127);
    }
    sys_close_range(4, ~0U, 0);
    // stdio on /dev/null (the caller's may be closed; the helper logs to its own file), and the
    // signal mask of a plain process (a thread-pool thread blocks signals; SIGTERM must end it)
    int null = open("/dev/null", O_RDWR);
    for (int i = 0; null >= 0 && i < 3; i++) {
      if (null != i) dup2(null, i);
    }
    if (null > 2) close(null);
    // and default dispositions: Node ignores SIGPIPE, which execve keeps (and pasta 2023-03
    // takes an ignored SIGPIPE for a failure to set up its signals)
    for (int sig = 1; sig < NSIG; sig++) {
      if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(file.c_str(), argv.data(), envp);
    _exit(127);
  }
  w.reset();
  char buf[32];
  ssize_t n;
  while ((n = read(r.get(), buf, sizeof buf)) < 0 && errno == EINTR) {
  }
  if (n <= 0) {
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    // exit 127: not executable; any other status: it failed (it logs why to its log file)
    return fail(WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ENOENT : EIO, "net helper", file);
  }
  if (!plan.net_helper_pid_file.empty()) {
    const std::string text = std::to_string(child) + "\n";
    UniqueFd pf(open(plan.net_helper_pid_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!pf.valid() || write(pf.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      int err = errno;
      kill(child, SIGKILL);
      while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
      }
      return fail(err, "write", plan.net_helper_pid_file);
    }
  }
  *helper = child;
  return true;
}

bool WriteAll(const std::string& file, const std::string& data, SpawnFailure* f) {
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

// The listener fd a NEW_LISTENER seccomp op sends over `sock`, received once the child has sent
// it or got past the point where it would have (an error, its hold for start, or its execve, which
// the error pipe shows): false with *f filled only for a failed recvmsg.
bool ReceiveListener(int sock, int err_r, UniqueFd* out, SpawnFailure* f) {
  pollfd p[2] = {{sock, POLLIN, 0}, {err_r, POLLIN, 0}};
  while (poll(p, 2, -1) < 0) {
    if (errno != EINTR) {
      f->err = errno;
      f->syscall = "poll";
      f->path = "seccomp listener";
      return false;
    }
  }
  char byte;
  FdMessage m(&byte, 1);
  ssize_t n;
  while ((n = recvmsg(sock, &m.msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n < 0 && errno != EAGAIN) {
    f->err = errno;
    f->syscall = "recvmsg";
    f->path = "seccomp listener";
    return false;
  }
  int fd = m.Received(n);
  if (fd >= 0) out->reset(fd);
  return true;
}

struct ChildArgs {
  const Plan* plan;
  int sync_fd, err_fd, pid_fd, seccomp_sock;
  // enter: the grandchild's clone arguments, prepared by the parent.
  CloneArgs* grandchild_args;
  // enter: the first child shares our memory (EnterMain).
  bool shares_memory;
  // A new container's: fds of plan->cgroup_tasks' files (RunChild joins them); null when entering.
  const int* cgroup_fds;
};

int ChildMain(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  RunChild(*a->plan, a->sync_fd, a->err_fd, a->pid_fd, a->seccomp_sock, a->cgroup_fds);
}

// enter: setns() into a pid namespace only affects children, so this first child joins the
// namespaces and clones the real process as our sibling (CLONE_PARENT): it is then our child.
// cgroup v1 has no CLONE_INTO_CGROUP, and moving a process in through `tasks` is never refused by
// pids.max: this child joins the container's cgroups first ("0" is itself, plan.h's cgroup_tasks),
// still in the host's mount namespace, so that its fork of the exec'd process is charged there and
// fails at the limit, as runc's exec does. For that moment it takes a pid of the container's too.
long JoinCgroups(const Plan& plan, int32_t* step) {
  for (size_t i = 0; i < plan.cgroup_tasks.size(); i++) {
    *step = kStepJoinCgroup - static_cast<int32_t>(i);
    long fd = raw::Sys(SYS_openat, AT_FDCWD, plan.cgroup_tasks[i].c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fd;
    long r = raw::Sys(SYS_write, fd, "0", 1);
    raw::Sys(SYS_close, fd);
    if (r < 0) return r;
  }
  return 0;
}

// The first child of an enter, on a stack of its own in our memory (CLONE_VM) when the container
// has a pid namespace: it joins that namespace only for its children, so no process of the
// container can name it (ptrace, /proc/PID/mem), and it runs raw syscalls only, with every signal
// blocked, until it exits; the process it clones has memory of its own and makes itself
// non-dumpable (RunChild). Otherwise (a container in the host's pid namespace) it is a copy of
// Node that makes itself non-dumpable, since the container's processes can name it.
int EnterMain(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  if (!a->shares_memory) raw::Sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);  // see RunChild
  int32_t step = kStepSetns;
  long r = JoinCgroups(*a->plan, &step);
  if (r >= 0) {
    step = kStepSetns;
    r = raw::Sys(SYS_setns, a->plan->enter_pidfd, a->plan->enter_flags);
  }
  ChildError e{step, static_cast<int32_t>(-r)};
  if (r >= 0) {
    // Its own copy of the arguments: the kernel writes nothing back without CLONE_PIDFD, but the
    // grandchild must not depend on this process's stack after it exits.
    CloneArgs args = *a->grandchild_args;
    // A raw clone3 (libc's wrapper would set errno, which is our parent thread's when we share its
    // memory): the new process has a copy of this memory and stack, and returns here with 0.
    r = raw::Sys(SYS_clone3, &args, sizeof args);
    if (r == 0) raw::Exit(ChildMain(a));
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

}  // namespace

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
      {"rlimit", OpKind::kRlimit},     {"umask", OpKind::kUmask},      {"await_start", OpKind::kAwaitStart},
      {"personality", OpKind::kPersonality}, {"idmap_bind", OpKind::kIdmapBind},
  };
  for (const auto& e : table) {
    if (s == e.name) {
      *k = e.kind;
      return true;
    }
  }
  return false;
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : std::to_string(err);
}

std::string SpawnFailure::Message() const {
  return (what.empty() ? syscall + (path.empty() ? "" : " " + path) : what) + ": " + ErrnoName(err) + " (" +
         strerror(err) + ")";
}

namespace {

bool Fail(SpawnFailure* f, int err, const char* syscall, const std::string& path = "") {
  f->err = err;
  f->syscall = syscall;
  f->path = path;
  return false;
}

// A step of the child failed: name it after the op.
bool ChildFailed(const Plan& plan, const ChildError& e, SpawnFailure* f) {
  f->err = e.err;
  f->syscall.clear();
  f->path.clear();
  f->what = DescribeStep(plan, e.step, &f->syscall, &f->path);
  return false;
}

// The short-lived owner of a user namespace made for idmapped mounts: it waits to be killed.
int HoldUserns(void*) {
  raw::Sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  for (;;) raw::Sys(SYS_ppoll, nullptr, 0, nullptr, nullptr, 0);
}

// A user namespace with these maps, as an fd of /proc/PID/ns/user: a child is made in it, mapped
// by us (root in the initial namespace writes any map, no setgroups needed), its namespace opened,
// and the child reaped. The namespace lives on as long as the fd or a mount idmapped with it.
bool MakeUserns(const std::string& uid_map, const std::string& gid_map, UniqueFd* out, SpawnFailure* f) {
  ChildStack stack;
  CloneArgs args{};
  int pidfd = -1;
  args.flags = CLONE_NEWUSER | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  long r = CloneRun(&args, &stack, HoldUserns, nullptr);
  if (r < 0) return Fail(f, static_cast<int>(-r), "clone3", "user namespace for an idmapped mount");
  pid_t pid = static_cast<pid_t>(r);
  UniqueFd child(pidfd);
  const std::string proc = "/proc/" + std::to_string(pid);
  bool ok = WriteAll(proc + "/uid_map", uid_map, f) && WriteAll(proc + "/gid_map", gid_map, f);
  if (ok) {
    out->reset(open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
    if (!out->valid()) ok = Fail(f, errno, "open", proc + "/ns/user");
  }
  sys_pidfd_send_signal(child.get(), SIGKILL);
  ReapNow(pid);
  return ok;
}

// The spawning process's half of the plan's kIdmapBind ops (plan.h): each op's fd set to its
// detached, idmapped tree, held open in *trees until the spawn is over (the child has its copies).
// A failure names the op, the step and the target (its path, by which TypeScript finds the mount).
bool PrepareIdmapBinds(Plan* plan, std::vector<UniqueFd>* trees, SpawnFailure* f) {
  std::vector<std::pair<std::string, UniqueFd>> userns;  // one per distinct pair of maps
  for (Op& op : plan->ops) {
    if (op.kind != OpKind::kIdmapBind) continue;
    auto failed = [&](int err, const char* syscall, const std::string& step) {
      f->err = err;
      f->syscall = syscall;
      f->path = op.target;
      f->what = "idmapped bind " + op.source + " on " + op.target + ": " + step;
      return false;
    };
    const std::string maps = op.data + '\n' + op.value;
    int ns_fd = -1;
    for (const auto& u : userns) {
      if (u.first == maps) ns_fd = u.second.get();
    }
    if (ns_fd < 0) {
      UniqueFd ns;
      if (!MakeUserns(op.data, op.value, &ns, f)) {
        return failed(f->err, "clone3", "its user namespace: " + f->syscall + " " + f->path);
      }
      ns_fd = ns.get();
      userns.emplace_back(maps, std::move(ns));
    }
    unsigned rec = op.recursive ? AT_RECURSIVE : 0;
    UniqueFd tree(static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, op.source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec)));
    if (!tree.valid()) return failed(errno, "open_tree", "open_tree " + op.source);
    MountAttr idmap{MOUNT_ATTR_IDMAP, 0, 0, static_cast<uint64_t>(ns_fd)};
    if (sys_mount_setattr(tree.get(), "", AT_EMPTY_PATH | (op.flags != 0 ? AT_RECURSIVE : 0), &idmap) < 0) {
      return failed(errno, "mount_setattr", "mount_setattr MOUNT_ATTR_IDMAP");
    }
    MountAttr attrs{op.attr_set, op.attr_clear, 0, 0};
    if ((op.attr_set != 0 || op.attr_clear != 0) && sys_mount_setattr(tree.get(), "", AT_EMPTY_PATH | rec, &attrs) < 0) {
      return failed(errno, "mount_setattr", "mount_setattr");
    }
    op.fd = tree.get();
    trees->push_back(std::move(tree));
  }
  return true;
}

bool Spawn(const Plan& plan, Spawned* out, SpawnFailure* fail);

}  // namespace

bool SpawnProcess(const Plan& plan, Spawned* out, SpawnFailure* fail) {
  bool idmapped = false;
  for (const Op& op : plan.ops) idmapped = idmapped || op.kind == OpKind::kIdmapBind;
  if (!idmapped) return Spawn(plan, out, fail);
  Plan with_trees = plan;
  with_trees.Finish();
  std::vector<UniqueFd> trees;
  if (!PrepareIdmapBinds(&with_trees, &trees, fail)) return false;
  // Closed on return: by then the child has attached its copies, or is gone.
  return Spawn(with_trees, out, fail);
}

namespace {

bool Spawn(const Plan& plan, Spawned* out, SpawnFailure* fail) {
  UniqueFd cgroup_fd;
  if (!plan.cgroup_path.empty()) {
    cgroup_fd.reset(open(plan.cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup_fd.valid()) return Fail(fail, errno, "open", plan.cgroup_path);
  }
  int sync[2], errp[2], pidp[2] = {-1, -1};
  if (pipe2(sync, O_CLOEXEC) < 0) return Fail(fail, errno, "pipe2");
  UniqueFd sync_r(sync[0]), sync_w(sync[1]);
  if (pipe2(errp, O_CLOEXEC) < 0) return Fail(fail, errno, "pipe2");
  UniqueFd err_r(errp[0]), err_w(errp[1]);
  bool entering = plan.enter_pidfd >= 0;
  if (entering && pipe2(pidp, O_CLOEXEC) < 0) return Fail(fail, errno, "pipe2");
  UniqueFd pid_r(pidp[0]), pid_w(pidp[1]);
  // The child's NEW_LISTENER seccomp op sends its listener fd back over this pair.
  UniqueFd seccomp_parent, seccomp_child;
  if (!plan.seccomp_listener.empty()) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) return Fail(fail, errno, "socketpair");
    seccomp_parent.reset(sp[0]);
    seccomp_child.reset(sp[1]);
  }

  CloneArgs args{};
  args.exit_signal = SIGCHLD;
  if (cgroup_fd.valid()) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd.get());
  }
  // A child that waits for a start outlives this call before its execve: it cannot borrow our
  // memory (CLONE_VM) or a stack this call unmaps, so it gets a copy of its own.
  bool holds = false;
  for (const Op& op : plan.ops) holds = holds || op.kind == OpKind::kAwaitStart;
  ChildStack stack;
  // v1: the new process joins its cgroups itself (plan.h's cgroup_tasks) through these, ours until
  // the clone copies them; an exec's first child opens them by path (JoinCgroups).
  std::vector<UniqueFd> tasks_files;
  std::vector<int> cgroup_fds;
  for (size_t i = 0; !entering && i < plan.cgroup_tasks.size(); i++) {
    tasks_files.emplace_back(open(plan.cgroup_tasks[i].c_str(), O_WRONLY | O_CLOEXEC));
    if (!tasks_files.back().valid()) return Fail(fail, errno, "open", plan.cgroup_tasks[i]);
    cgroup_fds.push_back(tasks_files.back().get());
  }
  ChildArgs child{&plan, sync_r.get(), err_w.get(), -1, seccomp_child.valid() ? seccomp_child.get() : -1, nullptr, false,
                  cgroup_fds.empty() ? nullptr : cgroup_fds.data()};
  UniqueFd pidfd;
  pid_t pid;
  if (!entering) {
    int fd = -1;
    args.flags |= plan.clone_flags | CLONE_PIDFD;
    args.pidfd = reinterpret_cast<uint64_t>(&fd);
    long r = 0;
    NetFailure nf;
    if (!InNetns(plan.netns_path, &nf, [&] {
          return InNamespace(plan.pidns_path, CLONE_NEWPID, "/proc/thread-self/ns/pid", &nf, [&] {
            r = CloneRun(&args, holds ? nullptr : &stack, ChildMain, &child);
            return true;
          });
        })) {
      // nf.what is "open PATH" or "setns PATH", of the network or the pid namespace.
      size_t sp = nf.what.find(' ');
      Fail(fail, nf.err, "setns", sp == std::string::npos ? "" : nf.what.substr(sp + 1));
      fail->syscall = nf.what.substr(0, sp);
      return false;
    }
    if (r < 0) return Fail(fail, static_cast<int>(-r), "clone3");
    pid = static_cast<pid_t>(r);
    pidfd.reset(fd);
  } else {
    // The grandchild's exit signal comes from its creator under CLONE_PARENT (clone3 wants 0 here).
    args.flags |= CLONE_PARENT;
    args.exit_signal = 0;
    child.pid_fd = pid_w.get();
    child.grandchild_args = &args;
    // Entering a pid namespace, the first child shares our memory (EnterMain); else it has memory
    // of its own, so that it can make itself non-dumpable without making the calling process so
    // (dumpability belongs to the memory map). Every signal blocked across the clone: a child in
    // our memory must never run a handler of ours (it keeps the mask; it never unblocks).
    CloneArgs first{};
    first.exit_signal = SIGCHLD;
    child.shares_memory = (plan.enter_flags & CLONE_NEWPID) != 0 && stack.valid();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long r = CloneRun(&first, child.shares_memory ? &stack : nullptr, EnterMain, &child);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (r < 0) return Fail(fail, static_cast<int>(-r), "clone3");
    ReapNow(static_cast<pid_t>(r));
    pid_w.reset();
    pid_t gp = 0;
    if (ReadFull(pid_r.get(), &gp, sizeof gp) != sizeof gp) {
      err_w.reset();
      ChildError e{};
      if (ReadFull(err_r.get(), &e, sizeof e) == sizeof e) return ChildFailed(plan, e, fail);
      return Fail(fail, EIO, "enter");
    }
    pid = gp;
    pidfd.reset(sys_pidfd_open(pid, 0));
    if (!pidfd.valid()) {
      int err = errno;
      kill(pid, SIGKILL);
      ReapNow(pid);
      return Fail(fail, err, "pidfd_open");
    }
  }
  sync_r.reset();
  err_w.reset();
  seccomp_child.reset();
  tasks_files.clear();  // the child has its copies

  pid_t helper = 0;
  auto abort_child = [&]() {
    sys_pidfd_send_signal(pidfd.get(), SIGKILL);
    ReapNow(pid);
    EndNetHelper(plan, helper);
    return false;
  };
  const std::string proc = "/proc/" + std::to_string(pid);
  if (!plan.uid_mapper.empty() && !RunMapper(plan.uid_mapper, pid, plan.uid_map, fail)) return abort_child();
  if (!plan.gid_mapper.empty() && !RunMapper(plan.gid_mapper, pid, plan.gid_map, fail)) return abort_child();
  if (plan.uid_mapper.empty() && !plan.uid_map.empty() && !WriteAll(proc + "/uid_map", plan.uid_map, fail)) {
    return abort_child();
  }
  if (plan.deny_setgroups && !WriteAll(proc + "/setgroups", "deny", fail)) return abort_child();
  if (plan.gid_mapper.empty() && !plan.gid_map.empty() && !WriteAll(proc + "/gid_map", plan.gid_map, fail)) {
    return abort_child();
  }
  const std::string pidtext = std::to_string(pid);
  if (!entering && !plan.net_helper.empty() && !RunNetHelper(plan, pid, &helper, fail)) return abort_child();
  char go = 1;
  if (write(sync_w.get(), &go, 1) != 1) {
    int err = errno;
    abort_child();
    return Fail(fail, err, "write", "sync pipe");
  }
  sync_w.reset();
  // The seccomp agent gets the listener before the child can block on a notified syscall for good
  // (held for start, or this call waiting for its execve).
  if (seccomp_parent.valid()) {
    UniqueFd listener;
    if (!ReceiveListener(seccomp_parent.get(), err_r.get(), &listener, fail)) return abort_child();
    if (listener.valid()) {
      std::string state;
      for (char c : plan.seccomp_state) {
        if (c == '\x01') state += pidtext;
        else state += c;
      }
      if (!SendFdTo(plan.seccomp_listener, listener.get(), state, fail)) return abort_child();
    }
  }
  // A successful execve closes the CLOEXEC error pipe: EOF means "started".
  ChildError e{};
  ssize_t n = ReadFull(err_r.get(), &e, sizeof e);
  if (n == sizeof e && e.step == kStepHeld) n = 0;  // waiting for its start, all else done
  if (n == sizeof e) {
    ReapNow(pid);
    EndNetHelper(plan, helper);
    return ChildFailed(plan, e, fail);
  }
  if (n != 0) {
    int err = n < 0 ? errno : EIO;
    abort_child();
    return Fail(fail, err, "read", "error pipe");
  }
  out->pid = pid;
  out->pidfd = std::move(pidfd);
  out->net_helper = helper;
  return true;
}

}  // namespace

bool SendFdTo(const std::string& path, int fd, const std::string& message, SpawnFailure* f) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return Fail(f, ENAMETOOLONG, "connect", path);
  memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return Fail(f, errno, "socket", path);
  int r;
  while ((r = connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr)) < 0 && errno == EINTR) {
  }
  if (r < 0) return Fail(f, errno, "connect", path);
  // SOCK_STREAM: the fd rides on the first chunk; a long message may need more than one send.
  size_t done = 0;
  while (done < message.size() || done == 0) {
    FdMessage m(const_cast<char*>(message.data()) + done, message.size() - done);
    if (done == 0) m.Attach(fd);
    else m.WithoutFd();
    ssize_t n = sendmsg(sock.get(), &m.msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(f, errno, "sendmsg", path);
    if (n == 0) return Fail(f, EIO, "sendmsg", path);
    done += static_cast<size_t>(n);
  }
  return true;
}

void EndNetHelper(const Plan& plan, pid_t helper) {
  if (helper <= 0) return;
  kill(helper, SIGKILL);
  while (waitpid(helper, nullptr, __WALL) < 0 && errno == EINTR) {
  }
  if (!plan.net_helper_pid_file.empty()) unlink(plan.net_helper_pid_file.c_str());
}

}  // namespace nsbox
