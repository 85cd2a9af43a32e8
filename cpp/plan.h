// The spawn plan: everything the child needs, laid out by the parent before clone.
// The child only reads it (c_str(), data()): it must not allocate after clone.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace nsbox {

enum class OpKind : int {
  kMount,       // mount(source, target, fstype, flags, data); on EINVAL with value set, again with value as data
  kBind,        // mount(source, target, MS_BIND[|MS_REC]) then mount_setattr(attr_set, attr_clear) when either is set
  kSetAttr,     // mount_setattr(target, attr_set, attr_clear) [AT_RECURSIVE]
  kUmount,      // umount2(target, flags)
  kMkdir,       // mkdir(target, mode), EEXIST is fine
  kTouch,       // open(target, O_CREAT) (a bind-mount target for a file)
  kMknod,       // mknod(target, mode, dev)
  kSymlink,     // symlink(value, target): value is what the link points at; EEXIST is fine
  kPivotRoot,   // chdir(target); pivot_root(".", "."); umount2(".", MNT_DETACH); chdir("/")
  kChroot,      // chdir(target); chroot(".")
  kSethostname, // sethostname(value)
  kChdir,       // chdir(target)
  kWriteFile,   // open(target, O_WRONLY) + write(data)
  kSetIds,      // setgroups(groups) (unless !set_groups), setresgid(gid), setresuid(uid)
  kChmod,       // chmod(target, mode): the child's umask applies to mkdir and mknod
  kLoopbackUp,  // ioctl(SIOCSIFFLAGS, IFF_UP) on "lo": a new network namespace starts with it down
  kUnshare,     // unshare(flags): a cgroup namespace made after the parent placed us in our cgroup
  kMask,        // hide target: a read-only empty tmpfs over a directory, /dev/null over a file; absent is fine
  kReadonly,    // bind target on itself, read-only (recursive); absent is fine
  kSetns,       // setns(fd, flags): exec joins the cgroup namespace only once it is in the cgroup
  kCapBset,     // drop every capability not in caps from the bounding set
  kCapSet,      // capset(effective, permitted, inheritable)
  kAmbient,     // clear the ambient set, then raise the capabilities in caps
  kPrctl,       // prctl(prctl_option, prctl_arg, 0, 0, 0): no_new_privs, keepcaps
  kSeccomp,     // seccomp(SECCOMP_SET_MODE_FILTER, flags) with the classic BPF program in data; with
                // SECCOMP_FILTER_FLAG_NEW_LISTENER the listener fd goes to the parent (RunChild's seccomp_sock)
  kRlimit,      // prlimit64(0, resource = prctl_option, {rlim_cur, rlim_max})
  kUmask,       // umask(mode)
  // Tell the parent "held" (kStepHeld on the error pipe: the spawn returns, the child not yet
  // exec'd), then block until another process reads the fifo behind fd (an O_PATH fd the spawning
  // process opened, reopened through /proc/self/fd as runc does): the OCI create/start split.
  kAwaitStart,
  kPersonality,  // personality(prctl_arg): the execution domain and flags (runtime-spec linux.personality)
  // An idmapped bind, in two halves. The spawning process, before clone (mount_setattr with
  // MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN in the initial user namespace): a user namespace with uid
  // map `data` and gid map `value` (a short-lived child's), open_tree(source, OPEN_TREE_CLONE
  // [|AT_RECURSIVE when recursive]), mount_setattr(MOUNT_ATTR_IDMAP) [AT_RECURSIVE when flags is
  // 1], then mount_setattr(attr_set, attr_clear) [AT_RECURSIVE when recursive]; the tree's fd goes
  // to fd. The child: move_mount(fd, "", target).
  kIdmapBind,
};

// One setup op; each kind reads only the fields its comment above names.
struct Op {
  OpKind kind = OpKind::kMount;
  std::string source, target, fstype;
  std::string data;      // mount data, a written file's contents, or a seccomp program
  std::string value;     // a symlink's contents, the hostname, or a mount's fallback data
  unsigned long flags = 0;  // mount / umount flags, or CLONE_NEW* for unshare and setns
  uint64_t attr_set = 0, attr_clear = 0;  // MOUNT_ATTR_* for mount_setattr
  uint64_t caps = 0;                      // capability bits: kept in the bounding set, or raised ambient
  uint64_t effective = 0, permitted = 0, inheritable = 0;
  int prctl_option = 0;
  uint64_t prctl_arg = 0;
  uint64_t rlim_cur = 0, rlim_max = 0;
  unsigned mode = 0;
  uint64_t dev = 0;
  bool recursive = false;
  bool optional = false;
  uint32_t uid = 0, gid = 0;
  int fd = -1;
  bool set_groups = true;
  std::vector<gid_t> groups;
};

