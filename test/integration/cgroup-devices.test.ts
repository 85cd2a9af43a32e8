/**
 * Device rules, enforced by the kernel: through v1's devices controller where it is mounted, else
 * as the eBPF device program of the cgroup's cgroup2 directory (lib/cgroup/devices.ts,
 * cpp/cgroup-bpf.cc). Cgroup's `devices` option, nsbox-runc's create (Node's and the cached C++
 * one) and update, and docker's default list on SDK containers where it is a program (cgroup v2).
 * Run on the host (hybrid: v1 rules) and in the cgroup-v2 VM (test/cgroup-v2-in-vm.sh).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { Cgroup } from '../../lib/cgroup/cgroup.js';
import { detectCgroups } from '../../lib/cgroup/detect.js';
import { Container } from '../../lib/container.js';
import { native } from '../../lib/native.js';
import { defaultSpec } from '../../lib/oci/defaults.js';
import { collect, isRoot, rootfs, skipIf } from './_helpers.js';
import { runcBin as bin, runcReason as runcMissing, type RuncCtx as Ctx } from './runc-fixture.js';

const test = anyTest as TestFn<Ctx>;
const layout = isRoot ? await detectCgroups() : undefined;
const enforced = layout && (layout.controllers.devices?.version === 1 || layout.unified !== undefined);
const reason = !isRoot ? 'needs root' : !enforced ? 'neither a v1 devices controller nor a cgroup2 hierarchy' : undefined;
const runcReason = reason ?? runcMissing;

test.before((t) => {
  if (reason) return;
  t.context.dir = mkdtempSync(join(tmpdir(), 'cgroup-devices-'));
  t.context.root = join(t.context.dir, 'state');
});
test.after.always((t) => {
  if (!t.context.dir) return;
  if (existsSync(t.context.root)) {
    for (const c of JSON.parse(runc(t, ['list', '--format', 'json']).stdout || '[]') as Array<{ id: string }>) runc(t, ['delete', '--force', c.id]);
  }
  rmSync(t.context.dir, { recursive: true, force: true });
});

/** Runs `script` in a shell that first moves itself into every directory of `cg`. */
function inCgroup(cg: Cgroup, script: string) {
  const join = Object.values(cg.paths).map((p) => `echo $$ > ${p}/cgroup.procs`).join('; ');
  return spawnSync('sh', ['-c', `${join}; ${script}`], { encoding: 'utf8', timeout: 60_000 });
}

async function cgroupDevices(t: ExecutionContext<Ctx>, driver: 'auto' | 'v2'): Promise<void> {
  const name = `devices-${process.pid}`;
  const deny = await Cgroup.create(name, { driver, devices: [{ allow: false }, { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }] });
  try {
    const r = inCgroup(deny, `cat /dev/null; head -c 3 /dev/zero | wc -c; mknod ${t.context.dir}/null c 1 3 || echo mknod-refused`);
    t.regex(r.stderr, /\/dev\/null: Operation not permitted/);
    t.is(r.stdout.trim().split('\n').join(' '), '3 mknod-refused');
    t.regex(r.stderr, /mknod.*Operation not permitted/);
  } finally {
    await deny.remove({ force: true });
  }
  const allow = await Cgroup.create(name, { driver, devices: [{ allow: false }, { allow: true, type: 'c', major: 1, minor: null, access: 'rwm' }] });
  try {
    const r = inCgroup(allow, 'cat /dev/null && echo null-ok');
    t.is(r.stdout, 'null-ok\n', r.stderr);
  } finally {
    await allow.remove({ force: true });
  }
}

skipIf(reason, test.serial)('Cgroup devices: a denied c 1:3 is EPERM to open, an allowed one reads; mknod of a denied node fails', (t) => cgroupDevices(t, 'auto'));

// On a hybrid host the same as a program on the cgroup2 hierarchy (the v1 cgroup, the root, allows all).
const hybridReason = reason ?? (layout?.mode !== 'hybrid' || !layout.unified ? 'not a hybrid host with a cgroup2 hierarchy' : undefined);
skipIf(hybridReason, test.serial)('Cgroup devices as an eBPF program on a hybrid host\'s cgroup2 hierarchy: the same', (t) => cgroupDevices(t, 'v2'));

