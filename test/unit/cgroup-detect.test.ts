import test from 'ava';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { detectCgroups, hierarchyDir } from '../../lib/cgroup/index.js';
import { layoutFrom, parseCgroupMounts, parseProcCgroup } from '../../lib/cgroup/detect.js';

const hybridMountinfo = `22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const hybridCgroup = `9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

test('a hybrid host: v1 controllers where mounted, the unified mount without them', (t) => {
  const l = layoutFrom(hybridMountinfo, hybridCgroup, ['hugetlb']);
  t.is(l.mode, 'hybrid');
  t.is(l.unified, '/sys/fs/cgroup/unified');
  t.is(l.unifiedOwnPath, '/');
  t.deepEqual(l.controllers.memory, { version: 1, mountpoint: '/sys/fs/cgroup/memory', mountRoot: '/', ownPath: '/process_api/abc' });
  t.is(l.controllers.cpu?.mountpoint, '/sys/fs/cgroup/cpu');
  t.is(l.controllers.cpuacct?.mountpoint, '/sys/fs/cgroup/cpuacct');
  t.is(l.controllers.hugetlb?.version, 2);
  t.false('name=systemd' in l.controllers);
  t.false('xattr' in l.controllers);
});

test('a v2-only host, inside a container with a namespaced cgroup mount', (t) => {
  const mi = '30 25 0:26 /docker/abc /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';
  const l = layoutFrom(mi, '0::/docker/abc/init\n', ['cpu', 'memory', 'pids', 'io']);
  t.is(l.mode, 'v2');
  t.is(l.unified, '/sys/fs/cgroup');
  t.is(l.unifiedMountRoot, '/docker/abc');
  t.deepEqual(l.controllers.memory, { version: 2, mountpoint: '/sys/fs/cgroup', mountRoot: '/docker/abc', ownPath: '/docker/abc/init' });
  t.is(hierarchyDir('/sys/fs/cgroup', '/docker/abc', '/docker/abc/init/nsbox/x'), '/sys/fs/cgroup/init/nsbox/x');
  t.throws(() => hierarchyDir('/sys/fs/cgroup', '/docker/abc', '/other'));
});

test('a v1-only host with co-mounted cpu,cpuacct', (t) => {
  const mi = `25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
26 20 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
27 20 0:24 / /sys/fs/cgroup/mem\\040ory2 rw - cgroup cgroup rw,memory
`;
  const l = layoutFrom(mi, '3:cpu,cpuacct:/user.slice\n2:memory:/user.slice/x\n', []);
  t.is(l.mode, 'v1');
  t.is(l.unified, undefined);
  t.is(l.controllers.cpu?.mountpoint, '/sys/fs/cgroup/cpu,cpuacct');
  t.is(l.controllers.cpuacct?.mountpoint, '/sys/fs/cgroup/cpu,cpuacct');
  t.is(l.controllers.cpu?.ownPath, '/user.slice');
  t.is(l.controllers.memory?.mountpoint, '/sys/fs/cgroup/memory', 'the first mount of a hierarchy wins');
  t.deepEqual(parseCgroupMounts(mi)[2]?.mountpoint, '/sys/fs/cgroup/mem ory2', 'octal escapes are decoded');
});

test('no cgroup mount at all is an error', (t) => {
  t.throws(() => layoutFrom('22 1 0:21 / /proc rw - proc proc rw\n', '', []), { message: /no cgroup/ });
});

test('parseProcCgroup splits co-mounted controllers', (t) => {
  const m = parseProcCgroup('3:cpu,cpuacct:/a\n0::/b\n1:name=systemd:/c\n');
  t.is(m.get('cpu'), '/a');
  t.is(m.get('cpuacct'), '/a');
  t.is(m.get(''), '/b');
  t.is(m.get('name=systemd'), '/c');
});

test('detectCgroups reads an injected procRoot and the unified cgroup.controllers', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nsbox-detect-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'proc/self'), { recursive: true });
  await mkdir(path.join(dir, 'cg'));
  await writeFile(path.join(dir, 'cg/cgroup.controllers'), 'cpuset cpu io memory pids\n');
  await writeFile(path.join(dir, 'proc/self/mountinfo'), `30 25 0:26 / ${dir}/cg rw - cgroup2 cgroup2 rw\n`);
  await writeFile(path.join(dir, 'proc/self/cgroup'), '0::/user.slice/app\n');
  const l = await detectCgroups({ procRoot: path.join(dir, 'proc') });
  t.is(l.mode, 'v2');
  t.deepEqual(Object.keys(l.controllers).sort(), ['cpu', 'cpuset', 'io', 'memory', 'pids']);
  t.is(l.controllers.io?.ownPath, '/user.slice/app');
});
