/**
 * Escape attempts from a default container (root inside, docker's defences) must fail, and each is
 * shown to succeed with that defence turned off, so no test passes vacuously. System calls are
 * made with perl's syscall() in a host sandbox (the host's /usr, read-only) and judged by errno:
 * with the defence on EPERM; with it off the kernel gets as far as rejecting the (invalid,
 * harmless) arguments. Nothing here changes the host: every call is made to fail after the
 * permission checks.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { Container, raw, type ContainerOptions } from '../../lib/index.js';
import { collect, rootTest, rootfs, skipIf } from './_helpers.js';

const notX86 = process.arch === 'x64' ? undefined : `the filter's syscall numbers here are x86_64's, not ${process.arch}'s`;
const test = rootTest;

async function run(options: Partial<ContainerOptions> & { command: string[] }) {
  await using c = await Container.run({ ...options } as ContainerOptions);
  const [out, err, status] = await Promise.all([collect(c.stdout), collect(c.stderr), c.wait()]);
  return { out: out.trim(), err, status };
}
const sh = (script: string, options: Partial<ContainerOptions> = {}) => run({ rootfs: rootfs(), command: ['/bin/sh', '-c', script], ...options });

/** errno of a raw system call, made by perl in a host sandbox. */
async function errnoOf(call: string, options: Partial<ContainerOptions> = {}): Promise<number> {
  const { out, err } = await run({ command: ['/usr/bin/perl', '-e', `$! = 0; my $r = ${call}; print $r == -1 ? $! + 0 : 0`], ...options });
  if (!/^\d+$/.test(out)) throw new Error(`perl printed "${out}" ${err}`);
  return Number(out);
}

const EPERM = 1;
const PRIVILEGED = { privileged: true } as const;

// x86_64 numbers; each call gets arguments the kernel rejects after its permission checks.
const CALLS: Array<[string, string]> = [
  ['load a kernel module (init_module)', 'syscall(175, 0, 0, 0)'],
  ['reboot', 'syscall(169, 0, 0, 0, 0)'],
  ['use the keyring (keyctl)', 'syscall(250, 0, 123456789, 0)'],
  ['load a BPF program (bpf)', 'syscall(321, 9999, 0, 0)'],
  ['perf_event_open', 'syscall(298, 0, 0, -1, -1, 0)'],
  ['userfaultfd', 'syscall(323, 0xffff)'],
  ['set the clock (clock_settime)', 'syscall(227, 99, 0)'],
  ['swapon', 'syscall(167, my $p = "/nonexistent-nsbox", 0)'],
  ['open_by_handle_at', 'syscall(304, -1, 0, 0)'],
  ['mount', 'syscall(165, my $s = "none", my $t = "/nonexistent-nsbox", my $f = "tmpfs", 0, 0)'],
];

for (const [what, call] of CALLS) {
  skipIf(notX86, test)(`denied: ${what}`, async (t) => {
    t.is(await errnoOf(call), EPERM, 'a default container gets EPERM');
    t.not(await errnoOf(call, PRIVILEGED), EPERM, 'privileged (all capabilities, no seccomp) reaches the kernel');
  });
}

test('denied: a new user namespace to regain capabilities', async (t) => {
  const on = await sh('unshare -U -r id -u 2>&1');
  t.regex(on.out, /Operation not permitted/);
  const off = await sh('unshare -U -r id -u 2>&1', { seccomp: 'unconfined' });
  t.is(off.out, '0');
});

test('denied: mount anything', async (t) => {
  const on = await sh('mount -t tmpfs none /tmp 2>&1 && echo mounted');
  t.notRegex(on.out, /mounted/);
  const off = await sh('mount -t tmpfs none /tmp && echo mounted', { capAdd: ['SYS_ADMIN'] });
  t.is(off.out, 'mounted');
});

test('denied: remount a read-only root writable', async (t) => {
  const on = await sh('mount -o remount,rw / 2>&1; touch /x 2>&1 && echo wrote', { readonlyRootfs: true });
  t.notRegex(on.out, /wrote/);
  const off = await sh('mount -o remount,bind,rw / && touch /tmp/.nsbox-x && rm /tmp/.nsbox-x && echo wrote', { readonlyRootfs: true, ...PRIVILEGED });
  t.is(off.out, 'wrote');
});

