/**
 * summary-check.ts (what `nsbox ps` reads without zod) held to the schemas it stands for: on every
 * sample, and on every one-field change of each, a check either gives exactly what the schema
 * gives or leaves the input to the engine (LeftToEngine); it never accepts what the schema refuses.
 */
import test from 'ava';
import { ContainerSummarySchema } from '../../lib/engine/record-summary.js';
import { checkHealthStatus, checkShimState, checkSummary, LeftToEngine } from '../../lib/engine/summary-check.js';
import { ShimHealthSchema, ShimStateSchema } from '../../lib/runtime/bundle.js';

const id = 'a'.repeat(64);
const digest = `sha256:${'d'.repeat(64)}`;
const time = '2026-12-06T08:00:00.123Z';

const records: Record<string, unknown>[] = [
  { id, name: 'made', image: { ref: 'docker.io/library/busybox:latest', digest }, created: time },
  {
    id,
    name: 'up_1.x-y',
    image: { ref: 'busybox', digest },
    entrypoint: ['/bin/sh', '-c'],
    command: ['sleep 1'],
    created: '2026-12-06T08:00:00+01:00',
    startedAt: time,
    state: 'running',
    exitCode: null,
    signal: null,
    oomKilled: false,
    restartCount: 2,
    supervisor: { kind: 'shim', pid: 1234, bundle: '/var/lib/nsbox/containers/x/shim', pidStartTime: 99 },
    options: { anything: ['passed', 'through'] },
    network: { mode: 'bridge', state: { ports: [{ containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: 8080 }], other: 1 } },
  },
  { id, name: 'frozen', rootfs: '/srv/rootfs', command: ['top'], created: time, state: 'paused', supervisor: { kind: 'process', pid: 7, pidStartTime: 0 } },
  { id, name: 'done', rootfs: '/r', created: time, state: 'exited', exitCode: 1, finishedAt: time, error: 'why', network: { mode: 'none' } },
  { id, name: 'killed', rootfs: '/r', created: time, state: 'exited', signal: 'SIGKILL', oomKilled: true, network: { state: {} } },
];

/** Each sample's fields, one at a time, set to values of other kinds and shapes (and removed). */
const odd: unknown[] = [undefined, null, 0, -1, 1.5, 2 ** 22 + 1, '', 'x', 'SIGTERM', '/abs', time, '2026-12-06', [], ['a'], [1], {}, { kind: 'shim' }, true, 'running', 'bogus'];
const nested: Array<[string, (r: Record<string, unknown>, v: unknown) => void]> = [
  ['image.ref', (r, v) => void (r.image = { ...(r.image as object), ref: v })],
  ['image.digest', (r, v) => void (r.image = { ...(r.image as object), digest: v })],
  ['image.extra', (r, v) => void (r.image = { ...(r.image as object), extra: v })],
  ['supervisor.pid', (r, v) => void (r.supervisor = { ...(r.supervisor as object), pid: v })],
  ['supervisor.pidStartTime', (r, v) => void (r.supervisor = { ...(r.supervisor as object), pidStartTime: v })],
  ['supervisor.bundle', (r, v) => void (r.supervisor = { ...(r.supervisor as object), bundle: v })],
  ['supervisor.kind', (r, v) => void (r.supervisor = { ...(r.supervisor as object), kind: v })],
  ['network.state', (r, v) => void (r.network = { ...(r.network as object), state: v })],
  ['network.state.ports', (r, v) => void (r.network = { state: { ports: v } })],
  ['a port', (r, v) => void (r.network = { state: { ports: [{ containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: v }] } })],
  ['network.state.endpoints', (r, v) => void (r.network = { state: { endpoints: v } })],
  ['an endpoint ipv6Address', (r, v) => void (r.network = { state: { endpoints: [{ ipv6Address: v, other: 1 }] } })],
  ['a port protocol', (r, v) => void (r.network = { state: { ports: [{ containerPort: 80, protocol: v, hostIp: '', hostPort: 1 }] } })],
];

function variants(samples: Record<string, unknown>[], extra: typeof nested = []): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  samples.forEach((s, i) => {
    out.push([`sample ${i}`, s]);
    for (const key of Object.keys(s).concat(['startedAt', 'finishedAt', 'error', 'rootfs', 'image', 'supervisor', 'network'])) {
      for (const v of odd) {
        const r = structuredClone(s);
        if (v === undefined) delete r[key];
        else r[key] = v;
        out.push([`sample ${i} ${key}=${JSON.stringify(v)}`, r]);
      }
    }
    for (const [what, set] of extra) {
      for (const v of odd) {
        const r = structuredClone(s);
        set(r, v);
        out.push([`sample ${i} ${what}=${JSON.stringify(v)}`, r]);
      }
    }
  });
  return out;
}

