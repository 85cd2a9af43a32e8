import test from 'ava';
import { recordedCgroupPaths } from '../../lib/cgroup/recorded-paths.js';
import { cgroupParent, CgroupV1Driver, CgroupV2Driver, makeDriver, type CgroupLayout } from '../../lib/cgroup/index.js';
import { cgroupPathFor } from '../../lib/cgroup/paths.js';
import { parseFlatKeyed, parseLimit, parseNestedKeyed } from '../../lib/cgroup/cgroupfs.js';
import { splitDev } from '../../lib/cgroup/devices.js';
import { ValidationError } from '../../lib/errors.js';

const hybrid: CgroupLayout = {
  mode: 'hybrid',
  unified: '/sys/fs/cgroup/unified',
  unifiedMountRoot: '/',
  unifiedOwnPath: '/',
  controllers: {
    cpu: { version: 1, mountpoint: '/sys/fs/cgroup/cpu', mountRoot: '/', ownPath: '/' },
    cpuacct: { version: 1, mountpoint: '/sys/fs/cgroup/cpu', mountRoot: '/', ownPath: '/' },
    memory: { version: 1, mountpoint: '/sys/fs/cgroup/memory', mountRoot: '/', ownPath: '/process_api/abc' },
    pids: { version: 1, mountpoint: '/sys/fs/cgroup/pids', mountRoot: '/', ownPath: '/' },
    hugetlb: { version: 2, mountpoint: '/sys/fs/cgroup/unified', mountRoot: '/', ownPath: '/' },
  },
};

test('the parent: option, then NSBOX_CGROUP_PARENT, then nsbox', (t) => {
  t.is(cgroupParent(undefined, {}), 'nsbox');
  t.is(cgroupParent(undefined, { NSBOX_CGROUP_PARENT: '/machine.slice/nsbox' }), '/machine.slice/nsbox');
  t.is(cgroupParent('mine', { NSBOX_CGROUP_PARENT: 'env' }), 'mine');
  t.throws(() => cgroupParent('../escape', {}), { instanceOf: ValidationError });
  t.throws(() => cgroupParent('a//b', {}), { instanceOf: ValidationError });
});

test('a relative parent goes under our own cgroup; an absolute one is used as is', (t) => {
  t.is(cgroupPathFor('/process_api/abc', 'nsbox', 'web', true), '/process_api/abc/nsbox/web');
  t.is(cgroupPathFor('/', 'nsbox', 'web', true), '/nsbox/web');
  t.is(cgroupPathFor('/user.slice', '/nsbox.slice', 'web', true), '/nsbox.slice/web');
  t.is(cgroupPathFor('/x', 'p', '/abs/nsbox-1', false), '/abs/nsbox-1');
  t.throws(() => cgroupPathFor('/', 'nsbox', '../up', true), { instanceOf: ValidationError });
  t.throws(() => cgroupPathFor('/', 'nsbox', '', true), { instanceOf: ValidationError });
});

test('every cgroup nsbox creates says nsbox in the part it adds', (t) => {
  t.is(cgroupPathFor('/', 'containers', 'web', true), '/containers/nsbox-web');
  t.is(cgroupPathFor('/', '/machine.slice', 'web', true), '/machine.slice/nsbox-web');
  t.is(cgroupPathFor('/nsbox-host', 'containers', 'web', true), '/nsbox-host/containers/nsbox-web', 'our own cgroup does not count');
  t.is(cgroupPathFor('/', 'containers', 'nsbox-web', true), '/containers/nsbox-web');
  t.is(cgroupPathFor('/', 'containers', 'web', false), '/containers/web', 'open() takes the name as given');
});