test('denied: write /proc/sys; read /proc/kcore', async (t) => {
  const on = await sh('echo 5000 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo wrote; echo done');
  t.is(on.out, 'done', 'read-only /proc/sys');
  const off = await sh('echo 5000 > /proc/sys/kernel/ns_last_pid && echo wrote', PRIVILEGED);
  t.is(off.out, 'wrote');
  if (!existsSync('/proc/kcore')) {
    t.log('this kernel has no /proc/kcore: only /proc/sys checked');
    return;
  }
  const kcore = await sh('head -c 4 /proc/kcore | wc -c');
  t.is(kcore.out, '0', 'a masked /proc/kcore reads empty');
  const kcoreOff = await sh('head -c 4 /proc/kcore | wc -c', PRIVILEGED);
  t.is(kcoreOff.out, '4');
});

test('denied: mknod a device and read it (the host disk, the kernel log)', async (t) => {
  const disk = execFileSync('stat', ['-c', '%t:%T', execFileSync('findmnt', ['-no', 'SOURCE', '/'], { encoding: 'utf8' }).trim()], { encoding: 'utf8' }).trim();
  const [maj, min] = disk.split(':').map((h) => parseInt(h, 16));
  t.true(Number.isInteger(maj) && Number.isInteger(min), `the host root's block device (${disk})`);
  // In /dev, a tmpfs of the container's own (nodev unless privileged): nothing lands in the rootfs.
  const read = (node: string, type: string, majMin: string) => `mknod /dev/${node} ${type} ${majMin} && head -c 1 /dev/${node} | wc -c`;
  const on = await sh(`${read('nsbox-disk', 'b', `${maj} ${min}`)}; ${read('nsbox-kmsg', 'c', '1 11')}`);
  t.is(on.out, '0\n0', 'the nodes are made, but not a byte can be read through them');
  t.regex(on.err, /Permission denied|Operation not permitted/);
  // Privileged, a node made inside works: the kernel log (this VM refuses its disk even to the host's root).
  const off = await sh(read('nsbox-kmsg', 'c', '1 11'), PRIVILEGED);
  t.is(off.out, '1');
});

test('denied: see or signal a host process', async (t) => {
  const on = await sh(`kill -0 ${process.pid} 2>&1 && echo reached; test -e /proc/${process.pid} && echo visible`);
  t.notRegex(on.out, /reached|visible/);
  const off = await sh(`kill -0 ${process.pid} && echo reached`, { namespaces: { pid: false } });
  t.is(off.out, 'reached');
});

test("denied: change the host's hostname", async (t) => {
  const before = hostname();
  const on = await sh('hostname evil 2>&1; hostname', {});
  t.notRegex(on.out, /^evil$/m);
  t.is(hostname(), before);
  // Privileged, it may rename itself, in its own UTS namespace only; shared, the call reaches the host
  // (with the host's own name, so nothing changes).
  const own = await sh('hostname evil && hostname', PRIVILEGED);
  t.is(own.out, 'evil');
  t.is(hostname(), before);
  const shared = await sh(`hostname ${before} && echo set`, { ...PRIVILEGED, namespaces: { uts: false } });
  t.is(shared.out, 'set');
});

