/** config.json → spawn plan (lib/oci): each field's ops, checked without root. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ValidationError } from '../../lib/errors.js';
import { parseFlags, b, r, v, flag, list } from '../../lib/oci/args.js';
import { ociResources } from '../../lib/oci/cgroup.js';
import { ConfigSchema, loadConfig, parseWith } from '../../lib/oci/config.js';
import { defaultSpec } from '../../lib/oci/defaults.js';
import { parseMountOptions } from '../../lib/oci/mounts.js';
import { capMask, parseSignal } from '../../lib/oci/process-ops.js';
import { agentStateTemplate } from '../../lib/oci/seccomp-agent.js';
import { namespaceFlags, ociSpawnPlan, type OciPlanContext } from '../../lib/oci/spawn-plan.js';
import { checkId } from '../../lib/oci/state.js';
import { CLONE, MOUNT_ATTR, MS } from '../../lib/runtime/plan.js';

const bundle = mkdtempSync(join(tmpdir(), 'oci-plan-'));
mkdirSync(join(bundle, 'rootfs'));
mkdirSync(join(bundle, 'data'));
writeFileSync(join(bundle, 'file'), '');
test.after.always(() => rmSync(bundle, { recursive: true, force: true }));
const ctx: OciPlanContext = { id: 'c1', bundle, privileged: true, cgroups: [{ name: '', fstype: 'cgroup2', data: '', hostDir: '/sys/fs/cgroup/x' }], stdio: [0, 1, 2], fifoFd: 9 };
const spec = (): Record<string, unknown> => {
  const { hostname: _, ...rest } = defaultSpec() as Record<string, unknown>;
  return rest;
};
const config = (o: Record<string, unknown> = {}) => parseWith(ConfigSchema, { ...spec(), ...o }, 'config');
const withProcess = (p: Record<string, unknown>) => config({ process: { ...(defaultSpec() as { process: object }).process, terminal: false, ...p } });
const opsOf = (c: ReturnType<typeof config>) => ociSpawnPlan(c, ctx).ops;

test('schema: unknown fields are ignored, a bad known one is a ValidationError naming it', (t) => {
  const c = config({ futureField: { x: 1 }, linux: { namespaces: [{ type: 'pid' }], newThing: true } });
  t.false('futureField' in c);
  t.is(c.linux.namespaces[0]!.type, 'pid');
  const e = t.throws(() => withProcess({ user: { uid: 'root', gid: 0 } }), { instanceOf: ValidationError });
  t.regex(e.message, /process\.user\.uid/);
  t.throws(() => config({ root: undefined }), { instanceOf: ValidationError, message: /root/ });
  t.throws(() => config({ linux: { namespaces: [{ type: 'bogus' }] } }), { instanceOf: ValidationError, message: /linux\.namespaces\.0\.type/ });
  t.throws(() => withProcess({ args: [] }), { message: /process\.args: must name a program/ });
  for (const ok of ['1.0.0', '1.0.2-dev', '1.1.0+dev', '1.2.0-rc.1']) t.is(config({ ociVersion: ok }).ociVersion, ok);
  for (const bad of ['invalid', '2.0.0', '1.0', '']) t.throws(() => config({ ociVersion: bad }), { instanceOf: ValidationError, message: /ociVersion: expected a runtime-spec version 1\.x\.y/ });
});

test('loadConfig: a missing config.json is NotFound, bad JSON a ValidationError', (t) => {
  const d = mkdtempSync(join(tmpdir(), 'oci-cfg-'));
  t.throws(() => loadConfig(d), { message: /config\.json not found/ });
  writeFileSync(join(d, 'config.json'), '{ nope');
  t.throws(() => loadConfig(d), { instanceOf: ValidationError, message: /invalid config\.json/ });
  rmSync(d, { recursive: true });
});

test('namespaces: fresh ones are clone flags (cgroup by an op after placement), a network path is joined by the spawn', (t) => {
  const c = config({ linux: { namespaces: ['pid', 'mount', 'ipc', 'uts', 'cgroup', 'network'].map((type) => ({ type })) } });
  const p = ociSpawnPlan(c, ctx);
  t.is(p.cloneFlags, CLONE.NEWPID | CLONE.NEWNS | CLONE.NEWIPC | CLONE.NEWUTS | CLONE.NEWNET);
  t.deepEqual(p.ops[0], { op: 'unshare', flags: CLONE.NEWCGROUP });
  t.is(namespaceFlags(c), p.cloneFlags | CLONE.NEWCGROUP);
  const joined = ociSpawnPlan(config({ linux: { namespaces: [{ type: 'mount' }, { type: 'network', path: '/run/netns/x' }] } }), ctx);
  t.is(joined.netns, '/run/netns/x');
  t.is(joined.cloneFlags, CLONE.NEWNS);
  t.false(p.pdeathsig, 'the init outlives the create process');
  // A pid namespace by path: born in it (the spawning thread joins it for the clone), no CLONE_NEWPID;
  // exec still joins the init's pid namespace.
  const podPid = config({ linux: { namespaces: [{ type: 'pid', path: '/proc/1/ns/pid' }, { type: 'mount' }] } });
  const inPod = ociSpawnPlan(podPid, ctx);
  t.is(inPod.pidns, '/proc/1/ns/pid');
  t.is(inPod.cloneFlags, CLONE.NEWNS);
  t.false(inPod.ops.some((o) => o.op === 'setns'), 'not joined by the child (too late for its own pid)');
  t.is(namespaceFlags(podPid) & CLONE.NEWPID, CLONE.NEWPID);
  t.is(p.pidns, undefined);
});

test('time namespace: unshared by the child, offsets written before anything enters it, not a clone flag', (t) => {
  const c = config({ linux: { namespaces: [{ type: 'mount' }, { type: 'time' }], timeOffsets: { monotonic: { secs: 86400, nanosecs: 5 }, boottime: { secs: -7 } } } });
  const p = ociSpawnPlan(c, ctx);
  t.is(p.cloneFlags, CLONE.NEWNS);
  t.deepEqual(p.ops.slice(0, 2), [
    { op: 'unshare', flags: CLONE.NEWTIME },
    { op: 'write', target: '/proc/self/timens_offsets', data: 'monotonic 86400 5\nboottime -7 0\n' },
  ]);
  t.is(namespaceFlags(c) & CLONE.NEWTIME, CLONE.NEWTIME, 'exec joins it');
  // Before the root changes (the host's /proc) and before the ids and capabilities change.
  const idx = (op: string) => p.ops.findIndex((o) => o.op === op);
  t.true(idx('write') < idx('pivot_root') && idx('write') < idx('capset'));
  // No offsets: the namespace alone.
  t.deepEqual(ociSpawnPlan(config({ linux: { namespaces: [{ type: 'time' }] } }), ctx).ops[0], { op: 'unshare', flags: CLONE.NEWTIME });
  t.throws(() => ociSpawnPlan(config({ linux: { namespaces: [], timeOffsets: { boottime: { secs: 1 } } } }), ctx), { instanceOf: ValidationError, message: /timeOffsets: needs a new time namespace/ });
  t.throws(() => ociSpawnPlan(config({ linux: { namespaces: [{ type: 'time', path: '/proc/1/ns/time' }], timeOffsets: { boottime: { secs: 1 } } } }), ctx), { message: /needs a new time namespace/ });
  t.throws(() => ociSpawnPlan(config({ linux: { namespaces: [{ type: 'time' }], timeOffsets: { realtime: { secs: 1 } } } }), ctx), { message: /unknown clock realtime/ });
  t.throws(() => ociSpawnPlan(config({ linux: { namespaces: [{ type: 'time' }], timeOffsets: { boottime: { secs: 1, nanosecs: 1e9 } } } }), ctx), { message: /nanosecs/ });
});

test('user namespace: maps from the config, root inside first; none given is an error', (t) => {
  const maps = { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] };
  const p = ociSpawnPlan(config({ linux: { namespaces: [{ type: 'user' }, { type: 'mount' }], ...maps } }), ctx);
  t.is(p.uidMap, '0 100000 65536\n');
  t.is(p.gidMap, '0 100000 65536\n');
  t.deepEqual(p.ops[0], { op: 'setids', uid: 0, gid: 0, groups: [] });
  t.true(p.ops.some((o) => o.op === 'bind' && o.source === '/dev/null'), 'devices are bound in a user namespace');
  t.throws(() => ociSpawnPlan(config({ linux: { namespaces: [{ type: 'user' }] } }), ctx), { message: /uid and gid mappings/ });
});

test('root: bound on itself, mounts in order, devices, pivot_root, then masked/readonly paths and a read-only root', (t) => {
  const ops = opsOf(config({ linux: { namespaces: [{ type: 'mount' }, { type: 'pid' }], maskedPaths: ['/proc/kcore'], readonlyPaths: ['/proc/sys'] } }));
  const root = join(bundle, 'rootfs');
  t.deepEqual(ops[0], { op: 'mount', target: '/', flags: MS.REC | (1 << 19) });
  t.deepEqual(ops[1], { op: 'bind', source: root, target: root, recursive: true });
  const i = (pred: (o: (typeof ops)[number]) => boolean) => ops.findIndex(pred);
  const proc = i((o) => o.op === 'mount' && o.fstype === 'proc');
  const dev = i((o) => o.op === 'mount' && o.target === `${root}/dev`);
  const pivot = i((o) => o.op === 'pivot_root');
  t.true(proc < dev && dev < pivot);
  t.true(i((o) => o.op === 'mknod' && o.target === `${root}/dev/null`) < pivot);
  t.true(pivot < i((o) => o.op === 'readonly' && o.target === '/proc/sys'));
  t.true(pivot < i((o) => o.op === 'mask' && o.target === '/proc/kcore'));
  t.deepEqual(ops.find((o) => o.op === 'setattr' && o.target === '/'), { op: 'setattr', target: '/', set: MOUNT_ATTR.RDONLY });
  const noMountNs = opsOf(config({ linux: { namespaces: [{ type: 'pid' }] } }));
  t.deepEqual(noMountNs.find((o) => o.op === 'chroot'), { op: 'chroot', target: root });
  // Without a mount namespace the new root has no /proc, through which the wait reopens the fifo.
  t.deepEqual(noMountNs.filter((o) => o.op === 'await_start' || o.op === 'chroot').map((o) => o.op), ['await_start', 'chroot']);
  t.is(ops.filter((o) => o.op === 'await_start').length, 1);
  t.true(pivot < i((o) => o.op === 'await_start'));
});

test('mount options: flags, their negations, propagation, and the rest as data', (t) => {
  const o = parseMountOptions(['nosuid', 'noexec', 'ro', 'rw', 'rslave', 'mode=755', 'size=1m', 'strictatime']);
  t.is(o.flags, MS.NOSUID | MS.NOEXEC | MS.STRICTATIME);
  t.deepEqual(o.propagation, [MS.REC | (1 << 19)]);
  t.deepEqual(o.data, ['mode=755', 'size=1m']);
  const ops = opsOf(config({ mounts: [
    { destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'ro', 'nosuid'] },
    { destination: '/etc/x', source: join(bundle, 'file'), options: ['bind'] },
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nodev', 'mode=1777', 'rshared'] },
  ] }));
  const root = join(bundle, 'rootfs');
  t.deepEqual(ops.find((o) => o.op === 'bind' && o.target === `${root}/data`), { op: 'bind', source: join(bundle, 'data'), target: `${root}/data`, recursive: true, set: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID });
  t.true(ops.some((o) => o.op === 'touch' && o.target === `${root}/etc/x`), 'a file bind gets a file to mount on');
  t.deepEqual(ops.find((o) => o.op === 'mount' && o.target === `${root}/tmp` && o.fstype === 'tmpfs'), { op: 'mount', source: 'tmpfs', target: `${root}/tmp`, fstype: 'tmpfs', flags: MS.NODEV, data: 'mode=1777' });
  t.true(ops.some((o) => o.op === 'mount' && o.target === `${root}/tmp` && o.flags === (MS.REC | (1 << 20))));
  t.throws(() => opsOf(config({ mounts: [{ destination: '/x', type: 'bind', source: '/nonexistent-source' }] })), { message: /does not exist/ });
  t.throws(() => opsOf(config({ mounts: [{ destination: 'relative', type: 'tmpfs' }] })), { instanceOf: ValidationError });
  const cg = opsOf(config({ mounts: [{ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro'] }] }));
  t.true(cg.some((o) => o.op === 'mount' && o.fstype === 'cgroup2'));
  t.true(cg.some((o) => o.op === 'setattr' && o.target === `${root}/sys/fs/cgroup` && o.set === MOUNT_ATTR.RDONLY));
});

test('idmapped mounts: uidMappings/gidMappings (or idmap/ridmap with the container\'s maps) make an idmap_bind; bad ones refused before anything', (t) => {
  const root = join(bundle, 'rootfs');
  const userns = { namespaces: [{ type: 'user' }, { type: 'mount' }], uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }] };
  const maps = { uidMappings: [{ containerID: 1000, hostID: 100000, size: 1 }, { containerID: 0, hostID: 100001, size: 10 }], gidMappings: [{ containerID: 1000, hostID: 200000, size: 1 }] };
  const withMounts = (mounts: object[], linux: object = userns) => config({ linux, mounts });
  const idmapOps = (c: ReturnType<typeof config>, context: OciPlanContext = ctx) => ociSpawnPlan(c, context).ops.filter((o) => o.op === 'idmap_bind');
  t.deepEqual(idmapOps(withMounts([{ destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'ro', 'idmap'], ...maps }])), [
    { op: 'idmap_bind', source: join(bundle, 'data'), target: `${root}/data`, uidMap: '1000 100000 1\n0 100001 10\n', gidMap: '1000 200000 1\n', recursive: true, idmapRecursive: false, set: MOUNT_ATTR.RDONLY },
  ]);
  // Mappings without the option still idmap (the option is what keeps older runtimes from ignoring them); ridmap: the whole tree.
  t.like(idmapOps(withMounts([{ destination: '/data', source: 'data', options: ['rbind', 'ridmap'], ...maps }]))[0], { recursive: true, idmapRecursive: true });
  t.like(idmapOps(withMounts([{ destination: '/data', type: 'bind', source: 'data', ...maps }]))[0], { recursive: false, idmapRecursive: false });
  // idmap alone: the container's own user namespace maps; no idmap at all: a plain bind.
  t.like(idmapOps(withMounts([{ destination: '/data', type: 'bind', source: 'data', options: ['idmap'] }]))[0], { uidMap: '0 100000 65536\n', gidMap: '0 200000 65536\n' });
  const plain = ociSpawnPlan(withMounts([{ destination: '/data', type: 'bind', source: 'data', uidMappings: [], gidMappings: [] }]), ctx).ops;
  t.true(plain.some((o) => o.op === 'bind' && o.target === `${root}/data`) && !plain.some((o) => o.op === 'idmap_bind'));
  t.deepEqual(parseMountOptions(['idmap', 'ridmap', 'nosuid']), { flags: MS.NOSUID, propagation: [], data: [], idmap: 'ridmap' });

  const refused = (mounts: object[], message: RegExp, linux: object = userns, context: OciPlanContext = ctx) =>
    t.throws(() => ociSpawnPlan(config({ linux, mounts }), context), { instanceOf: ValidationError, message });
  const bind = { destination: '/data', type: 'bind', source: 'data' };
  refused([{ destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['idmap'] }], /mounts\.0: idmapped mounts .* are only supported for bind mounts/);
  refused([{ ...bind, uidMappings: maps.uidMappings }], /mounts\.0\.gidMappings: uidMappings and gidMappings of an idmapped mount are given together/);
  refused([{ ...bind, options: ['idmap'] }], /mounts\.0: idmap without uidMappings and gidMappings takes the container's user namespace mappings, and it has none/, { namespaces: [{ type: 'mount' }] });
  refused([{ ...bind, ...maps, gidMappings: [{ containerID: 0, hostID: 1, size: 10 }, { containerID: 5, hostID: 100, size: 1 }] }], /mounts\.0\.gidMappings\.1: its containerID range overlaps entry 0's/);
  refused([{ ...bind, ...maps, uidMappings: [{ containerID: 0, hostID: 4294967295, size: 2 }] }], /mounts\.0\.uidMappings\.0: hostID 4294967295 \+ size 2 passes 2\^32/);
  refused([{ ...bind, ...maps, uidMappings: Array.from({ length: 341 }, (_, j) => ({ containerID: j, hostID: j, size: 1 })) }], /at most 340 entries/);
  refused([{ ...bind, ...maps }], /need root in the initial user namespace/, userns, { ...ctx, privileged: false });
  // Fields of a mapping are checked by the schema, naming the field.
  t.throws(() => withMounts([{ ...bind, ...maps, uidMappings: [{ containerID: 0, hostID: -1, size: 1 }] }]), { instanceOf: ValidationError, message: /mounts\.0\.uidMappings\.0\.hostID/ });
  t.throws(() => withMounts([{ ...bind, ...maps, gidMappings: [{ containerID: 0, hostID: 1 }] }]), { instanceOf: ValidationError, message: /mounts\.0\.gidMappings\.0\.size/ });
  t.throws(() => withMounts([{ ...bind, ...maps, gidMappings: [{ containerID: 0, hostID: 1, size: 0 }] }]), { instanceOf: ValidationError, message: /mounts\.0\.gidMappings\.0\.size/ });
});

test('process: rlimits, oom_score_adj, umask, cwd, wait for start before the ids, caps, no_new_privs last', (t) => {
  const ops = opsOf(withProcess({
    user: { uid: 1000, gid: 1000, umask: 0o27, additionalGids: [5] },
    cwd: '/tmp',
    rlimits: [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }, { type: 'RLIMIT_CORE', soft: 2 ** 64, hard: 2 ** 64 }],
    oomScoreAdj: 500,
    capabilities: { bounding: ['CAP_KILL', 'CAP_CHOWN'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], inheritable: ['CAP_KILL'], ambient: ['CAP_KILL', 'CAP_CHOWN'] },
    noNewPrivileges: true,
  }));
  const tail = ops.slice(ops.findIndex((o) => o.op === 'rlimit'));
  t.deepEqual(tail.map((o) => o.op), ['rlimit', 'rlimit', 'write', 'umask', 'chdir', 'await_start', 'capbset', 'prctl', 'setids', 'prctl', 'capset', 'ambient', 'prctl']);
  t.deepEqual(tail[0], { op: 'rlimit', resource: 7, soft: 100, hard: 200 });
  t.deepEqual(tail[1], { op: 'rlimit', resource: 4, soft: -1, hard: -1 }, '2^64 is unlimited');
  t.deepEqual(tail[2], { op: 'write', target: '/proc/self/oom_score_adj', data: '500' });
  t.deepEqual(tail[5], { op: 'await_start', fd: 9 });
  t.deepEqual(tail[8], { op: 'setids', uid: 1000, gid: 1000, groups: [5] });
  t.deepEqual(tail[11], { op: 'ambient', caps: capMask(['CAP_KILL']) }, 'only permitted and inheritable ones become ambient');
  t.is(capMask(['CAP_KILL', 'chown', 'CAP_NOT_A_CAP']), 2 ** 5 + 1);
  t.throws(() => opsOf(withProcess({ rlimits: [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }] })), { message: /RLIMIT_BOGUS/ });
});

test('seccomp: compiled; installed first without no_new_privs, last with it; SCMP_ACT_NOTIFY needs listenerPath', (t) => {
  const seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] };
  const nnp = opsOf(config({ linux: { namespaces: [], seccomp } }));
  t.is(nnp.at(-1)!.op, 'seccomp');
  const base = withProcess({ noNewPrivileges: false });
  const without = opsOf({ ...base, linux: { ...base.linux, seccomp } });
  t.true(without.findIndex((o) => o.op === 'seccomp') < without.findIndex((o) => o.op === 'setids'));
  t.throws(() => opsOf(config({ linux: { namespaces: [], seccomp: { defaultAction: 'SCMP_ACT_NOTIFY' } } })), { instanceOf: ValidationError });
  t.throws(() => opsOf(config({ linux: { namespaces: [], seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] } } })), { instanceOf: ValidationError, message: /listenerPath/ });
  const flagged = opsOf(config({ linux: { namespaces: [], seccomp: { ...seccomp, flags: ['SECCOMP_FILTER_FLAG_LOG'] } } }));
  t.like(flagged.at(-1), { op: 'seccomp', flags: 2 });
  t.false('flags' in nnp.at(-1)!, 'no flags: none passed');
});

test('seccomp: a notify rule installs the filter with a listener before the wait for start; the plan names the agent and its state', (t) => {
  const seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock', listenerMetadata: 'md', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] };
  for (const namespaces of [[{ type: 'mount' }], []]) {
    const c = config({ annotations: { a: 'b' }, linux: { namespaces, seccomp } });
    const plan = ociSpawnPlan(c, ctx);
    const s = plan.ops.findIndex((o) => o.op === 'seccomp');
    t.like(plan.ops[s], { op: 'seccomp', flags: 8 });
    t.is(plan.ops[s + 1]!.op, 'await_start', 'the agent has the listener before create returns');
    t.is(plan.ops.filter((o) => o.op === 'seccomp').length, 1);
    t.is(plan.seccompListener, '/run/agent.sock');
    t.deepEqual(JSON.parse(plan.seccompState!.replaceAll('\u0001', '4242')), {
      ociVersion: c.ociVersion, fds: ['seccompFd'], pid: 4242, metadata: 'md',
      state: { ociVersion: c.ociVersion, id: 'c1', status: 'creating', pid: 4242, bundle, annotations: { a: 'b' } },
    });
  }
  // Without a notify rule listenerPath is ignored (runtime-spec).
  const plain = ociSpawnPlan(config({ linux: { namespaces: [], seccomp: { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock' } } }), ctx);
  t.is(plain.seccompListener, undefined);
});

test('seccomp: the container process state template survives any string in it', (t) => {
  const tricky = '\u0001 "{pid}" \\u0001';
  const s = agentStateTemplate({ ociVersion: '1.1.0', id: 'x', bundle: tricky, annotations: { [tricky]: tricky }, status: 'running', initPid: 7, metadata: tricky });
  t.is(s.split('\u0001').length - 1, 1, 'one raw U+0001: the process\'s pid');
  const parsed = JSON.parse(s.replace('\u0001', '9'));
  t.like(parsed, { pid: 9, metadata: tricky, state: { pid: 7, bundle: tricky, status: 'running', annotations: { [tricky]: tricky } } });
});

test('sysctl, hostname and domainname; a hostname needs a uts namespace', (t) => {
  const ops = opsOf(config({ hostname: 'h', domainname: 'd', linux: { namespaces: [{ type: 'uts' }], sysctl: { 'net.ipv4.ip_forward': '1' } } }));
  t.true(ops.some((o) => o.op === 'write' && o.target === '/proc/sys/net/ipv4/ip_forward' && o.data === '1'));
  t.true(ops.some((o) => o.op === 'sethostname' && o.value === 'h'));
  t.true(ops.some((o) => o.op === 'write' && o.target === '/proc/sys/kernel/domainname'));
  t.throws(() => opsOf(config({ hostname: 'h', linux: { namespaces: [] } })), { message: /uts namespace/ });
  t.throws(() => opsOf(config({ linux: { namespaces: [], sysctl: { '../x': '1' } } })), { instanceOf: ValidationError });
});

test('terminal: the pty slave is the console and the controlling terminal', (t) => {
  const p = ociSpawnPlan(config(), { ...ctx, consolePath: '/dev/pts/9', stdio: [5, 5, 5] });
  t.true(p.ctty);
  t.true(p.ops.some((o) => o.op === 'bind' && o.source === '/dev/pts/9' && o.target.endsWith('/dev/console')));
});

test('resources: memory, swap, shares, cpuset, pids, blkio weight, hugepage limits (quota and period: cgroup-files)', (t) => {
  t.deepEqual(ociResources({ memory: { limit: 1 << 20, swap: 2 << 20 }, cpu: { quota: 50000, period: 100000, shares: 1024, cpus: '0' }, pids: { limit: 10 }, blockIO: { weight: 100 } }), {
    memory: 1 << 20, memorySwap: 2 << 20, cpuShares: 1024, cpuset: { cpus: '0' }, pids: 10, blkio: { weight: 100 },
  });
  t.deepEqual(ociResources({ memory: { limit: -1 }, pids: { limit: 0 } }), { memory: -1, pids: -1 });
  t.is(ociResources({ devices: [{ allow: false, access: 'rwm' }] }), undefined);
  // hugepageLimits: by page size; 2^64-1 (read as a double) is no limit.
  t.deepEqual(ociResources({ hugepageLimits: [{ pageSize: '2MB', limit: 8 << 20 }, { pageSize: '1GB', limit: 2 ** 64 }] }), { hugetlb: { '2MB': 8 << 20, '1GB': -1 } });
});

test('signals, ids and flags as runc reads them', (t) => {
  t.is(parseSignal('KILL'), 9);
  t.is(parseSignal('SIGTERM'), 15);
  t.is(parseSignal('9'), 9);
  t.throws(() => parseSignal('NOPE'), { message: /unknown signal/ });
  t.is(checkId('abc-1.2_x'), 'abc-1.2_x');
  t.throws(() => checkId('a/b'), { message: /invalid id format/ });
  const p = parseFlags(['--pid-file=/p', '-e', 'A=1', '--env', 'B=2', '-d', 'id', 'sh', '-c', 'x'], [v('pid-file'), r('env', 'e'), b('detach', 'd')]);
  t.is(flag(p, 'pid-file'), '/p');
  t.deepEqual(list(p, 'env'), ['A=1', 'B=2']);
  t.is(flag(p, 'detach'), 'true');
  t.deepEqual(p.rest, ['id', 'sh', '-c', 'x']);
  t.throws(() => parseFlags(['--nope'], []), { message: /flag provided but not defined/ });
});

test('personality: the domain and flags as one personality(2) value, set before the seccomp filter; an unknown flag refused', (t) => {
  const c = config({ linux: { ...(spec().linux as object), personality: { domain: 'LINUX32', flags: ['ADDR_NO_RANDOMIZE'] }, seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO' }] } } });
  const ops = opsOf(c);
  const at = ops.findIndex((o) => o.op === 'personality');
  t.deepEqual(ops[at], { op: 'personality', arg: 0x0008 | 0x0040000 });
  t.true(at < ops.findIndex((o) => o.op === 'seccomp'));
  t.false(opsOf(config()).some((o) => o.op === 'personality'));
  const bad = config({ linux: { ...(spec().linux as object), personality: { domain: 'LINUX', flags: ['NOPE'] } } });
  t.throws(() => opsOf(bad), { instanceOf: ValidationError, message: /linux\.personality\.flags: unknown flag NOPE/ });
});

test('--preserve-fds: the count reaches the plan (the child keeps fds 3 .. 3+N-1 across execve); none by default', (t) => {
  t.is(ociSpawnPlan(config(), { ...ctx, preserveFds: 2 }).preserveFds, 2);
  t.is(ociSpawnPlan(config(), ctx).preserveFds, undefined);
});
