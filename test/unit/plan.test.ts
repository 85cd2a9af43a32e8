/** The setup plan is data: its order and content are checked here without root. */
import test from 'ava';
import { buildContainerPlan, buildEnv, CLONE, MOUNT_ATTR, MS, type PlanContext } from '../../lib/runtime/plan.js';
import { ContainerOptionsSchema, validate } from '../../lib/runtime/options.js';
import { ValidationError } from '../../lib/errors.js';
import { cgroupViews } from '../../lib/runtime/host.js';
import { signalName, signalNumber } from '../../lib/runtime/signals.js';

const ctx: PlanContext = {
  id: 'abcdef0123456789', root: '/r', sandbox: false, sandboxEntries: [], privileged: true, hostUid: 0, hostGid: 0,
  cgroups: [{ name: 'memory', fstype: 'cgroup', data: 'memory', hostDir: '/sys/fs/cgroup/memory/x' }], bindIsDir: [],
};
const cfg = (o: Record<string, unknown>) => validate(ContainerOptionsSchema, { rootfs: '/r', command: ['/bin/true'], ...o }, 'container options');

test('defaults: every namespace but user and time; / made rprivate first; pivot_root after mounts', (t) => {
  const p = buildContainerPlan(cfg({}), ctx);
  t.is(p.cloneFlags, CLONE.NEWPID | CLONE.NEWNS | CLONE.NEWNET | CLONE.NEWIPC | CLONE.NEWUTS);
  // The cgroup namespace comes after the parent placed the child in its cgroup.
  t.deepEqual(p.ops[0], { op: 'unshare', flags: CLONE.NEWCGROUP });
  t.deepEqual(p.ops[1], { op: 'mount', target: '/', flags: MS.REC | MS.PRIVATE });
  t.deepEqual(p.ops[2], { op: 'bind', source: '/r', target: '/r', recursive: true });
  const names = p.ops.map((o) => o.op);
  const pivot = names.indexOf('pivot_root');
  t.true(pivot > names.lastIndexOf('mount'));
  t.deepEqual(names.slice(pivot).filter((n) => n !== 'mask' && n !== 'readonly'), ['pivot_root', 'setattr', 'lo_up', 'sethostname', 'chdir']);
  // With security: bounding set while root, ids, then the sets, no_new_privs, seccomp last.
  const sec = buildContainerPlan(cfg({ user: '7:8' }), { ...ctx, security: { caps: 5, ambient: 0, noNewPrivileges: true, seccomp: Buffer.alloc(8) } });
  t.deepEqual(sec.ops.slice(-6).map((o) => o.op), ['chdir', 'capbset', 'setids', 'capset', 'prctl', 'seccomp']);
  t.deepEqual(sec.ops.at(-3), { op: 'capset', effective: 0, permitted: 0, inheritable: 0 }, 'a non-root user gets no capabilities');
  t.true(p.ops.some((o) => o.op === 'mask' && o.target === '/proc/kcore'));
  t.true(p.ops.some((o) => o.op === 'readonly' && o.target === '/proc/sys'));
  t.true(p.ops.some((o) => o.op === 'bind' && o.source === '/dev/null' && o.target === '/r/dev/null'), 'devices bound into a nodev /dev');
  t.true(p.ops.some((o) => o.op === 'setattr' && o.target === '/' && o.set === MOUNT_ATTR.NODEV));
  const priv = buildContainerPlan(cfg({}), { ...ctx, security: { caps: 1, ambient: 0, noNewPrivileges: false, privileged: true } });
  t.true(priv.ops.some((o) => o.op === 'mknod' && o.target === '/r/dev/null'), 'privileged: real device nodes');
  t.false(priv.ops.some((o) => o.op === 'mask'), 'privileged: nothing masked');
  t.true(p.ops.some((o) => o.op === 'mount' && o.fstype === 'cgroup' && o.target === '/r/sys/fs/cgroup/memory' && o.data === 'memory'));
  t.deepEqual(p.ops.at(-2), { op: 'sethostname', value: 'abcdef012345' });
  t.is(p.uidMap, undefined);
});

test('a user namespace: maps, setids to root first, devices bound instead of mknod, cgroup v1 bound', (t) => {
  const p = buildContainerPlan(cfg({ namespaces: { user: { uidMap: [{ containerID: 0, hostID: 1000, size: 10 }] } }, user: '5:6' }), { ...ctx, privileged: false, hostUid: 1000, hostGid: 1000 });
  t.is(p.uidMap, '0 1000 10\n');
  t.is(p.gidMap, '0 1000 1\n');
  t.true(p.denySetgroups);
  t.deepEqual(p.ops[0], { op: 'setids', uid: 0, gid: 0 });
  t.deepEqual(p.ops[1], { op: 'unshare', flags: CLONE.NEWCGROUP });
  t.false(p.ops.some((o) => o.op === 'mknod'));
  t.true(p.ops.some((o) => o.op === 'bind' && o.source === '/dev/null'));
  t.true(p.ops.some((o) => o.op === 'bind' && o.source === '/sys/fs/cgroup/memory/x'));
  t.deepEqual(p.ops.at(-1), { op: 'setids', uid: 5, gid: 6 }, 'no security given: ids last');
  t.true((p.cloneFlags & CLONE.NEWUSER) !== 0);
});