test("denied: reach the host's network", async (t) => {
  const server = createServer((_, res) => res.end('host-secret'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  // busybox's nc (its static wget crashes resolving even a literal address here).
  const get = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 ${port} 2>&1 | tail -1`;
  const on = await sh(get);
  t.regex(on.out, /refused/);
  const off = await sh(get, { namespaces: { net: false } });
  t.is(off.out, 'host-secret');
});

test('denied: an fd of the Node process (only stdio reaches the container)', async (t) => {
  const on = await sh('ls /proc/self/fd | wc -l');
  t.is(on.out, '4', 'fds 0, 1, 2 and the one ls reads /proc/self/fd with');
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync('/etc/hostname', 'r');
  t.teardown(() => closeSync(fd));
  const off = await sh('cat', { stdio: [fd, 'pipe', 'pipe'] });
  t.is(off.out, hostname(), 'an fd handed over on purpose does reach it');
});

test("denied: the host's node binary through /proc/PID/exe", async (t) => {
  await using c = await Container.run({ rootfs: rootfs(), command: ['/bin/sleep', '100'], stdio: 'ignore' });
  const p = await c.exec(['/bin/sh', '-c', 'for e in /proc/[0-9]*/exe; do readlink $e; done']);
  const [out] = await Promise.all([collect(p.stdout), p.wait()]);
  t.false(/node/.test(out), `no process inside runs the host's node: ${out}`);
  const off = await sh(`readlink /proc/${process.pid}/exe`, { namespaces: { pid: false }, capAdd: ['SYS_PTRACE'] });
  t.regex(off.out, /node/, 'with the host pid namespace it is there to be found');
});

test('capabilities: docker’s default set; a non-root user has none; capDrop ALL', async (t) => {
  const caps = await sh('grep -E "^Cap(Eff|Bnd)" /proc/self/status | cut -f2; grep NoNewPrivs /proc/self/status | cut -f2');
  t.is(caps.out, '00000000a80425fb\n00000000a80425fb\n1');
  const user = await sh('grep ^CapEff /proc/self/status | cut -f2', { user: '1000' });
  t.is(user.out, '0000000000000000');
  const none = await sh('grep ^CapBnd /proc/self/status | cut -f2', { capDrop: ['ALL'] });
  t.is(none.out, '0000000000000000');
  const nnpOff = await sh('grep NoNewPrivs /proc/self/status | cut -f2', { noNewPrivileges: false });
  t.is(nnpOff.out, '0');
});

test('seccomp: common programs still run; a custom profile is applied', async (t) => {
  const busy = await sh('ls / >/dev/null && echo x | sed s/x/y/ && wget --help >/dev/null 2>&1; ps >/dev/null && id -u && echo ok');
  t.is(busy.out, 'y\n0\nok');
  const strict = await sh('mkdir /tmp/d 2>&1 || echo denied', {
    seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] },
  });
  t.regex(strict.out, /denied|Operation not permitted/);
});

test('seccomp: a Debian shell and node (the host sandbox) run under the default profile', async (t) => {
  const bash = await run({ command: ['/bin/bash', '-c', 'echo "$BASH_VERSION" | cut -d. -f1; ls /usr/bin | wc -l | tr -d " " | grep -q . && echo listed'] });
  t.regex(bash.out, /^\d+\nlisted$/);
  const node = await run({ command: [process.execPath, '-e', "const cp = require('child_process'); console.log(require('fs').readdirSync('/').length > 0, cp.execSync('echo child').toString().trim(), require('os').cpus().length > 0)"] });
  t.is(node.out, 'true child true', node.err);
});

skipIf(notX86, test)('denied: ptrace a process outside', async (t) => {
  const target = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => target.kill('SIGKILL'));
  // PTRACE_ATTACH (16): perl detaches on exit, and the target is killed afterwards anyway.
  const call = `syscall(101, 16, ${target.pid}, 0, 0)`;
  t.not(await errnoOf(call), 0, 'the host process is not even visible');
  t.is(await errnoOf(call, { namespaces: { pid: false }, capAdd: ['SYS_PTRACE'], seccomp: 'unconfined' }), 0, 'with the host pid namespace and CAP_SYS_PTRACE, attached');
});

test('denied: escape by chroot (the old root is gone after pivot_root)', async (t) => {
  // The classic: chroot into a subdirectory, climb with "..", chroot "." — which only reaches the real
  // root when the process was put in a chroot rather than a pivoted mount namespace.
  const escape = 'mkdir "/tmp/x"; chroot "/tmp/x"; chdir ".." for 1..64; chroot "."; print -d "/work" ? "escaped" : "contained"';
  const on = await run({ command: ['/usr/bin/perl', '-e', escape] });
  t.is(on.out, 'contained');
  // Defence off: a root given by chroot alone (no mount namespace). It is built, in a temp dir of
  // the test, from binds of the host's system directories, unmounted afterwards.
  const root = mkdtempSync(join(tmpdir(), 'nsbox-chroot-'));
  const mounted: string[] = [];
  t.teardown(() => {
    for (const m of mounted.reverse()) raw.umount(m, raw.constants.MNT_DETACH);
    rmSync(root, { recursive: true, force: true });
  });
  for (const d of readdirSync('/')) {
    const st = lstatSync(`/${d}`);
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(`/${d}`), join(root, d));
    else if (['usr', 'etc', 'lib', 'lib64', 'dev'].includes(d)) {
      mkdirSync(join(root, d));
      raw.mount(`/${d}`, join(root, d), null, raw.constants.MS_BIND | raw.constants.MS_REC);
      mounted.push(join(root, d));
    }
  }
  mkdirSync(join(root, 'tmp'));
  const off = await run({ rootfs: root, namespaces: { mount: false }, command: ['/usr/bin/perl', '-e', escape] });
  t.is(off.out, 'escaped');
});
