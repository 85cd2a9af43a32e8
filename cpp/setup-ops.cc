// The child side of spawn: one switch over the plan's ops, raw syscalls only.
// Runs after clone in a copy of a multi-threaded process: no malloc, no locks, no exceptions.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sys/socket.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan.h"
#include "syscalls.h"

namespace nsbox {
namespace {

[[noreturn]] void Fail(int err_fd, int32_t step, int err) {
  ChildError e{step, err};
  ssize_t n;
  do {
    n = write(err_fd, &e, sizeof e);
  } while (n < 0 && errno == EINTR);
  _exit(127);
}

int RunOp(const Op& op) {
  switch (op.kind) {
    case OpKind::kMount:
      return mount(op.a.empty() ? nullptr : op.a.c_str(), op.b.c_str(),
                   op.c.empty() ? nullptr : op.c.c_str(), op.flags,
                   op.d.empty() ? nullptr : op.d.c_str());
    case OpKind::kBind: {
      if (mount(op.a.c_str(), op.b.c_str(), nullptr, MS_BIND | (op.recursive ? MS_REC : 0), nullptr) < 0)
        return -1;
      if (op.set == 0 && op.clr == 0) return 0;
      MountAttr attr{op.set, op.clr, 0, 0};
      return sys_mount_setattr(AT_FDCWD, op.b.c_str(), op.recursive ? AT_RECURSIVE : 0, &attr);
    }
    case OpKind::kSetAttr: {
      MountAttr attr{op.set, op.clr, 0, 0};
      return sys_mount_setattr(AT_FDCWD, op.b.c_str(), op.recursive ? AT_RECURSIVE : 0, &attr);
    }
    case OpKind::kUmount:
      return umount2(op.b.c_str(), static_cast<int>(op.flags));
    case OpKind::kMkdir:
      if (mkdir(op.b.c_str(), op.mode) < 0 && errno != EEXIST) return -1;
      return 0;
    case OpKind::kTouch: {
      int fd = open(op.b.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, op.mode);
      if (fd < 0) return -1;
      close(fd);
      return 0;
    }
    case OpKind::kMknod:
      if (mknod(op.b.c_str(), op.mode, static_cast<dev_t>(op.dev)) < 0 && errno != EEXIST) return -1;
      return 0;
    case OpKind::kSymlink:
      if (symlink(op.a.c_str(), op.b.c_str()) < 0 && errno != EEXIST) return -1;
      return 0;
    case OpKind::kPivotRoot:
      // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the new.
      if (chdir(op.b.c_str()) < 0) return -1;
      if (sys_pivot_root(".", ".") < 0) return -1;
      if (umount2(".", MNT_DETACH) < 0) return -1;
      return chdir("/");
    case OpKind::kChroot:
      if (chdir(op.b.c_str()) < 0) return -1;
      if (chroot(".") < 0) return -1;
      return chdir("/");
    case OpKind::kSethostname:
      return sethostname(op.a.c_str(), op.a.size());
    case OpKind::kChdir:
      return chdir(op.b.c_str());
    case OpKind::kWriteFile: {
      int fd = open(op.b.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return -1;
      ssize_t n = write(fd, op.d.data(), op.d.size());
      int saved = errno;
      close(fd);
      errno = saved;
      return n == static_cast<ssize_t>(op.d.size()) ? 0 : -1;
    }
    case OpKind::kSetIds:
      // Raw syscalls: glibc's wrappers broadcast the change to every thread it knows of, and the
      // thread list it would walk (and lock) is the Node process's, copied by clone.
      if (op.set_groups && syscall(SYS_setgroups, op.groups.size(), op.groups.data()) < 0) return -1;
      if (syscall(SYS_setresgid, op.gid, op.gid, op.gid) < 0) return -1;
      return static_cast<int>(syscall(SYS_setresuid, op.uid, op.uid, op.uid));
    case OpKind::kChmod:
      return chmod(op.b.c_str(), op.mode);
    case OpKind::kUnshare:
      return unshare(static_cast<int>(op.flags));
    case OpKind::kSetns:
      return setns(op.fd, static_cast<int>(op.flags));
    case OpKind::kMask: {
      struct stat st;
      if (stat(op.b.c_str(), &st) < 0) return errno == ENOENT ? 0 : -1;
      if (S_ISDIR(st.st_mode)) return mount("tmpfs", op.b.c_str(), "tmpfs", MS_RDONLY, nullptr);
      return mount("/dev/null", op.b.c_str(), nullptr, MS_BIND, nullptr);
    }
    case OpKind::kReadonly: {
      if (mount(op.b.c_str(), op.b.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) return errno == ENOENT ? 0 : -1;
      MountAttr attr{MOUNT_ATTR_RDONLY, 0, 0, 0};
      return sys_mount_setattr(AT_FDCWD, op.b.c_str(), AT_RECURSIVE, &attr);
    }
    case OpKind::kLoopbackUp: {
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return -1;
      struct ifreq ifr;
      memset(&ifr, 0, sizeof ifr);
      memcpy(ifr.ifr_name, "lo", 3);
      int r = ioctl(fd, SIOCGIFFLAGS, &ifr);
      if (r == 0) {
        ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
        r = ioctl(fd, SIOCSIFFLAGS, &ifr);
      }
      int saved = errno;
      close(fd);
      errno = saved;
      return r;
    }
  }
  errno = EINVAL;
  return -1;
}

// execve with a PATH search done inside the container, into a stack buffer.
int ExecSearch(const Plan& plan) {
  const char* file = plan.argv[0];
  if (file == nullptr || *file == '\0') {
    errno = ENOENT;
    return -1;
  }
  if (strchr(file, '/') != nullptr) return execve(file, plan.argv.data(), plan.envp.data());
  const char* p = plan.path_env.c_str();
  size_t flen = strlen(file);
  int last = ENOENT;
  bool eacces = false;
  char buf[PATH_MAX];
  while (true) {
    const char* end = strchrnul(p, ':');
    size_t dlen = static_cast<size_t>(end - p);
    if (dlen == 0) {
      buf[0] = '.';
      dlen = 1;
    } else if (dlen + flen + 2 <= sizeof buf) {
      memcpy(buf, p, dlen);
    } else {
      dlen = 0;
    }
    if (dlen > 0 && dlen + flen + 2 <= sizeof buf) {
      buf[dlen] = '/';
      memcpy(buf + dlen + 1, file, flen + 1);
      execve(buf, plan.argv.data(), plan.envp.data());
      if (errno == EACCES) eacces = true;
      else if (errno != ENOENT && errno != ENOTDIR) last = errno;
    }
    if (*end == '\0') break;
    p = end + 1;
  }
  errno = eacces ? EACCES : last;
  return -1;
}

}  // namespace

void RunChild(const Plan& plan, int sync_fd, int err_fd, int pid_fd) {
  if (pid_fd >= 0) close(pid_fd);

  // Node ignores SIGPIPE and libuv's pool threads block every signal; ignored dispositions and the
  // mask survive execve, so both are reset before the user's program can see them.
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    signal(sig, SIG_DFL);  // fails harmlessly for glibc's internal signals
  }
  if (plan.pdeathsig && prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) Fail(err_fd, kStepPdeathsig, errno);

  // Wait until the parent has written id maps and cgroup membership. EOF means the parent gave up.
  char go = 0;
  ssize_t n;
  do {
    n = read(sync_fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) _exit(126);
  close(sync_fd);

  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) < 0) Fail(err_fd, kStepSignals, errno);