test('shared namespaces and the host sandbox', (t) => {
  const p = buildContainerPlan(cfg({ rootfs: undefined, namespaces: { net: false, uts: false } }), {
    ...ctx, root: '/run/x/root', sandbox: true, sandboxEntries: [{ name: 'usr' }, { name: 'bin', symlink: 'usr/bin' }],
  });
  t.is(p.cloneFlags & (CLONE.NEWNET | CLONE.NEWUTS), 0);
  t.false(p.ops.some((o) => o.op === 'lo_up' || o.op === 'sethostname'));
  t.true(p.ops.some((o) => o.op === 'bind' && o.source === '/usr' && o.target === '/run/x/root/usr' && o.set !== undefined && (o.set & 1) === 1));
  t.true(p.ops.some((o) => o.op === 'symlink' && o.value === 'usr/bin' && o.target === '/run/x/root/bin'));
  t.deepEqual(p.ops.at(-2), { op: 'setattr', target: '/', set: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NODEV }, 'a sandbox root is read-only');
});

test('user mounts become mkdir + mount ops under the root', (t) => {
  const p = buildContainerPlan(cfg({ mounts: [{ type: 'bind', source: '/etc/hosts', target: '/a/hosts', readonly: true }, { type: 'tmpfs', target: '/scratch', size: '1m' }] }), { ...ctx, bindIsDir: [false] });
  t.true(p.ops.some((o) => o.op === 'touch' && o.target === '/r/a/hosts'));
  t.true(p.ops.some((o) => o.op === 'bind' && o.source === '/etc/hosts' && o.set === 1));
  t.true(p.ops.some((o) => o.op === 'mount' && o.fstype === 'tmpfs' && o.target === '/r/scratch' && o.data === 'mode=1777,size=1m'));
});

test('validation names the field', (t) => {
  const e = t.throws(() => cfg({ namespaces: { user: { uidMap: [{ containerID: 0, hostID: 0, size: 0 }] } } }), { instanceOf: ValidationError });
  t.is(e.field, 'namespaces.user.uidMap.0.size');
  t.is(t.throws(() => cfg({ cwd: 'tmp' }), { instanceOf: ValidationError }).field, 'cwd');
  t.is(t.throws(() => cfg({ stdio: 'piped' }), { instanceOf: ValidationError }).field, 'stdio');
});

test('env: docker defaults overridden by the caller', (t) => {
  t.deepEqual(buildEnv({ PATH: '/bin', HOME: '/root' }, ['HOME=/home/u', 'X=1=2']), ['PATH=/bin', 'HOME=/home/u', 'X=1=2']);
  t.deepEqual(buildEnv({ PATH: '/bin' }, { PATH: '/usr/bin' }), ['PATH=/usr/bin']);
});

test('signals by name', (t) => {
  t.is(signalNumber('SIGKILL'), 9);
  t.is(signalNumber('TERM'), 15);
  t.is(signalName(9), 'SIGKILL');
  t.throws(() => signalNumber('SIGNOPE'), { instanceOf: ValidationError });
});

test('cgroup views from mountinfo: v1 hierarchies, the unified one, and the own cgroup', (t) => {
  const mi = [
    '35 25 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory',
    '36 25 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd',
    '37 25 0:32 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate',
    '38 25 0:33 / /mnt/other rw - cgroup cgroup rw,pids',
  ].join('\n');
  const views = cgroupViews(mi, '4:memory:/a/b\n1:name=systemd:/\n0::/u\n');
  t.deepEqual(views, [
    { name: 'memory', fstype: 'cgroup', data: 'memory', hostDir: '/sys/fs/cgroup/memory/a/b' },
    { name: 'systemd', fstype: 'cgroup', data: 'name=systemd', hostDir: '/sys/fs/cgroup/systemd' },
    { name: 'unified', fstype: 'cgroup2', data: '', hostDir: '/sys/fs/cgroup/unified/u' },
  ]);
});

test('id maps: an unprivileged caller with subordinate ids maps them through newuidmap/newgidmap', (t) => {
  const subIds = { uid: { start: 200000, count: 100000 }, gid: { start: 300000, count: 65536 }, newuidmap: '/usr/bin/newuidmap', newgidmap: '/usr/bin/newgidmap' };
  const p = buildContainerPlan(cfg({ namespaces: { user: true } }), { ...ctx, privileged: false, hostUid: 1000, hostGid: 1000, subIds });
  t.is(p.uidMap, '0 1000 1\n1 200000 65536\n');
  t.is(p.gidMap, '0 1000 1\n1 300000 65536\n');
  t.is(p.uidMapper, '/usr/bin/newuidmap');
  t.is(p.gidMapper, '/usr/bin/newgidmap');
  t.false(p.denySetgroups, 'newgidmap handles setgroups');
  const self = buildContainerPlan(cfg({ namespaces: { user: { uidMap: [{ containerID: 0, hostID: 1000, size: 1 }] } } }), { ...ctx, privileged: false, hostUid: 1000, hostGid: 1000, subIds });
  t.is(self.uidMapper, undefined, 'a map of one\'s own id is written directly');
  const root = buildContainerPlan(cfg({ namespaces: { user: true } }), { ...ctx, subIds });
  t.is(root.uidMap, '0 0 1\n', 'root maps directly, and only what it is asked');
  t.is(root.uidMapper, undefined);
});
