/**
 * The compiled seccomp programs, run on synthetic `seccomp_data` by a small classic-BPF interpreter
 * that follows the kernel's semantics (unsigned 32-bit compares, relative jumps, RET ends the run).
 */
import test from 'ava';
import {
  compileSeccomp, defaultProfile, parseSeccompProfile, seccompFlags, SYSCALLS, AUDIT_ARCH, BPF_MAXINSNS, SECCOMP_RET, decodeProgram,
  hostSeccompArch, type SeccompArch, type SeccompProfile,
} from '../../lib/runtime/seccomp/index.js';
import { ValidationError } from '../../lib/errors.js';

interface Data { nr: number; arch: number; args?: bigint[] }

function seccompData(d: Data): Buffer {
  const b = Buffer.alloc(64);
  b.writeInt32LE(d.nr, 0);
  b.writeUInt32LE(d.arch, 4);
  (d.args ?? []).forEach((a, i) => b.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  return b;
}

/** Returns the RET value; throws on anything the kernel's checker or runtime would refuse. */
function run(prog: Buffer, d: Data): number {
  const insns = decodeProgram(prog);
  const data = seccompData(d);
  let A = 0;
  for (let pc = 0, steps = 0; steps < 100_000; steps++) {
    const ins = insns[pc];
    if (!ins) throw new Error(`pc ${pc} outside the program`);
    const { code, jt, jf, k } = ins;
    const cond = (c: boolean) => { pc += 1 + (c ? jt : jf); };
    switch (code) {
      case 0x20: // LD W ABS
        if (k % 4 !== 0 || k + 4 > 64) throw new Error(`bad load offset ${k}`);
        A = data.readUInt32LE(k); pc++; break;
      case 0x54: A = (A & k) >>> 0; pc++; break; // ALU AND K
      case 0x05: pc += 1 + k; break; // JA
      case 0x15: cond(A === k); break; // JEQ
      case 0x25: cond(A > k); break; // JGT
      case 0x35: cond(A >= k); break; // JGE
      case 0x45: cond((A & k) !== 0); break; // JSET
      case 0x06: return k >>> 0; // RET K
      default: throw new Error(`opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('no RET');
}

const ERRNO = (e: number) => (SECCOMP_RET.ERRNO | e) >>> 0;
const EPERM = ERRNO(1);
const ENOSYS = ERRNO(38);
const ALLOW = SECCOMP_RET.ALLOW;
const CLONE_NEWUSER = 0x10000000n;
const SIGCHLD = 17n;
const DOCKER_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

for (const arch of ['x86_64', 'aarch64'] as const) {
  const table = SYSCALLS[arch];
  const verdict = (prog: Buffer, name: string, args: bigint[] = []) => {
    const nr = table[name];
    if (nr === undefined) throw new Error(`${name} unknown on ${arch}`);
    return run(prog, { nr, arch: AUDIT_ARCH[arch], args });
  };
  const prog = compileSeccomp(defaultProfile, { arch, caps: new Set(DOCKER_CAPS), kernel: '6.1.0' });

  test(`${arch}: the default profile compiles to a valid, bounded program`, (t) => {
    t.is(prog.length % 8, 0);
    const n = prog.length / 8;
    t.log(`${arch}: ${n} instructions`);
    t.true(n > 100 && n < BPF_MAXINSNS);
    // What the kernel's checker demands: every jump lands inside, the last instruction returns.
    const insns = decodeProgram(prog);
    insns.forEach((ins, pc) => {
      if (ins.code === 0x05) t.true(pc + 1 + ins.k < n, `JA at ${pc}`);
      else if ((ins.code & 0x07) === 0x05) t.true(pc + 1 + Math.max(ins.jt, ins.jf) < n, `jump at ${pc}`);
    });
    t.is(insns.at(-1)!.code, 0x06);
  });

  test(`${arch}: ordinary syscalls are allowed`, (t) => {
    for (const name of ['read', 'write', 'execve', 'openat', 'mmap', 'futex', 'exit_group', 'rt_sigreturn', 'clock_gettime', 'getrandom']) {
      t.is(verdict(prog, name), ALLOW, name);
    }
    t.is(verdict(prog, 'clone', [SIGCHLD]), ALLOW, 'fork-style clone');
    t.is(verdict(prog, 'clone', [0x3d0f00n]), ALLOW, 'thread-style clone');
    t.is(verdict(prog, 'socket', [2n, 1n, 0n]), ALLOW, 'AF_INET socket');
    t.is(verdict(prog, 'personality', [0xffffffffn]), ALLOW, 'personality query');
    t.is(verdict(prog, 'chroot'), ALLOW, 'chroot with CAP_SYS_CHROOT');
  });

  test(`${arch}: dangerous syscalls fail with EPERM`, (t) => {
    for (const name of ['mount', 'umount2', 'pivot_root', 'fsopen', 'fsmount', 'move_mount', 'open_tree', 'mount_setattr', 'init_module',
      'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load', 'reboot', 'add_key', 'request_key', 'keyctl', 'bpf',
      'perf_event_open', 'userfaultfd', 'clock_settime', 'settimeofday', 'adjtimex', 'clock_adjtime', 'swapon', 'swapoff',
      'open_by_handle_at', 'kcmp', 'setns', 'unshare', 'sethostname', 'quotactl', 'acct', 'lookup_dcookie', 'syslog', 'vhangup']) {
      t.is(verdict(prog, name), EPERM, name);
    }
    t.is(verdict(prog, 'unshare', [CLONE_NEWUSER]), EPERM);
    t.is(verdict(prog, 'clone', [CLONE_NEWUSER | SIGCHLD]), EPERM, 'clone(CLONE_NEWUSER)');
    t.is(verdict(prog, 'clone', [0x20000n]), EPERM, 'clone(CLONE_NEWNS)');
    t.is(verdict(prog, 'socket', [40n, 1n, 0n]), EPERM, 'AF_VSOCK');
    t.is(verdict(prog, 'personality', [0x0040000n]), EPERM, 'ADDR_NO_RANDOMIZE');
    t.is(verdict(prog, 'personality', [1n << 32n]), EPERM, 'upper half is compared too');
    t.is(run(prog, { nr: 100_000, arch: AUDIT_ARCH[arch] }), EPERM, 'an unknown number');
    t.is(run(prog, { nr: -1, arch: AUDIT_ARCH[arch] }), EPERM, 'nr -1');
  });

  test(`${arch}: clone3 gets ENOSYS so libcs fall back to clone`, (t) => {
    t.is(verdict(prog, 'clone3'), ENOSYS);
  });

  test(`${arch}: CAP_SYS_ADMIN opens the mount family and namespaces`, (t) => {
    const admin = compileSeccomp(defaultProfile, { arch, caps: new Set([...DOCKER_CAPS, 'CAP_SYS_ADMIN']), kernel: '6.1.0' });
    for (const name of ['mount', 'umount2', 'fsopen', 'move_mount', 'setns', 'unshare', 'clone3', 'bpf']) t.is(verdict(admin, name), ALLOW, name);
    t.is(verdict(admin, 'clone', [CLONE_NEWUSER]), ALLOW);
    for (const name of ['init_module', 'kexec_load', 'reboot', 'keyctl', 'clock_settime']) t.is(verdict(admin, name), EPERM, name);
  });

  test(`${arch}: other capability groups`, (t) => {
    const p = compileSeccomp(defaultProfile, { arch, caps: ['SYS_MODULE', 'sys_time', 'CAP_SYS_PTRACE', 'CAP_SYS_BOOT'], kernel: '6.1.0' });
    for (const name of ['init_module', 'finit_module', 'clock_settime', 'settimeofday', 'ptrace', 'process_vm_readv', 'reboot']) t.is(verdict(p, name), ALLOW, name);
    t.is(verdict(p, 'chroot'), EPERM, 'no CAP_SYS_CHROOT');
    t.is(verdict(p, 'kexec_load'), EPERM);
  });

  test(`${arch}: minKernel: ptrace is allowed from 4.8 on only`, (t) => {
    t.is(verdict(compileSeccomp(defaultProfile, { arch, caps: [], kernel: '4.8.0' }), 'ptrace'), ALLOW);
    t.is(verdict(compileSeccomp(defaultProfile, { arch, caps: [], kernel: '4.4.0-200' }), 'ptrace'), EPERM);
  });

  test(`${arch}: another architecture is killed`, (t) => {
    const other = arch === 'x86_64' ? AUDIT_ARCH.aarch64 : AUDIT_ARCH.x86_64;
    t.is(run(prog, { nr: table.read!, arch: other }), SECCOMP_RET.KILL_PROCESS);
    t.is(run(prog, { nr: 3, arch: 0x40000003 /* i386 */ }), SECCOMP_RET.KILL_PROCESS);
  });
}

test('x86_64: x32 syscalls are denied, even under an allow-by-default profile', (t) => {
  const x = SYSCALLS.x86_64;
  const x32 = (prog: Buffer, nr: number) => run(prog, { nr: (nr | 0x40000000) >>> 0, arch: AUDIT_ARCH.x86_64 });
  const prog = compileSeccomp(defaultProfile, { arch: 'x86_64', caps: [] });
  t.is(x32(prog, x.read!), EPERM);
  const open = compileSeccomp(parseSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ERRNO' }] }), { arch: 'x86_64', caps: [] });
  t.is(run(open, { nr: x.read!, arch: AUDIT_ARCH.x86_64 }), ALLOW);
  t.is(run(open, { nr: x.mount!, arch: AUDIT_ARCH.x86_64 }), EPERM);
  t.is(x32(open, x.mount!), EPERM);
});

test('actions and errnoRet map to the kernel return values', (t) => {
  const nr = SYSCALLS.x86_64;
  const p = compileSeccomp(parseSeccompProfile({
    defaultAction: 'SCMP_ACT_KILL_PROCESS',
    syscalls: [
      { names: ['read'], action: 'SCMP_ACT_ALLOW' },
      { names: ['write'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
      { names: ['getpid'], action: 'SCMP_ACT_LOG' },
      { names: ['gettid'], action: 'SCMP_ACT_TRAP' },
      { names: ['getuid'], action: 'SCMP_ACT_KILL' },
      { names: ['getgid'], action: 'SCMP_ACT_TRACE', errnoRet: 7 },
      { names: ['open'], action: 'SCMP_ACT_ERRNO' },
      { names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' },
      { names: ['getppid'], action: 'SCMP_ACT_KILL_THREAD' },
      { names: ['no_such_syscall'], action: 'SCMP_ACT_ALLOW' },
    ],
    listenerPath: '/run/agent.sock',
  }), { arch: 'x86_64', caps: [] });
  const v = (n: string) => run(p, { nr: nr[n]!, arch: AUDIT_ARCH.x86_64 });
  t.is(v('read'), 0x7fff0000);
  t.is(v('write'), 0x0005000d);
  t.is(v('getpid'), 0x7ffc0000);
  t.is(v('gettid'), 0x00030000);
  t.is(v('getuid'), 0);
  t.is(v('getgid'), 0x7ff00007);
  t.is(v('open'), 0x00050001, 'ERRNO defaults to EPERM');
  t.is(v('mkdir'), 0x7fc00000, 'NOTIFY is SECCOMP_RET_USER_NOTIF');
  t.is(v('getppid'), 0);
  t.is(v('close'), 0x80000000);
});

test('seccomp(2) flags: the profile\'s, NEW_LISTENER with a notify rule (TSYNC then with TSYNC_ESRCH), WAIT_KILLABLE_RECV only with a listener', (t) => {
  const base = { defaultAction: 'SCMP_ACT_ALLOW' };
  t.is(seccompFlags(parseSeccompProfile(base)), 0);
  t.is(seccompFlags(parseSeccompProfile({ ...base, flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_TSYNC'] })), 2 | 4 | 1);
  t.is(seccompFlags(parseSeccompProfile({ ...base, flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] })), 0);
  const notify = { ...base, listenerPath: '/run/a.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] };
  t.is(seccompFlags(parseSeccompProfile(notify)), 8);
  t.is(seccompFlags(parseSeccompProfile({ ...notify, flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV', 'SECCOMP_FILTER_FLAG_TSYNC'] })), 32 | 8 | 1 | 16);
});

/** The 64-bit comparison libseccomp documents for each op. */
function expected(op: string, arg: bigint, value: bigint, valueTwo: bigint): boolean {
  switch (op) {
    case 'SCMP_CMP_EQ': return arg === value;
    case 'SCMP_CMP_NE': return arg !== value;
    case 'SCMP_CMP_LT': return arg < value;
    case 'SCMP_CMP_LE': return arg <= value;
    case 'SCMP_CMP_GT': return arg > value;
    case 'SCMP_CMP_GE': return arg >= value;
    default: return (arg & value) === valueTwo;
  }
}

test('argument comparisons match 64-bit semantics on edge and random values', (t) => {
  const ops = ['SCMP_CMP_EQ', 'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_GT', 'SCMP_CMP_GE', 'SCMP_CMP_MASKED_EQ'] as const;
  const M = (1n << 64n) - 1n;
  const edges = [0n, 1n, 0xffffffffn, 0x100000000n, 0x100000001n, 0xfffffffe_ffffffffn, M, M - 1n, 0x7e020000n, 0x80000000_00000000n];
  let seed = 42n;
  const rnd = () => { seed = (seed * 6364136223846793005n + 1442695040888963407n) & M; return seed; };
  const values = [...edges, ...Array.from({ length: 8 }, rnd)];
  const nr = SYSCALLS.x86_64;
  let checked = 0;
  for (const op of ops) {
    for (const value of values) {
      const valueTwo = op === 'SCMP_CMP_MASKED_EQ' ? value & 0xffff0000_0000ffffn : 0n;
      const p = compileSeccomp(parseSeccompProfile({
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [{ names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value, valueTwo, op }] }],
      }), { arch: 'x86_64', caps: [] });
      const args = [...values, ...Array.from({ length: 6 }, rnd), value, value + 1n & M, value - 1n & M, valueTwo];
      for (const a of args) {
        const got = run(p, { nr: nr.ioctl!, arch: AUDIT_ARCH.x86_64, args: [0n, 0n, a] }) === ALLOW;
        if (got !== expected(op, a, value, valueTwo)) t.fail(`${op} arg=${a} value=${value} valueTwo=${valueTwo}`);
        checked++;
      }
    }
  }
  t.log(`${checked} comparisons`);
  t.true(checked > 1000, 'the comparisons ran');
});

test('several conditions in a rule are all required; rules for one syscall are alternatives', (t) => {
  const nr = SYSCALLS.aarch64;
  const p = compileSeccomp(parseSeccompProfile({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['fcntl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 3, op: 'SCMP_CMP_GE' }, { index: 1, value: 10, op: 'SCMP_CMP_LT' }] },
      { names: ['fcntl'], action: 'SCMP_ACT_ERRNO', errnoRet: 22, args: [{ index: 1, value: 1024, op: 'SCMP_CMP_EQ' }] },
      { names: ['fcntl'], action: 'SCMP_ACT_LOG' },
    ],
  }), { arch: 'aarch64', caps: [] });
  const v = (...args: bigint[]) => run(p, { nr: nr.fcntl!, arch: AUDIT_ARCH.aarch64, args });
  t.is(v(3n, 9n), ALLOW);
  t.is(v(2n, 9n), 0x7ffc0000, 'first rule fails on arg 0, falls to the unconditional rule');
  t.is(v(3n, 10n), 0x7ffc0000);
  t.is(v(3n, 1024n), ERRNO(22));
});

test('long programs: far branches use JA, and the instruction limit is enforced', (t) => {
  const names = Object.keys(SYSCALLS.x86_64);
  const rule = (i: number) => ({ names: [names[i]!], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: i, op: 'SCMP_CMP_EQ' }, { index: 1, value: 1, op: 'SCMP_CMP_MASKED_EQ', valueTwo: 1 }] });
  const big: SeccompProfile = parseSeccompProfile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: names.slice(0, 250).map((_, i) => rule(i)) });
  const p = compileSeccomp(big, { arch: 'x86_64', caps: [] });
  t.true(decodeProgram(p).some((i) => i.code === 0x05), 'a JA was needed');
  for (const i of [0, 7, 124, 249]) {
    const nr = SYSCALLS.x86_64[names[i]!]!;
    t.is(run(p, { nr, arch: AUDIT_ARCH.x86_64, args: [BigInt(i), 1n] }), ALLOW, names[i]);
    t.is(run(p, { nr, arch: AUDIT_ARCH.x86_64, args: [BigInt(i), 2n] }), EPERM, names[i]);
  }
  const huge = parseSeccompProfile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: names.map((n) => ({ ...rule(0), names: [n], args: Array.from({ length: 6 }, (_, index) => ({ index, value: 1, op: 'SCMP_CMP_GE' })) })) });
  const err = t.throws(() => compileSeccomp(huge, { arch: 'x86_64', caps: [] }), { instanceOf: ValidationError });
  t.regex(err.message, /at most 4096/);
});

test('conflicting unconditional actions are refused', (t) => {
  const p = parseSeccompProfile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }, { names: ['read'], action: 'SCMP_ACT_LOG' }] });
  t.throws(() => compileSeccomp(p, { arch: 'x86_64', caps: [] }), { instanceOf: ValidationError, message: /read has two unconditional rules/ });
});

test('hostSeccompArch maps process.arch', (t) => {
  t.is(hostSeccompArch('x64'), 'x86_64');
  t.is(hostSeccompArch('arm64'), 'aarch64');
  t.is(hostSeccompArch('ppc64'), undefined);
  const host: SeccompArch | undefined = hostSeccompArch();
  t.log(`host: ${host}`);
});