// Steps that are not in the op list get negative indexes in error reports.
enum PseudoOp : int32_t {
  kStepExec = -1,
  kStepStdio = -2,
  kStepSetsid = -3,
  kStepCtty = -4,
  kStepWait = -5,
  kStepPdeathsig = -6,
  kStepSetns = -7,
  kStepClone = -8,
  kStepSignals = -9,
  // Not a failure: the child reached an await-start op (the spawn succeeds, the child waits).
  kStepHeld = -10,
  // joining cgroup v1 hierarchy i (plan.cgroup_tasks[i]) is step kStepJoinCgroup - i.
  kStepJoinCgroup = -100,
};

struct ChildError {
  int32_t step;
  int32_t err;
};

struct Plan {
  uint64_t clone_flags = 0;  // CLONE_NEW* only
  std::vector<Op> ops;
  std::vector<std::string> argv_s, envp_s;
  std::vector<char*> argv, envp;  // point into argv_s / envp_s, null-terminated
  std::string path_env;           // PATH used to find argv[0] inside the container (TypeScript's default)
  int stdio[3] = {-1, -1, -1};    // fds dup'ed onto 0, 1, 2 (-1: leave as is)
  bool setsid = true;
  bool ctty = false;              // make fd 0 the controlling terminal
  bool pdeathsig = true;
  int preserve_fds = 0;           // fds 3 .. 3+preserve_fds-1 stay open across execve (runc's --preserve-fds)
  std::string uid_map, gid_map;   // written by the parent before the child is released
  // Without privileges, ranges beyond one's own id go through the setuid helpers of the uidmap
  // package: newuidmap / newgidmap PID (inside outside count)..., run by the parent instead.
  std::string uid_mapper, gid_mapper;
  bool deny_setgroups = false;
  std::string cgroup_path;        // cgroup2 dir for CLONE_INTO_CGROUP
  // v1: the cgroups' `tasks` files. The process joins them itself, writing "0" (itself): a new
  // container's process through fds the parent opened (spawn-core.cc), an exec's first child by
  // path before it forks the exec'd process, so that pids.max applies to that fork. A
  // single-threaded process that moves itself through `tasks` is the one move the kernel makes
  // without its threadgroup lock, whose write side waits for an RCU grace period (7-20 ms on a
  // 2-core VM, where the parent's write of the pid into cgroup.procs took it on every start).
  std::vector<std::string> cgroup_tasks;
  // A network namespace to be born in (a path such as /run/nsbox/netns/ID): the spawning thread
  // joins it for the clone and goes back; clone_flags then has no CLONE_NEWNET.
  std::string netns_path;
  // A pid namespace to be born in (joined by path, e.g. a pod's /proc/PID/ns/pid): the spawning
  // thread joins it for its children for the clone and goes back; clone_flags has no CLONE_NEWPID.
  std::string pidns_path;
  // A program that wires the container's own network namespace (rootless networking: pasta or
  // slirp4netns): run once the id maps are written, "{pid}" in its argv replaced by the child's
  // pid; it says it is ready by writing to fd 3, and the child is released only then. Its pid goes
  // to net_helper_pid_file. It dies with the spawning thread (PR_SET_PDEATHSIG).
  std::vector<std::string> net_helper;
  std::string net_helper_pid_file;
  // A seccomp agent's socket (runtime-spec listenerPath): the parent sends it the listener fd that
  // the child's NEW_LISTENER seccomp op hands back, with seccomp_state as the message (each \x01
  // byte replaced by the child's pid), before the spawn returns.
  std::string seccomp_listener, seccomp_state;
  int enter_pidfd = -1;           // enter: join this process's namespaces first
  uint64_t enter_flags = 0;

  void Finish() {
    argv.clear();
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    envp.clear();
    for (auto& s : envp_s) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

// Child side: runs the plan's steps and execve; never returns. seccomp_sock (-1: none) is where a
// NEW_LISTENER seccomp op sends its listener fd (SCM_RIGHTS). cgroup_fds (null: none to join) are
// fds of plan.cgroup_tasks' files, in order, opened by the parent.
[[noreturn]] void RunChild(const Plan& plan, int sync_fd, int err_fd, int pid_fd, int seccomp_sock, const int* cgroup_fds);

// Parent side: what a failed step was doing, for the error message ("pivot_root /x", "execve /bin/nope").
std::string DescribeStep(const Plan& plan, int32_t step, std::string* syscall, std::string* path);

}  // namespace nsbox
