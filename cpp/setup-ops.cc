// The child side of spawn: one switch over the plan's ops, then execve.
// It runs in the Node process's memory (CLONE_VM) on a stack of its own: raw syscalls only
// (raw-syscall.h), no malloc, no locks, no exceptions, no errno, and no writes outside its stack.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fd-message.h"
#include "plan.h"
#include "raw-syscall.h"
#include "syscalls.h"

namespace nsbox {
namespace {

using raw::Sys;

[[noreturn]] void Fail(int err_fd, int32_t step, long neg_errno) {
  ChildError e{step, static_cast<int32_t>(-neg_errno)};
  while (Sys(SYS_write, err_fd, &e, sizeof e) == -EINTR) {
  }
  raw::Exit(127);
}

long Mount(const char* src, const char* tgt, const char* fstype, unsigned long flags, const char* data) {
  return Sys(SYS_mount, src, tgt, fstype, flags, data);
}

// seccomp(2) with the op's flags: 0 on success, or with NEW_LISTENER the listener fd.
long InstallFilter(const Op& op) {
  struct sock_fprog prog;
  prog.len = static_cast<unsigned short>(op.data.size() / sizeof(struct sock_filter));
  prog.filter = reinterpret_cast<struct sock_filter*>(const_cast<char*>(op.data.data()));
  return Sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, op.flags, &prog);
}

// A NEW_LISTENER filter: its fd goes to the parent over `sock` (SCM_RIGHTS), which passes it on to
// the seccomp agent; this process keeps no copy. From here on its notified syscalls wait for the
// agent, so this sendmsg is the one syscall a profile may not notify (lib/runtime/seccomp/profile.ts).
long HandOffListener(const Op& op, int sock) {
  if (sock < 0) return -EINVAL;
  long fd = InstallFilter(op);
  if (fd < 0) return fd;
  char byte = 'L';
  FdMessage m(&byte, 1);
  m.Attach(static_cast<int>(fd));
  long r;
  while ((r = Sys(SYS_sendmsg, sock, &m.msg, MSG_NOSIGNAL)) == -EINTR) {
  }
  Sys(SYS_close, fd);
  Sys(SYS_close, sock);
  return r < 0 ? r : 0;
}

long SetAttr(const char* path, uint64_t set, uint64_t clr, bool recursive) {
  MountAttr attr{set, clr, 0, 0};
  return Sys(SYS_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof attr);
}

inline const char* OrNull(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

// Returns 0 or -errno.
long RunOp(const Op& op) {
  long r;
  switch (op.kind) {
    case OpKind::kMount:
      r = Mount(OrNull(op.source), op.target.c_str(), OrNull(op.fstype), op.flags, OrNull(op.data));
      // An option this kernel does not know (EINVAL): the data without it, when the plan gives one.
      if (r == -EINVAL && !op.value.empty()) r = Mount(OrNull(op.source), op.target.c_str(), OrNull(op.fstype), op.flags, op.value.c_str());
      return r;
    case OpKind::kBind:
      r = Mount(op.source.c_str(), op.target.c_str(), nullptr, MS_BIND | (op.recursive ? MS_REC : 0), nullptr);
      if (r < 0 || (op.attr_set == 0 && op.attr_clear == 0)) return r;
      return SetAttr(op.target.c_str(), op.attr_set, op.attr_clear, op.recursive);
    case OpKind::kSetAttr:
      return SetAttr(op.target.c_str(), op.attr_set, op.attr_clear, op.recursive);
    case OpKind::kUmount:
      return Sys(SYS_umount2, op.target.c_str(), op.flags);
    case OpKind::kMkdir:
      r = Sys(SYS_mkdirat, AT_FDCWD, op.target.c_str(), op.mode);
      return r == -EEXIST ? 0 : r;
    case OpKind::kTouch:
      // read-only: a mount point that is there needs no write access (rootless, over a rootfs of root's)
      r = Sys(SYS_openat, AT_FDCWD, op.target.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, op.mode);
      if (r < 0) return r;
      Sys(SYS_close, r);
      return 0;
    case OpKind::kMknod:
      r = Sys(SYS_mknodat, AT_FDCWD, op.target.c_str(), op.mode, op.dev);
      return r == -EEXIST ? 0 : r;
    case OpKind::kSymlink:
      r = Sys(SYS_symlinkat, op.value.c_str(), AT_FDCWD, op.target.c_str());
      return r == -EEXIST ? 0 : r;
    case OpKind::kPivotRoot:
      // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the new.
      if ((r = Sys(SYS_chdir, op.target.c_str())) < 0) return r;
      if ((r = Sys(SYS_pivot_root, ".", ".")) < 0) return r;
      if ((r = Sys(SYS_umount2, ".", MNT_DETACH)) < 0) return r;
      return Sys(SYS_chdir, "/");
    case OpKind::kChroot:
      if ((r = Sys(SYS_chdir, op.target.c_str())) < 0) return r;
      if ((r = Sys(SYS_chroot, ".")) < 0) return r;
      return Sys(SYS_chdir, "/");
    case OpKind::kSethostname:
      return Sys(SYS_sethostname, op.value.c_str(), op.value.size());
    case OpKind::kChdir:
      return Sys(SYS_chdir, op.target.c_str());
    case OpKind::kWriteFile: {
      long fd = Sys(SYS_openat, AT_FDCWD, op.target.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return fd;
      r = Sys(SYS_write, fd, op.data.data(), op.data.size());
      Sys(SYS_close, fd);
      if (r < 0) return r;
      return r == static_cast<long>(op.data.size()) ? 0 : -EIO;
    }
    case OpKind::kSetIds:
      // Raw syscalls set the ids of this process only (glibc would broadcast them to Node's threads).
      if (op.set_groups && (r = Sys(SYS_setgroups, op.groups.size(), op.groups.data())) < 0) return r;
      if ((r = Sys(SYS_setresgid, op.gid, op.gid, op.gid)) < 0) return r;
      return Sys(SYS_setresuid, op.uid, op.uid, op.uid);
    case OpKind::kChmod:
      return Sys(SYS_fchmodat, AT_FDCWD, op.target.c_str(), op.mode);
    case OpKind::kLoopbackUp: {
      long fd = Sys(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return fd;
      struct ifreq ifr;
      memset(&ifr, 0, sizeof ifr);
      memcpy(ifr.ifr_name, "lo", 3);
      r = Sys(SYS_ioctl, fd, SIOCGIFFLAGS, &ifr);
      if (r == 0) {
        ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
        r = Sys(SYS_ioctl, fd, SIOCSIFFLAGS, &ifr);
      }
      Sys(SYS_close, fd);
      return r;
    }
    case OpKind::kUnshare:
      return Sys(SYS_unshare, op.flags);
    case OpKind::kSetns:
      return Sys(SYS_setns, op.fd, op.flags);
    case OpKind::kCapBset:
      for (long cap = 0; cap < 64; cap++) {
        if (op.caps & (1ULL << cap)) continue;
        r = Sys(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
        if (r == -EINVAL) break;  // past the kernel's last capability
        if (r < 0) return r;
      }
      return 0;
    case OpKind::kCapSet: {
      struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
      struct __user_cap_data_struct data[2];
      data[0].effective = static_cast<uint32_t>(op.effective);
      data[1].effective = static_cast<uint32_t>(op.effective >> 32);
      data[0].permitted = static_cast<uint32_t>(op.permitted);
      data[1].permitted = static_cast<uint32_t>(op.permitted >> 32);
      data[0].inheritable = static_cast<uint32_t>(op.inheritable);
      data[1].inheritable = static_cast<uint32_t>(op.inheritable >> 32);
      return Sys(SYS_capset, &hdr, data);
    }
    case OpKind::kAmbient:
      if ((r = Sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)) < 0 && r != -EINVAL) return r;
      for (long cap = 0; cap < 64; cap++) {
        if (!(op.caps & (1ULL << cap))) continue;
        if ((r = Sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)) < 0) return r;
      }
      return 0;
    case OpKind::kPrctl:
      return Sys(SYS_prctl, op.prctl_option, op.prctl_arg, 0, 0, 0);
    case OpKind::kRlimit: {
      struct { uint64_t cur, max; } lim{op.rlim_cur, op.rlim_max};
      return Sys(SYS_prlimit64, 0, op.prctl_option, &lim, nullptr);
    }
    case OpKind::kUmask:
      Sys(SYS_umask, op.mode);
      return 0;
    case OpKind::kPersonality: {
      long r = Sys(SYS_personality, op.prctl_arg);
      return r < 0 ? r : 0;
    }
    case OpKind::kIdmapBind:
      // The tree the spawning process made (SpawnProcess), attached at last.
      return Sys(SYS_move_mount, op.fd, "", AT_FDCWD, op.target.c_str(), MOVE_MOUNT_F_EMPTY_PATH);
    case OpKind::kAwaitStart:
      return -EINVAL;  // run by RunChild, which holds the error pipe
    case OpKind::kSeccomp:
      return InstallFilter(op);
    case OpKind::kMask: {
      struct stat st;
      r = Sys(SYS_newfstatat, AT_FDCWD, op.target.c_str(), &st, 0);
      if (r < 0) return r == -ENOENT ? 0 : r;
      if (S_ISDIR(st.st_mode)) return Mount("tmpfs", op.target.c_str(), "tmpfs", MS_RDONLY, nullptr);
      return Mount("/dev/null", op.target.c_str(), nullptr, MS_BIND, nullptr);
    }
    case OpKind::kReadonly:
      r = Mount(op.target.c_str(), op.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr);
      if (r < 0) return r == -ENOENT ? 0 : r;
      return SetAttr(op.target.c_str(), MOUNT_ATTR_RDONLY, 0, true);
  }
  return -EINVAL;
}

// execve with a PATH search done inside the container, into a stack buffer. Returns -errno.
long ExecSearch(const Plan& plan) {
  const char* file = plan.argv[0];
  if (file == nullptr || *file == '\0') return -ENOENT;
  if (strchr(file, '/') != nullptr) return Sys(SYS_execve, file, plan.argv.data(), plan.envp.data());
  const char* p = plan.path_env.c_str();
  size_t flen = strlen(file);
  long last = -ENOENT;
  bool eacces = false;
  char buf[4096];
  while (true) {
    const char* end = strchrnul(p, ':');
    size_t dlen = static_cast<size_t>(end - p);
    const char* dir = dlen == 0 ? "." : p;
    if (dlen == 0) dlen = 1;
    if (dlen + flen + 2 <= sizeof buf) {
      memcpy(buf, dir, dlen);
      buf[dlen] = '/';
      memcpy(buf + dlen + 1, file, flen + 1);
      long r = Sys(SYS_execve, buf, plan.argv.data(), plan.envp.data());
      if (r == -EACCES) eacces = true;
      else if (r != -ENOENT && r != -ENOTDIR) last = r;
    }
    if (*end == '\0') break;
    p = end + 1;
  }
  return eacces ? -EACCES : last;
}

// The kernel's struct sigaction (x86_64 and arm64 both carry sa_restorer).
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

// See OpKind::kAwaitStart. From "held" on, a failure reaches nobody through the pipe (the spawn has
// returned; its reader is closed, and the write ends this process with SIGPIPE): a start sees it dead.
long AwaitStart(const Op& op, int err_fd) {
  ChildError held{kStepHeld, 0};
  long r;
  while ((r = Sys(SYS_write, err_fd, &held, sizeof held)) == -EINTR) {
  }
  if (r < 0) return r;
  char path[32] = "/proc/self/fd/";
  char digits[12];
  int n = 0;
  for (unsigned v = static_cast<unsigned>(op.fd); n == 0 || v > 0; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
  size_t at = strlen(path);
  while (n > 0) path[at++] = digits[--n];
  path[at] = 0;
  long fd;
  while ((fd = Sys(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC)) == -EINTR) {
  }
  if (fd < 0) return fd;
  while ((r = Sys(SYS_write, fd, "0", 1)) == -EINTR) {
  }
  Sys(SYS_close, fd);
  Sys(SYS_close, op.fd);
  return r < 0 ? r : 0;
}

}  // namespace

void RunChild(const Plan& plan, int sync_fd, int err_fd, int pid_fd, int seccomp_sock, const int* cgroup_fds) {
  if (pid_fd >= 0) Sys(SYS_close, pid_fd);

  // Node ignores SIGPIPE and libuv's pool threads block every signal; ignored dispositions and the
  // mask survive execve, so both are reset before the user's program can see them.
  KernelSigaction dfl{};  // SIG_DFL
  for (int sig = 1; sig < 65; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    Sys(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
  }
  long r;
  if (plan.pdeathsig && (r = Sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL)) < 0) Fail(err_fd, kStepPdeathsig, r);
  // A process joining a running container is, until execve, a copy of Node (its /proc/PID/exe is
  // the node binary) inside namespaces the container's processes share: not dumpable, so none of
  // them can ptrace it or open its exe (the CVE-2019-5736 class); execve makes the new program
  // dumpable again. Such a process has memory of its own (see spawn.cc): dumpability belongs to
  // the memory map, and a new container's first process shares Node's, which must stay dumpable;
  // nothing else is in a new container's namespaces before its execve.
  if (plan.enter_pidfd >= 0) Sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);

  // Wait until the parent has written id maps and cgroup membership. EOF means the parent gave up.
  char go = 0;
  do {
    r = Sys(SYS_read, sync_fd, &go, 1);
  } while (r == -EINTR);
  if (r != 1) raw::Exit(126);
  Sys(SYS_close, sync_fd);

  // A new container's process joins its v1 cgroups itself (plan.h's cgroup_tasks), through the
  // fds of their `tasks` files that the parent opened (an exec's process was born in them).
  for (size_t i = 0; cgroup_fds != nullptr && i < plan.cgroup_tasks.size(); i++) {
    r = Sys(SYS_write, cgroup_fds[i], "0", 1);
    Sys(SYS_close, cgroup_fds[i]);
    if (r < 0) Fail(err_fd, kStepJoinCgroup - static_cast<int32_t>(i), r);
  }

  uint64_t none = 0;
  if ((r = Sys(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, 8)) < 0) Fail(err_fd, kStepSignals, r);
  if (plan.setsid && (r = Sys(SYS_setsid)) < 0) Fail(err_fd, kStepSetsid, r);

  // Move the stdio sources out of the way first, so that one target cannot clobber another's source.
  long moved[3];
  for (int i = 0; i < 3; i++) {
    moved[i] = -1;
    if (plan.stdio[i] < 0) continue;
    moved[i] = Sys(SYS_fcntl, plan.stdio[i], F_DUPFD_CLOEXEC, 3);
    if (moved[i] < 0) Fail(err_fd, kStepStdio, moved[i]);
  }
  for (int i = 0; i < 3; i++) {
    if (moved[i] >= 0 && (r = Sys(SYS_dup3, moved[i], i, 0)) < 0) Fail(err_fd, kStepStdio, r);
  }
  if (plan.ctty && (r = Sys(SYS_ioctl, 0, TIOCSCTTY, 0)) < 0) Fail(err_fd, kStepCtty, r);

  for (size_t i = 0; i < plan.ops.size(); i++) {
    const Op& op = plan.ops[i];
    if (op.kind == OpKind::kAwaitStart) r = AwaitStart(op, err_fd);
    else if (op.kind == OpKind::kSeccomp && (op.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)) r = HandOffListener(op, seccomp_sock);
    else r = RunOp(op);
    // A change of ids clears the parent-death signal (commit_creds): armed again for the program.
    if (r >= 0 && op.kind == OpKind::kSetIds && plan.pdeathsig) r = Sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
    if (r < 0 && !op.optional) Fail(err_fd, static_cast<int32_t>(i), r);
  }

  // Nothing of the Node process may leak into the container: every fd above stdio closes on exec,
  // but for the caller's fds 3 .. 3+preserve_fds-1 (runc's --preserve-fds), which stay open.
  unsigned keep = plan.preserve_fds > 0 ? static_cast<unsigned>(plan.preserve_fds) : 0;
  Sys(SYS_close_range, 3 + keep, ~0U, CLOSE_RANGE_CLOEXEC);
  for (unsigned fd = 3; fd < 3 + keep; fd++) Sys(SYS_fcntl, fd, F_SETFD, 0);
  r = ExecSearch(plan);
  Fail(err_fd, kStepExec, r);
}

std::string DescribeStep(const Plan& plan, int32_t step, std::string* syscall, std::string* path) {
  switch (step) {
    case kStepExec:
      *syscall = "execve";
      *path = plan.argv_s.empty() ? "" : plan.argv_s[0];
      return "execve " + *path;
    case kStepStdio: *syscall = "dup2"; return "dup2 stdio";
    case kStepSetsid: *syscall = "setsid"; return "setsid";
    case kStepCtty: *syscall = "ioctl"; return "ioctl TIOCSCTTY";
    case kStepWait: *syscall = "read"; return "wait for parent";
    case kStepPdeathsig: *syscall = "prctl"; return "prctl PR_SET_PDEATHSIG";
    case kStepSetns: *syscall = "setns"; return "setns";
    case kStepClone: *syscall = "clone3"; return "clone3";
    case kStepSignals: *syscall = "sigprocmask"; return "sigprocmask";
    default: break;
  }
  if (step <= kStepJoinCgroup && static_cast<size_t>(kStepJoinCgroup - step) < plan.cgroup_tasks.size()) {
    *syscall = "write";
    *path = plan.cgroup_tasks[kStepJoinCgroup - step];
    return "join cgroup " + *path;
  }
  if (step < 0 || static_cast<size_t>(step) >= plan.ops.size()) {
    *syscall = "spawn";
    return "spawn step " + std::to_string(step);
  }
  const Op& op = plan.ops[step];
  *path = op.target;
  switch (op.kind) {
    case OpKind::kMount:
      *syscall = "mount";
      return "mount " + (op.fstype.empty() ? op.source : op.fstype) + " on " + op.target;
    case OpKind::kBind: *syscall = "mount"; return "bind " + op.source + " on " + op.target;
    case OpKind::kSetAttr: *syscall = "mount_setattr"; return "mount_setattr " + op.target;
    case OpKind::kUmount: *syscall = "umount2"; return "umount " + op.target;
    case OpKind::kMkdir: *syscall = "mkdir"; return "mkdir " + op.target;
    case OpKind::kTouch: *syscall = "open"; return "create " + op.target;
    case OpKind::kMknod: *syscall = "mknod"; return "mknod " + op.target;
    case OpKind::kSymlink: *syscall = "symlink"; return "symlink " + op.target + " -> " + op.value;
    case OpKind::kPivotRoot: *syscall = "pivot_root"; return "pivot_root " + op.target;
    case OpKind::kChroot: *syscall = "chroot"; return "chroot " + op.target;
    case OpKind::kSethostname: *syscall = "sethostname"; *path = ""; return "sethostname " + op.value;
    case OpKind::kChdir: *syscall = "chdir"; return "chdir " + op.target;
    case OpKind::kWriteFile: *syscall = "write"; return "write " + op.target;
    case OpKind::kSetIds:
      *syscall = "setresuid";
      *path = "";
      return "set user " + std::to_string(op.uid) + ":" + std::to_string(op.gid);
    case OpKind::kChmod: *syscall = "chmod"; return "chmod " + op.target;
    case OpKind::kLoopbackUp: *syscall = "ioctl"; *path = "lo"; return "bring up lo";
    case OpKind::kUnshare: *syscall = "unshare"; *path = ""; return "unshare " + std::to_string(op.flags);
    case OpKind::kSetns: *syscall = "setns"; *path = ""; return "setns " + std::to_string(op.flags);
    case OpKind::kMask: *syscall = "mount"; return "mask " + op.target;
    case OpKind::kCapBset: *syscall = "prctl"; *path = ""; return "drop capabilities from the bounding set";
    case OpKind::kCapSet: *syscall = "capset"; *path = ""; return "capset";
    case OpKind::kAmbient: *syscall = "prctl"; *path = ""; return "set ambient capabilities";
    case OpKind::kPrctl: *syscall = "prctl"; *path = ""; return "prctl " + std::to_string(op.prctl_option);
    case OpKind::kSeccomp: *syscall = "seccomp"; *path = ""; return "install the seccomp filter";
    case OpKind::kRlimit: *syscall = "prlimit64"; *path = ""; return "setrlimit " + std::to_string(op.prctl_option);
    case OpKind::kUmask: *syscall = "umask"; *path = ""; return "umask";
    case OpKind::kAwaitStart: *syscall = "open"; *path = ""; return "wait for start (exec fifo)";
    case OpKind::kPersonality: *syscall = "personality"; *path = ""; return "personality " + std::to_string(op.prctl_arg);
    case OpKind::kReadonly: *syscall = "mount"; return "make read-only " + op.target;
    case OpKind::kIdmapBind: *syscall = "move_mount"; return "idmapped bind " + op.source + " on " + op.target;
  }
  return "op";
}

}  // namespace nsbox