test('makeDriver: v1 on hybrid hosts gets a directory per hierarchy and a unified twin', (t) => {
  const d = makeDriver(hybrid, 'auto', (own) => cgroupPathFor(own, 'nsbox', 'web', true));
  t.true(d instanceof CgroupV1Driver);
  t.deepEqual(d.paths, {
    cpu: '/sys/fs/cgroup/cpu/nsbox/web',
    cpuacct: '/sys/fs/cgroup/cpu/nsbox/web',
    memory: '/sys/fs/cgroup/memory/process_api/abc/nsbox/web',
    pids: '/sys/fs/cgroup/pids/nsbox/web',
    unified: '/sys/fs/cgroup/unified/nsbox/web',
  });
  t.deepEqual(d.placement(), {
    v2Path: '/sys/fs/cgroup/unified/nsbox/web',
    tasksFiles: ['/sys/fs/cgroup/cpu/nsbox/web/tasks', '/sys/fs/cgroup/memory/process_api/abc/nsbox/web/tasks', '/sys/fs/cgroup/pids/nsbox/web/tasks'],
  });
  const v2 = makeDriver(hybrid, 'v2', (own) => cgroupPathFor(own, 'nsbox', 'web', true));
  t.true(v2 instanceof CgroupV2Driver);
  t.deepEqual(v2.placement(), { v2Path: '/sys/fs/cgroup/unified/nsbox/web', tasksFiles: [] });
  t.throws(() => makeDriver({ mode: 'v2', unified: '/sys/fs/cgroup', controllers: {} }, 'v1', () => '/x'), { message: /no cgroup v1/ });
});

test('cgroup file parsers', (t) => {
  t.deepEqual(parseFlatKeyed('usage_usec 12\nuser_usec 10\n\nbad\n'), { usage_usec: 12, user_usec: 10 });
  t.deepEqual(parseNestedKeyed('8:0 rbytes=1 wbytes=2 rios=3\n254:0 rbps=max\n'), { '8:0': { rbytes: '1', wbytes: '2', rios: '3' }, '254:0': { rbps: 'max' } });
  t.is(parseLimit('max\n'), null);
  t.is(parseLimit('9223372036854771712\n'), null, "v1's page-rounded LONG_MAX is unlimited");
  t.is(parseLimit('-1'), null);
  t.is(parseLimit('33554432\n'), 33554432);
  t.is(parseLimit(undefined), undefined);
  t.deepEqual(splitDev(0xfe00n), { major: 254, minor: 0 });
  t.deepEqual(splitDev(0x810n), { major: 8, minor: 16 });
  t.deepEqual(splitDev((259n << 8n) | 1n), { major: 259, minor: 1 });
});

test('recorded cgroup paths: only directories named for the container inside their own hierarchy', (t) => {
  const layout: CgroupLayout = {
    mode: 'hybrid',
    unified: '/sys/fs/cgroup/unified',
    controllers: { memory: { version: 1, mountpoint: '/sys/fs/cgroup/memory', mountRoot: '/', ownPath: '/' }, pids: { version: 1, mountpoint: '/sys/fs/cgroup/pids', mountRoot: '/', ownPath: '/' } },
  };
  const id = 'c0ffee';
  const ok = { memory: `/sys/fs/cgroup/memory/user.slice/nsbox/${id}`, unified: `/sys/fs/cgroup/unified/nsbox/${id}` };
  t.deepEqual(recordedCgroupPaths(ok, layout, id), ok);
  t.deepEqual(recordedCgroupPaths({ pids: `/sys/fs/cgroup/pids/mine/nsbox-${id}` }, layout, id), { pids: `/sys/fs/cgroup/pids/mine/nsbox-${id}` });
  // Without a leaf (an SDK owner note): any nsbox-named directory inside the hierarchy.
  t.truthy(recordedCgroupPaths({ memory: '/sys/fs/cgroup/memory/nsbox/other' }, layout));
  for (const bad of [
    { memory: '/sys/fs/cgroup/memory/nsbox/someone-else' }, // not this container's name
    { memory: `/sys/fs/cgroup/pids/nsbox/${id}` }, // another hierarchy's directory
    { memory: `/sys/fs/cgroup/memory/nsbox/../../process_api/${id}` },
    { memory: `/sys/fs/cgroup/memory/process_api/${id}` }, // no nsbox in it
    { cpu: `/sys/fs/cgroup/cpu/nsbox/${id}` }, // a hierarchy not mounted
    { memory: 7 },
    {},
  ]) t.is(recordedCgroupPaths(bad, layout, id), undefined, JSON.stringify(bad));
  t.is(recordedCgroupPaths(undefined, layout, id), undefined);
});