/** Runs nsbox-runc; create's stdio goes to a file (the init inherits it and would hold pipes open). */
function runc(t: { context: Ctx }, args: string[]) {
  if (!args.includes('create')) return spawnSync(bin, ['--root', t.context.root, ...args], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const file = join(t.context.dir, `io-${n++}`);
  const fd = openSync(file, 'w+');
  try {
    const r = spawnSync(bin, ['--root', t.context.root, ...args], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', fd, fd] });
    return { ...r, stderr: readFileSync(file, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

let n = 0;
const CAPS = ['CAP_MKNOD', 'CAP_DAC_OVERRIDE'];
/** A bundle whose init sleeps, with `devices` as its rules and mknod in its capabilities. */
function bundle(t: { context: Ctx }, devices: object[], args = ['sleep', '1000']): string {
  const b = join(t.context.dir, `b${n++}`);
  mkdirSync(b);
  symlinkSync(rootfs(), join(b, 'rootfs'));
  const spec = defaultSpec() as { process: Record<string, unknown>; linux: Record<string, unknown> };
  const caps = { bounding: CAPS, effective: CAPS, permitted: CAPS };
  const config = { ...spec, process: { ...spec.process, terminal: false, args, capabilities: caps }, linux: { ...spec.linux, cgroupsPath: `nsbox-runc-devices/c${n}`, resources: { devices } } };
  writeFileSync(join(b, 'config.json'), JSON.stringify(config));
  return b;
}

/** `exec` of a shell line in the container: stdout and stderr. 240 and 241 have no driver: ENXIO where allowed, EPERM where denied. */
function probe(t: { context: Ctx }, id: string, major: number): string {
  const r = runc(t, ['exec', id, 'sh', '-c', `mknod /dev/p${major} c ${major} 0 2>/dev/null; cat /dev/p${major}`]);
  return r.stderr;
}

const only = (major: number) => [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major, minor: 0, access: 'rw' }];

skipIf(runcReason, test.serial)('nsbox-runc: the rules hold in the container, and update replaces them', async (t) => {
  const b = bundle(t, only(240));
  const c = runc(t, ['create', '--bundle', b, 'upd']);
  t.is(c.status, 0, c.stderr);
  t.is(runc(t, ['start', 'upd']).status, 0);
  t.regex(probe(t, 'upd', 240), /No such device or address/);
  t.regex(probe(t, 'upd', 241), /Operation not permitted/);
  const res = join(t.context.dir, 'resources.json');
  writeFileSync(res, JSON.stringify({ devices: only(241) }));
  const u = runc(t, ['update', '--resources', res, 'upd']);
  t.is(u.status, 0, u.stderr);
  t.regex(probe(t, 'upd', 241), /No such device or address/);
  t.regex(probe(t, 'upd', 240), /Operation not permitted/);
  t.regex(runc(t, ['exec', 'upd', 'sh', '-c', 'echo x > /dev/null && echo null-ok']).stdout, /null-ok/, 'the defaults stay after an update');
  t.is(runc(t, ['delete', '--force', 'upd']).status, 0);
});

/** The plan entries: name → inode (a miss rewrites an entry through a rename). */
function entries(t: { context: Ctx }): Map<string, number> {
  const dir = join(t.context.root, '.plans');
  return existsSync(dir) ? new Map(readdirSync(dir).map((f) => [f, statSync(join(dir, f)).ino])) : new Map();
}

/** create + start of `b` as `id`, its init's output (the create's stdout and stderr, a file) once it ended. */
async function runOnce(t: { context: Ctx }, b: string, id: string): Promise<string> {
  const out = join(t.context.dir, `out-${id}-${n++}`);
  const fd = openSync(out, 'w+');
  try {
    const c = spawnSync(bin, ['--root', t.context.root, 'create', '--bundle', b, id], { stdio: ['ignore', fd, fd], timeout: 120_000 });
    if (c.status !== 0) return `create: ${c.status} ${readFileSync(out, 'utf8')}`;
  } finally {
    closeSync(fd);
  }
  const pid = JSON.parse(runc(t, ['state', id]).stdout).pid as number;
  const pidfd = native.pidfdOpen(pid);
  const ended = new Promise<void>((resolve) => native.watchExit(pidfd, () => resolve()));
  runc(t, ['start', id]);
  await ended;
  runc(t, ['delete', '--force', id]);
  return readFileSync(out, 'utf8');
}

skipIf(runcReason, test.serial)('nsbox-runc: a create from the plan cache (C++) sets the same rules as Node\'s', async (t) => {
  const b = bundle(t, only(240), ['sh', '-c', 'mknod /dev/p240 c 240 0; mknod /dev/p241 c 241 0; cat /dev/p240; cat /dev/p241; true']);
  const first = await runOnce(t, b, 'cached');
  t.regex(first, /p240': No such device or address/);
  t.regex(first, /p241': Operation not permitted/);
  const before = entries(t);
  t.true(before.size > 0, 'the first create stored an entry');
  const second = await runOnce(t, b, 'cached');
  t.deepEqual(entries(t), before, 'a hit: the entries are as they were');
  t.regex(second, /p240': No such device or address/);
  t.regex(second, /p241': Operation not permitted/);
});

const sdkReason = reason ?? (layout?.controllers.devices?.version === 1 ? 'the v1 devices controller is mounted: SDK containers get docker\'s list as a program only on cgroup v2 (here nodev mounts keep made nodes unusable)' : undefined);

skipIf(sdkReason, test.serial)('SDK Container on cgroup v2: docker\'s default list (null, zero, tty, pts usable; a block node it makes is not)', async (t) => {
  const vol = join(t.context.dir, 'vol');
  mkdirSync(vol);
  // The tty: one as the container's terminal (/dev/tty is its controlling one, a pts).
  await using c = await Container.run({
    rootfs: rootfs(),
    mounts: [{ type: 'bind', source: vol, target: '/vol' }],
    capAdd: ['MKNOD'],
    tty: true,
    command: ['sh', '-c', [
      'echo x > /dev/null && echo null-ok',
      'head -c 2 /dev/zero | wc -c',
      'echo x > /dev/tty && echo tty-ok',
      'ls /dev/pts/ptmx >/dev/null && echo pts-ok',
      'mknod /vol/blk b 7 0 && echo mknod-ok',
      'head -c 1 /vol/blk',
      'mknod /vol/mem c 1 1 && cat /vol/mem',
    ].join('; ')],
  });
  const [out] = await Promise.all([collect(c.stdout), c.wait()]);
  const lines = out.replace(/\r/g, '').split('\n').filter((l) => l && l !== 'x');
  t.deepEqual(lines.slice(0, 5), ['null-ok', '2', 'tty-ok', 'pts-ok', 'mknod-ok'], out);
  t.regex(out, /\/vol\/blk'?: Operation not permitted/);
  t.regex(out, /\/vol\/mem'?: Operation not permitted/);
});