  if (plan.setsid && setsid() < 0) Fail(err_fd, kStepSetsid, errno);

  // Move the stdio sources out of the way first, so that one target cannot clobber another's source.
  int moved[3];
  for (int i = 0; i < 3; i++) {
    moved[i] = -1;
    if (plan.stdio[i] < 0) continue;
    moved[i] = fcntl(plan.stdio[i], F_DUPFD_CLOEXEC, 3);
    if (moved[i] < 0) Fail(err_fd, kStepStdio, errno);
  }
  for (int i = 0; i < 3; i++) {
    if (moved[i] >= 0 && dup2(moved[i], i) < 0) Fail(err_fd, kStepStdio, errno);
  }
  if (plan.ctty && ioctl(0, TIOCSCTTY, 0) < 0) Fail(err_fd, kStepCtty, errno);

  for (size_t i = 0; i < plan.ops.size(); i++) {
    const Op& op = plan.ops[i];
    if (RunOp(op) < 0 && !op.optional) Fail(err_fd, static_cast<int32_t>(i), errno);
  }

  // Nothing of the Node process may leak into the container: every fd above stdio closes on exec.
  sys_close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  ExecSearch(plan);
  Fail(err_fd, kStepExec, errno);
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
  if (step < 0 || static_cast<size_t>(step) >= plan.ops.size()) {
    *syscall = "spawn";
    return "spawn step " + std::to_string(step);
  }
  const Op& op = plan.ops[step];
  *path = op.b;
  switch (op.kind) {
    case OpKind::kMount:
      *syscall = "mount";
      return "mount " + (op.c.empty() ? op.a : op.c) + " on " + op.b;
    case OpKind::kBind: *syscall = "mount"; return "bind " + op.a + " on " + op.b;
    case OpKind::kSetAttr: *syscall = "mount_setattr"; return "mount_setattr " + op.b;
    case OpKind::kUmount: *syscall = "umount2"; return "umount " + op.b;
    case OpKind::kMkdir: *syscall = "mkdir"; return "mkdir " + op.b;
    case OpKind::kTouch: *syscall = "open"; return "create " + op.b;
    case OpKind::kMknod: *syscall = "mknod"; return "mknod " + op.b;
    case OpKind::kSymlink: *syscall = "symlink"; return "symlink " + op.b + " -> " + op.a;
    case OpKind::kPivotRoot: *syscall = "pivot_root"; return "pivot_root " + op.b;
    case OpKind::kChroot: *syscall = "chroot"; return "chroot " + op.b;
    case OpKind::kSethostname: *syscall = "sethostname"; *path = ""; return "sethostname " + op.a;
    case OpKind::kChdir: *syscall = "chdir"; return "chdir " + op.b;
    case OpKind::kWriteFile: *syscall = "write"; return "write " + op.b;
    case OpKind::kSetIds:
      *syscall = "setresuid";
      *path = "";
      return "set user " + std::to_string(op.uid) + ":" + std::to_string(op.gid);
    case OpKind::kChmod: *syscall = "chmod"; return "chmod " + op.b;
    case OpKind::kUnshare: *syscall = "unshare"; *path = ""; return "unshare " + std::to_string(op.flags);
    case OpKind::kMask: *syscall = "mount"; return "mask " + op.b;
    case OpKind::kSetns: *syscall = "setns"; *path = ""; return "setns " + std::to_string(op.flags);
    case OpKind::kReadonly: *syscall = "mount"; return "make read-only " + op.b;
    case OpKind::kLoopbackUp: *syscall = "ioctl"; *path = "lo"; return "bring up lo";
  }
  return "op";
}

}  // namespace nsbox
