/** The calls file that create compiles for the C++ per-call path (lib/oci/call-file.ts). */
import test from 'ava';
import type { CgroupLayout } from '../../lib/cgroup/detect.js';
import { callFileText } from '../../lib/oci/call-file.js';
import { ConfigSchema, parseWith } from '../../lib/oci/config.js';
import { defaultSpec } from '../../lib/oci/defaults.js';
import type { StateFile } from '../../lib/oci/state.js';

const hybrid = { mode: 'hybrid', unified: '/sys/fs/cgroup/unified', controllers: { pids: { version: 1, mountpoint: '/sys/fs/cgroup/pids' }, freezer: { version: 1, mountpoint: '/sys/fs/cgroup/freezer' } } } as unknown as CgroupLayout;
const v2 = { mode: 'unified', unified: '/sys/fs/cgroup', controllers: {} } as unknown as CgroupLayout;

function state(extra: Record<string, unknown> = {}, annotations?: Record<string, string>): StateFile {
  const config = parseWith(ConfigSchema, { ...(defaultSpec() as object), ...extra }, 'config');
  return { id: 'c1', pid: 4242, start: 777, bundle: '/b', rootfs: '/b/rootfs', created: '2026-12-06T00:00:00.000Z', owner: 'root', cgroupPaths: {}, config, ...(annotations ? { annotations } : {}) };
}

/** The state JSON with its holes filled, as the C++ side does. */
const fill = (text: string, pid: number, status: string) => text.slice(text.indexOf('\nstate\n') + 7).replace('\x01P', String(pid)).replace('\x01S', status);

/** Every parent level made by nsbox (the paths here are not on a cgroupfs to carry its mark). */
const allMade = () => true;

test('hybrid: procs of each hierarchy, the v1 freezer, cgroup.kill in the unified twin, nsbox-named parents to climb', (t) => {
  const paths = { pids: '/sys/fs/cgroup/pids/nsbox-runc/k8s/c1', freezer: '/sys/fs/cgroup/freezer/nsbox-runc/k8s/c1', unified: '/sys/fs/cgroup/unified/nsbox-runc/k8s/c1' };
  const text = callFileText(state(), paths, hybrid, true, allMade)!;
  const head = text.slice(0, text.indexOf('\nstate\n')).split('\n');
  t.deepEqual(head, [
    'nsbox-runc-calls 1', 'pid 4242', 'start 777',
    `procs ${paths.pids}`, `procs ${paths.freezer}`, `procs ${paths.unified}`,
    `freezer-v1 ${paths.freezer}`, `kill ${paths.unified}`,
    // k8s is not nsbox-named: the climb stops below it.
    `rmdir ${paths.pids}`, `rmdir ${paths.freezer}`, `rmdir ${paths.unified}`,
  ]);
  const nested = callFileText(state(), { pids: '/sys/fs/cgroup/pids/a/nsbox-runc/nsbox-x/c1' }, hybrid, false, allMade)!;
  t.regex(nested, /\nrmdir \/sys\/fs\/cgroup\/pids\/a\/nsbox-runc\/nsbox-x\/c1\nparent \/sys\/fs\/cgroup\/pids\/a\/nsbox-runc\/nsbox-x\nparent \/sys\/fs\/cgroup\/pids\/a\/nsbox-runc\n/);
  // An nsbox-named level that nsbox did not make (another tool's) ends the climb.
  const foreign = callFileText(state(), { pids: '/sys/fs/cgroup/pids/a/nsbox-runc/nsbox-x/c1' }, hybrid, false, (dir) => dir.endsWith('/nsbox-x'))!;
  t.regex(foreign, /\nrmdir \/sys\/fs\/cgroup\/pids\/a\/nsbox-runc\/nsbox-x\/c1\nparent \/sys\/fs\/cgroup\/pids\/a\/nsbox-runc\/nsbox-x\nstate\n/);
  t.is(callFileText(state(), { pids: '/sys/fs/cgroup/pids/a/nsbox-runc/nsbox-x/c1' }, hybrid, false, () => false)!.split('\n').filter((l) => l.startsWith('parent ')).length, 0);
});

test('v2: cgroup.freeze for pause; without cgroup.kill no kill line', (t) => {
  const text = callFileText(state(), { unified: '/sys/fs/cgroup/nsbox-runc/c1' }, v2, false, allMade)!;
  t.regex(text, /\nfreezer-v2 \/sys\/fs\/cgroup\/nsbox-runc\/c1\n/);
  t.notRegex(text, /\nkill /);
  t.regex(text, /\nrmdir \/sys\/fs\/cgroup\/nsbox-runc\/c1\nparent \/sys\/fs\/cgroup\/nsbox-runc\n/);
});

test("the state template is runc's state JSON with the pid and status filled in; annotations can't make a second hole", (t) => {
  const s = state({}, { pid: '1', '"pid": 4242,': '"status": "created"' });
  const text = callFileText(s, {}, hybrid, false)!;
  const filled = JSON.parse(fill(text, 4242, 'running'));
  t.deepEqual(filled, { ociVersion: s.config.ociVersion, id: 'c1', pid: 4242, status: 'running', bundle: '/b', rootfs: '/b/rootfs', created: s.created, owner: 'root', annotations: s.annotations });
  t.is(fill(text, 4242, 'created'), JSON.stringify(filled, null, '  ').replace('"running"', '"created"'));
  t.false(text.includes('\x01', text.indexOf('\x01S') + 1), 'two holes only');
});

test('commands whose hooks must run go to Node; a path with a newline writes no file (everything to Node)', (t) => {
  const hook = [{ path: '/bin/true' }];
  t.regex(callFileText(state({ hooks: { poststart: hook } }), {}, hybrid, false)!, /\nnode start\n/);
  t.regex(callFileText(state({ hooks: { poststop: hook } }), {}, hybrid, false)!, /\nnode delete\n/);
  t.notRegex(callFileText(state({ hooks: { prestart: hook } }), {}, hybrid, false)!, /\nnode /);
  t.is(callFileText(state(), { pids: '/sys/fs/cgroup/pids/a\nb' }, hybrid, false), undefined);
});
