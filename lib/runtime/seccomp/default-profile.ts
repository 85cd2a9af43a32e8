/**
 * Docker's default seccomp profile (moby profiles/seccomp/default.json) as nsbox data: everything
 * not listed fails with EPERM; a large allowlist of ordinary syscalls; argument checks for
 * `personality`, `socket` (no AF_VSOCK) and `clone` (no new namespaces); and groups that only a
 * container holding the matching capability gets (CAP_SYS_ADMIN for the mount family, namespaces,
 * bpf and perf; CAP_SYS_MODULE for modules; CAP_SYS_TIME for the clock; …). Keyrings, kexec,
 * swapon/swapoff, userfaultfd and open_by_handle_at (without CAP_DAC_READ_SEARCH) are never listed.
 */
import type { SeccompProfile, SeccompRule, SeccompArg, SeccompConditions } from './profile.js';

const EPERM = 1;
const ENOSYS = 38;

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000n;
const AF_VSOCK = 40n;

const words = (s: string): string[] => s.trim().split(/\s+/);
const when = (c: Partial<SeccompConditions>): SeccompConditions => ({ caps: c.caps ?? [], arches: c.arches ?? [], ...(c.minKernel ? { minKernel: c.minKernel } : {}) });
const arg = (index: number, op: SeccompArg['op'], value: bigint, valueTwo = 0n): SeccompArg => ({ index, op, value, valueTwo });

function allow(names: string, opts: { args?: SeccompArg[]; includes?: Partial<SeccompConditions>; excludes?: Partial<SeccompConditions> } = {}): SeccompRule {
  return { names: words(names), action: 'SCMP_ACT_ALLOW', args: opts.args ?? [], includes: when(opts.includes ?? {}), excludes: when(opts.excludes ?? {}) };
}
const forCap = (cap: string, names: string): SeccompRule => allow(names, { includes: { caps: [cap] } });

const ALLOWED = `
  accept accept4 access alarm bind brk cachestat capget capset chdir chmod chown chown32
  clock_getres clock_getres_time64 clock_gettime clock_gettime64
  clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
  epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
  eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
  fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync
  fgetxattr file_getattr file_setattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
  fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait
  futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
  getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
  getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid
  getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr getxattrat
  inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
  io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter
  io_uring_register io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset
  landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr listxattrat llistxattr
  _llseek lremovexattr lseek lsetxattr lsm_get_self_attr lsm_list_modules lstat lstat64 madvise
  map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
  mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
  mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock
  munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause
  pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64
  prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
  pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
  remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall rmdir rseq
  rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
  rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
  sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
  sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
  sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
  sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
  setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
  setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
  setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
  sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
  sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
  timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
  timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask
  uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid
  write writev
`;

const rules: SeccompRule[] = [
  allow(ALLOWED),
  // Before 4.8 a tracer could change the syscall after seccomp had checked it.
  allow('process_vm_readv process_vm_writev ptrace', { includes: { minKernel: '4.8' } }),
  allow('socket', { args: [arg(0, 'SCMP_CMP_NE', AF_VSOCK)] }),
  // personality: only PER_LINUX, PER_LINUX32, UNAME26 (alone or with PER_LINUX32) and the query.
  ...[0n, 0x8n, 0x20000n, 0x20008n, 0xffffffffn].map((v) => allow('personality', { args: [arg(0, 'SCMP_CMP_EQ', v)] })),
  allow('arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls', { includes: { arches: ['arm', 'arm64'] } }),
  allow('arch_prctl', { includes: { arches: ['amd64', 'x32'] } }),
  allow('modify_ldt', { includes: { arches: ['amd64', 'x32', 'x86'] } }),
  forCap('CAP_DAC_READ_SEARCH', 'open_by_handle_at'),
  forCap('CAP_SYS_ADMIN', `
    bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick listmount lookup_dcookie mount
    mount_setattr move_mount open_tree open_tree_attr perf_event_open quotactl quotactl_fd setdomainname
    sethostname setns statmount syslog umount umount2 unshare`),
  // Without CAP_SYS_ADMIN, clone may not create namespaces (arg 0: flags; s390 orders them differently).
  allow('clone', { args: [arg(0, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACE_FLAGS, 0n)], excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] } }),
  // clone3 passes its flags in memory, out of seccomp's sight: ENOSYS makes libcs fall back to clone.
  { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, args: [], includes: when({}), excludes: when({ caps: ['CAP_SYS_ADMIN'] }) },
  forCap('CAP_SYS_BOOT', 'reboot'),
  forCap('CAP_SYS_CHROOT', 'chroot'),
  forCap('CAP_SYS_MODULE', 'delete_module init_module finit_module'),
  forCap('CAP_SYS_PACCT', 'acct'),
  forCap('CAP_SYS_PTRACE', 'kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace'),
  forCap('CAP_SYS_RAWIO', 'iopl ioperm'),
  // Stricter than docker: adjtimex and clock_adjtime also go with CAP_SYS_TIME (they can set the clock).
  forCap('CAP_SYS_TIME', 'settimeofday stime clock_settime clock_settime64 adjtimex clock_adjtime clock_adjtime64'),
  forCap('CAP_SYS_TTY_CONFIG', 'vhangup'),
  forCap('CAP_SYS_NICE', 'get_mempolicy mbind set_mempolicy set_mempolicy_home_node'),
  forCap('CAP_SYSLOG', 'syslog'),
  forCap('CAP_BPF', 'bpf'),
  forCap('CAP_PERFMON', 'perf_event_open'),
];

export const defaultProfile: SeccompProfile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: EPERM,
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'],
  flags: [],
  syscalls: rules,
};