function holdsTo(t: import('ava').ExecutionContext, check: (v: unknown) => unknown, schema: { safeParse(v: unknown): { success: boolean; data?: unknown } }, cases: Array<[string, unknown]>): number {
  let accepted = 0;
  for (const [what, v] of cases) {
    const parsed = schema.safeParse(v);
    let mine: unknown;
    try {
      mine = check(v);
    } catch (e) {
      if (!(e instanceof LeftToEngine)) throw e;
      continue;
    }
    accepted++;
    t.true(parsed.success, `${what}: accepted, but the schema refuses it`);
    t.deepEqual(mine, parsed.data, what);
  }
  return accepted;
}

test('a record summary: what the check accepts, the schema gives the same', (t) => {
  const cases = variants(records, nested);
  const accepted = holdsTo(t, checkSummary, ContainerSummarySchema, cases);
  // The samples themselves are all accepted (ps answers them without the engine).
  for (const r of records) t.notThrows(() => checkSummary(r));
  t.true(accepted > records.length, `${accepted} of ${cases.length} accepted`);
});

test('a time: the check takes exactly the times the schema takes (dates, leap years, ranges, fractions, offsets)', (t) => {
  const base = records[0]!;
  const times: string[] = ['', 'x', '2026-12-06', '2026-12-06T08:00Z', '2026-12-06t08:00:00z', '2026-12-06T08:00:00', '2026-12-06 08:00:00Z', '2026-12-06T08:00:00.Z', '2026-12-06T08:00:00+0500', '2026-12-06T08:00:00+05', ' 2026-12-06T08:00:00Z', '２026-12-06T08:00:00Z', '2026-12-06T08:00:00Z\n'];
  for (const y of ['1900', '2000', '2023', '2024', '2100', '0000', '9999'])
    for (const mo of ['00', '01', '02', '04', '12', '13'])
      for (const d of ['00', '01', '28', '29', '30', '31', '32'])
        for (const [h, mi, sec] of [['00', '00', '00'], ['23', '59', '59'], ['24', '00', '00'], ['12', '60', '00'], ['12', '00', '60']])
          for (const frac of ['', '.1', '.123456789'])
            for (const off of ['Z', '+00:00', '-23:59', '+24:00', '+05:60']) times.push(`${y}-${mo}-${d}T${h}:${mi}:${sec}${frac}${off}`);
  let agreed = 0;
  for (const created of times) {
    const schema = ContainerSummarySchema.safeParse({ ...base, created }).success;
    let mine = true;
    try {
      checkSummary({ ...base, created });
    } catch (e) {
      if (!(e instanceof LeftToEngine)) throw e;
      mine = false;
    }
    if (mine === schema) agreed++;
    else t.fail(`${JSON.stringify(created)}: the schema ${schema ? 'takes' : 'refuses'} it, the check ${mine ? 'takes' : 'refuses'} it`);
  }
  t.is(agreed, times.length);
});

test('state.json: what the check accepts, the schema gives the same', (t) => {
  const states = [
    { status: 'running', pid: 10, shimPid: 9, restartCount: 0, startedAt: time },
    { status: 'restarting', pid: 0, shimPid: 9, restartCount: 3, startedAt: null, extra: 'dropped' },
    { status: 'exited', pid: 0, shimPid: 9, restartCount: 0, startedAt: '2026-12-06T08:00:00Z' },
  ];
  holdsTo(t, checkShimState, ShimStateSchema, variants(states));
  for (const s of states) t.notThrows(() => checkShimState(s));
});

test('health.json: the status when the schema reads the file, else left to the engine', (t) => {
  const result = { Start: time, End: time, ExitCode: 0, Output: 'ok\n' };
  const files = [
    { Status: 'healthy', FailingStreak: 0, Log: [result] },
    { Status: 'starting', FailingStreak: 0, Log: [] },
    { Status: 'unhealthy', FailingStreak: 3, Log: [result, { ...result, ExitCode: -1 }] },
  ];
  const cases = variants(files, [
    ['a log entry', (r, v) => void (r.Log = [{ ...result, ExitCode: v }])],
    ['a log entry time', (r, v) => void (r.Log = [{ ...result, End: v }])],
    ['six entries', (r) => void (r.Log = Array(6).fill(result))],
  ]);
  for (const [what, v] of cases) {
    const parsed = ShimHealthSchema.safeParse(v);
    try {
      const status = checkHealthStatus(v);
      t.true(parsed.success, `${what}: accepted, but the schema refuses it`);
      t.is(status as string | undefined, parsed.data?.Status, what);
    } catch (e) {
      if (!(e instanceof LeftToEngine)) throw e;
    }
  }
  for (const f of files) t.is(checkHealthStatus(f) as string, f.Status);
});
