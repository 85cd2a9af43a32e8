/** Seccomp profiles in docker's JSON and in the OCI runtime spec read into one model. */
import test from 'ava';
import { SeccompOption, defaultProfile, parseSeccompProfile, normalizeCap, SYSCALLS } from '../../lib/runtime/seccomp/index.js';
import { ValidationError } from '../../lib/errors.js';

const dockerJson = JSON.stringify({
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 1,
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_RISCV64', subArchitectures: null },
  ],
  syscalls: [
    { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }],
      excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] } },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' }, comment: 'fixed in 4.8' },
    { name: 'getpid', action: 'SCMP_ACT_ALLOW', args: null },
  ],
});

test('docker profile JSON', (t) => {
  const p = parseSeccompProfile(dockerJson);
  t.is(p.defaultAction, 'SCMP_ACT_ERRNO');
  t.is(p.defaultErrnoRet, 1);
  t.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_RISCV64']);
  t.is(p.syscalls.length, 5);
  const clone = p.syscalls[1]!;
  t.deepEqual(clone.args, [{ index: 0, value: 0x7e020000n, valueTwo: 0n, op: 'SCMP_CMP_MASKED_EQ' }]);
  t.deepEqual(clone.excludes, { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] });
  t.deepEqual(clone.includes, { caps: [], arches: [] });
  t.is(p.syscalls[2]!.errnoRet, 38);
  t.is(p.syscalls[3]!.includes.minKernel, '4.8');
  t.deepEqual(p.syscalls[4]!.names, ['getpid'], 'the old single `name`');
});

test('OCI linux.seccomp object', (t) => {
  const p = parseSeccompProfile({
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'],
    flags: ['SECCOMP_FILTER_FLAG_LOG'],
    syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 22, args: [{ index: 0, value: 18446744073709551615, valueTwo: 0, op: 'SCMP_CMP_NE' }] }],
  });
  t.deepEqual(p.flags, ['SECCOMP_FILTER_FLAG_LOG']);
  t.is(p.syscalls[0]!.args[0]!.value, (1n << 64n) - 1n, '2^64-1 survives JSON rounding');
});

test('bad profiles are ValidationErrors naming the field', (t) => {
  const bad = (input: unknown, field: string | RegExp) => {
    const err = t.throws(() => parseSeccompProfile(input), { instanceOf: ValidationError })!;
    if (typeof field === 'string') t.is((err as ValidationError).field, field, err.message);
    else t.regex(err.message, field);
  };
  bad('{', /invalid seccomp profile/);
  bad({}, 'seccomp.defaultAction');
  bad({ defaultAction: 'SCMP_ACT_MAYBE' }, 'seccomp.defaultAction');
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }, 'seccomp.listenerPath');
  bad({ defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/run/a.sock' }, 'seccomp.defaultAction');
  bad({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/a.sock', syscalls: [{ names: ['mkdir', 'sendmsg'], action: 'SCMP_ACT_NOTIFY' }] }, 'seccomp.syscalls.0');
  bad({ defaultAction: 'SCMP_ACT_ALLOW', listenerMetadata: 'x' }, 'seccomp.listenerMetadata');
  bad({ defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, 'seccomp.defaultErrnoRet');
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_LOG', errnoRet: 1 }] }, 'seccomp.syscalls.0.errnoRet');
  bad({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] }, 'seccomp.flags.0');
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ERRNO' }] }, 'seccomp.syscalls.0.names');
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }, 'seccomp.syscalls.0.args.0.index');
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_ABOUT' }] }] }, 'seccomp.syscalls.0.args.0.op');
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] }, 'seccomp.syscalls.0.args.0.value');
});

test('SCMP_ACT_NOTIFY keeps listenerPath and listenerMetadata; without a notify rule they are ignored', (t) => {
  const p = parseSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/a.sock', listenerMetadata: 'm', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] });
  t.is(p.listenerPath, '/run/a.sock');
  t.is(p.listenerMetadata, 'm');
  t.is(p.syscalls[0]!.action, 'SCMP_ACT_NOTIFY');
  const q = parseSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/a.sock', listenerMetadata: 'm' });
  t.false('listenerPath' in q);
  t.false('listenerMetadata' in q);
  t.deepEqual(parseSeccompProfile(p), p, 'the parsed shape round-trips');
});

test('the container option: default, unconfined, or a profile (parsed or not)', (t) => {
  t.is(SeccompOption.parse('default'), 'default');
  t.is(SeccompOption.parse('unconfined'), 'unconfined');
  t.false(SeccompOption.safeParse('strict').success);
  const p = SeccompOption.parse(JSON.parse(dockerJson));
  t.true(typeof p === 'object' && p.syscalls.length === 5);
  t.deepEqual(SeccompOption.parse(defaultProfile), defaultProfile, 'the model is valid input and round-trips');
  t.deepEqual(parseSeccompProfile(p), p);
});

test('capability names are normalized', (t) => {
  t.is(normalizeCap('sys_admin'), 'CAP_SYS_ADMIN');
  t.is(normalizeCap('CAP_NET_RAW'), 'CAP_NET_RAW');
  t.deepEqual(parseSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', includes: { caps: ['sys_time'] } }] }).syscalls[0]!.includes.caps, ['CAP_SYS_TIME']);
});

test('the default profile names only real syscalls, and the issue-6 list stays out of its allowlist', (t) => {
  const known = new Set([...Object.keys(SYSCALLS.x86_64), ...Object.keys(SYSCALLS.aarch64)]);
  // Names docker lists for 32-bit ABIs and other arches, which neither table has.
  const foreign = /32$|64_64$|^(_llseek|_newselect|ipc|mmap2|fstatat64|fstat64|fstatfs64|lstat64|stat64|statfs64|truncate64|ftruncate64|fcntl64|sendfile64|socketcall|sigreturn|sigprocmask|send|recv|ugetrlimit|waitpid|stime|\w+time64|clock_\w+64|arm_\w+|breakpoint|cacheflush|set_tls|sync_file_range2|umount|signalfd|epoll_ctl_old|epoll_wait_old|select|alarm|utime|utimes|futimesat|creat)$/;
  const unknown = defaultProfile.syscalls.flatMap((r) => r.names).filter((n) => !known.has(n) && !foreign.test(n));
  t.deepEqual(unknown, []);
  const unconditional = new Set(defaultProfile.syscalls.filter((r) => r.includes.caps.length === 0 && r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names));
  for (const n of ['mount', 'umount2', 'pivot_root', 'fsopen', 'fsmount', 'move_mount', 'open_tree', 'mount_setattr', 'init_module', 'finit_module',
    'kexec_load', 'kexec_file_load', 'reboot', 'add_key', 'request_key', 'keyctl', 'open_by_handle_at', 'bpf', 'perf_event_open', 'userfaultfd',
    'settimeofday', 'clock_settime', 'adjtimex', 'clock_adjtime', 'swapon', 'swapoff', 'unshare', 'setns', 'clone3']) {
    t.false(unconditional.has(n), n);
  }
});
