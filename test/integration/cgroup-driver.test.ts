// The cgroup driver conformance suite, run against every driver this kernel offers: on a hybrid
// host the v1 driver (with its unified twin) and the v2 driver on the controller-less unified
// hierarchy; on a cgroup2-only kernel (../shared/vm/run-in-vm) the v2 driver with every controller.
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Cgroup, type CgroupLayout } from '../../lib/cgroup/index.js';
import { cgroupDriverSuite, type DriverUnderTest, type Feature } from './cgroup-driver-suite.js';

const root = process.getuid?.() === 0;
const layout: CgroupLayout | undefined = root ? await Cgroup.detect() : undefined;
const run = `nsbox-test-${process.pid}`;
const block = ['vda', 'sda', 'nvme0n1', 'xvda'].some((n) => existsSync(`/dev/${n}`));

function v1Under(layout: CgroupLayout, label = 'v1', parent = `${run}-v1`): DriverUnderTest | string {
  const v1 = Object.entries(layout.controllers).filter(([, c]) => c.version === 1);
  if (v1.length === 0) return 'no cgroup v1 hierarchy is mounted (cgroup2-only kernel)';
  const has = (c: string) => layout.controllers[c] !== undefined;
  const missing: Partial<Record<Feature, string>> = {};
  const need = (f: Feature, ok: boolean, why: string) => {
    if (!ok) missing[f] = why;
  };
  need('memory', has('memory'), 'the memory controller is not mounted');
  need('pids', has('pids'), 'the pids controller is not mounted');
  need('cpu', has('cpu') && (has('cpuacct') || layout.unified !== undefined), 'the cpu or cpuacct controller is not mounted');
  need('cpuset', has('cpuset'), 'the cpuset controller is not mounted');
  need('io', (has('blkio') || has('io')) && block, 'no blkio controller or no block device');
  need('freeze', has('freezer') || layout.unified !== undefined, 'no freezer hierarchy and no cgroup2 to freeze with');
  return { label, kind: 'v1', layout, parent, missing };
}

function v2Under(layout: CgroupLayout): DriverUnderTest | string {
  if (!layout.unified) return 'no cgroup2 hierarchy is mounted';
  const hybrid = layout.mode !== 'v2';
  const has = (c: string) => layout.controllers[c]?.version === 2;
  const why = (c: string) => `the ${c} controller is ${layout.controllers[c] ? 'bound to cgroup v1' : 'missing'} on this host, so ${layout.unified} has none`;
  const missing: Partial<Record<Feature, string>> = {};
  for (const [f, c] of [['memory', 'memory'], ['pids', 'pids'], ['cpu', 'cpu'], ['cpuset', 'cpuset'], ['io', 'io']] as const) if (!has(c)) missing[f] = why(c);
  if (!missing.io && !block) missing.io = 'no block device to limit';
  return { label: hybrid ? 'v2 (unified hierarchy of a hybrid host)' : 'v2', kind: 'v2', layout, parent: `${run}-v2`, missing };
}

if (!layout) {
  test.skip('cgroup drivers: every behaviour — skipped: needs root (cgroups can only be created as root)', () => undefined);
} else {
  test.serial('detection matches /proc/self/cgroup: each hierarchy, its controllers, our cgroup in it', (t) => {
    t.log(`mode ${layout.mode}; unified ${layout.unified ?? '-'}; controllers ${Object.entries(layout.controllers).map(([c, i]) => `${c}:v${i.version}`).join(' ')}`);
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
      const [, list, own] = /^\d+:([^:]*):(.*)$/.exec(line)!;
      if (list === '') {
        t.is(layout.unifiedOwnPath, own, 'our cgroup in the unified hierarchy');
        continue;
      }
      for (const c of list!.split(',').filter((c) => !c.startsWith('name='))) {
        t.like(layout.controllers[c], { version: 1, ownPath: own }, c);
        const { mountpoint, mountRoot } = layout.controllers[c]!;
        t.true(existsSync(path.join(mountpoint, path.relative(mountRoot ?? '/', own!), 'cgroup.procs')), c);
      }
    }
    if (layout.unified) t.true(existsSync(path.join(layout.unified, path.relative(layout.unifiedMountRoot ?? '/', layout.unifiedOwnPath!), 'cgroup.procs')));
  });
  const suites = [v1Under(layout), v2Under(layout)];
  // On a hybrid host, the v1 driver again without its unified twin: what a v1-only host gets
  // (freezer-based kill, 'empty' by polling).
  const v1Only: CgroupLayout = { mode: 'v1', controllers: Object.fromEntries(Object.entries(layout.controllers).filter(([, c]) => c.version === 1)) };
  if (layout.mode === 'hybrid') suites.push(v1Under(v1Only, 'v1 (no unified twin, as on a v1-only host)', `${run}-v1only`));
  for (const d of suites) {
    if (typeof d === 'string') test.skip(`${d.startsWith('no cgroup v1') ? 'v1' : 'v2'}: whole suite — skipped: ${d}`, () => undefined);
    else cgroupDriverSuite(test, d);
  }
  const cpuset = layout.controllers.cpuset;
  if (cpuset?.version !== 1) test.skip('v1 cpuset: a parent made empty by another creator — skipped: no v1 cpuset hierarchy here', () => undefined);
  else {
    test.serial('v1 cpuset: a cgroup beneath a parent another process made and has not filled in yet gets cpus and mems (no ENOSPC on join)', async (t) => {
      // The window of two creates racing after the last cgroup beneath a parent took it along:
      // one process has made the parent (empty cpus and mems) and not yet copied them in.
      const parent = `${run}-cpuset-race`;
      const parentDir = path.join(cpuset.mountpoint, path.relative(cpuset.mountRoot ?? '/', cpuset.ownPath), parent);
      mkdirSync(parentDir);
      t.teardown(() => Cgroup.prune({ parent, driver: 'v1', layout, minAgeMs: 0, includeParent: true }).then(() => undefined));
      t.is(readFileSync(path.join(parentDir, 'cpuset.cpus'), 'utf8').trim(), '');
      const cg = await Cgroup.create('child', { parent, driver: 'v1', layout });
      t.not(readFileSync(path.join(parentDir, 'cpuset.cpus'), 'utf8').trim(), '');
      t.not(readFileSync(path.join(parentDir, 'child', 'cpuset.mems'), 'utf8').trim(), '');
      const child = spawn('sleep', ['30'], { stdio: 'ignore' });
      try {
        await cg.addProcess(child.pid!);
        t.deepEqual(await cg.procs(), [child.pid]);
      } finally {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      await cg.remove();
    });
  }
  test.after.always('no test cgroup is left behind', async () => {
    for (const d of suites) {
      if (typeof d === 'string') continue;
      await Cgroup.prune({ parent: d.parent, driver: d.kind, layout: d.layout, minAgeMs: 0, includeParent: true }).catch(() => undefined);
    }
  });
}
