/** The quick run's plans (lib/engine/run-plan.ts): kept as templates of the id, never of the name. */
import test from 'ava';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRunPlan, runPlanFile, writeRunPlan, type RunPlan } from '../../lib/engine/run-plan.js';

const ID = 'a'.repeat(8) + '0123456789abcdef'.repeat(3) + 'b'.repeat(8);
const OTHER = 'c'.repeat(64);

function planFor(root: string, name: string, extra: Record<string, unknown> = {}): RunPlan {
  const dir = join(root, 'containers', ID);
  return {
    key: `{"request":"${name}-independent"}`,
    image: { refsKey: `docker.io/library/${name}:1`, digest: `sha256:${'d'.repeat(64)}`, layers: [join(root, 'layers', 'e'.repeat(64), 'diff')] },
    record: { id: ID, name, created: '2026-12-07T12:00:00Z', options: { image: `${name}:1` }, ...extra },
    command: ['sh'],
    plan: {
      cloneFlags: 0,
      ops: [
        { op: 'mount', source: 'overlay', target: join(dir, 'root'), fstype: 'overlay', data: `upperdir=${join(dir, 'upper')}` },
        { op: 'seccomp', filter: Buffer.from(`${name}${name}`) },
      ],
      argv: ['sh'],
      env: [`HOSTNAME=${ID.slice(0, 12)}`],
      path: '/bin',
      stdio: [-1, -1, -1],
    },
    cgroup: { memory: `/sys/fs/cgroup/memory/nsbox/${ID}` },
    cgroupOps: {
      make: [{ mountpoint: '/sys/fs/cgroup/memory', mountRoot: '/', dir: `/sys/fs/cgroup/memory/nsbox/${ID}`, cpuset: false, v2: false }],
      controllers: ['memory'],
      removal: { procs: [`/sys/fs/cgroup/memory/nsbox/${ID}`], rmdirs: [[`/sys/fs/cgroup/memory/nsbox/${ID}`, '/sys/fs/cgroup/memory/nsbox']] },
    },
  };
}

test('a name that is part of a path, of the image reference or of the seccomp program: the plan is kept, and read back for another id', (t) => {
  // The store's own path holds the name, as a mkdtemp root may (/tmp/nsbox-cli-XqrY9 for --name qr).
  const root = mkdtempSync(join(tmpdir(), 'nsbox-runplan-qr-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const p = planFor(root, 'qr');
  t.true(writeRunPlan(root, ID, p));
  t.true(existsSync(runPlanFile(root, p.key)));
  const back = readRunPlan(root, p.key, OTHER);
  t.truthy(back);
  t.is(back!.record.id, OTHER);
  t.false('name' in back!.record, 'the name is set per run');
  t.deepEqual(back!.plan.env, [`HOSTNAME=${OTHER.slice(0, 12)}`]);
  t.is((back!.plan.ops[0] as { target: string }).target, join(root, 'containers', OTHER, 'root'));
  t.deepEqual(back!.plan.ops[1], { op: 'seccomp', filter: Buffer.from('qrqr') });
  t.is(back!.cgroupOps.make[0]!.dir, `/sys/fs/cgroup/memory/nsbox/${OTHER}`);
  t.deepEqual(back!.cgroupOps.removal.rmdirs, [[`/sys/fs/cgroup/memory/nsbox/${OTHER}`, '/sys/fs/cgroup/memory/nsbox']]);
  t.is(readRunPlan(root, '{"another":"key"}', OTHER), undefined, 'another request has no plan');
});

test('a name that is one of its values (a hostname or alias made from it): nothing is kept', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'nsbox-runplan-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  t.false(writeRunPlan(root, ID, planFor(root, 'web', { aliases: ['web'] })));
  const p = planFor(root, 'web');
  p.plan.argv = ['ping', 'web'];
  t.false(writeRunPlan(root, ID, p));
  t.false(existsSync(join(root, 'run-plans')) && readdirSync(join(root, 'run-plans')).length > 0);
});
