/** plan.bin: the encoder's layout, and a round trip through nsbox-shim's own reader (--print-plan). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { SpawnPlan } from '../../lib/native.js';
import { buildContainerPlan, type PlanContext } from '../../lib/runtime/plan.js';
import { ContainerOptionsSchema, validate } from '../../lib/runtime/options.js';
import { compileSeccomp, defaultProfile } from '../../lib/runtime/seccomp/index.js';
import { decodeWire, encodePlanFile, encodeWire, type WireValue } from '../../lib/runtime/plan-wire.js';
import { shimPath } from '../../lib/runtime/shim.js';

const ctx: PlanContext = {
  id: 'abcdef0123456789', root: '/r', sandbox: false, sandboxEntries: [], privileged: true, hostUid: 0, hostGid: 0,
  cgroups: [{ name: 'memory', fstype: 'cgroup', data: 'memory', hostDir: '/sys/fs/cgroup/memory/x' }], bindIsDir: [],
};

/** A real container's plan: every kind of value the wire carries, the seccomp filter included. */
function samplePlan(): SpawnPlan {
  const cfg = validate(ContainerOptionsSchema, { rootfs: '/r', command: ['/bin/sh', '-c', 'echo "ünïcode" \\ \t'], user: '7:8' }, 'container options');
  const seccomp = compileSeccomp(defaultProfile, { arch: 'x86_64', caps: ['CAP_CHOWN'], kernel: '6.1.0' });
  const parts = buildContainerPlan(cfg, { ...ctx, security: { caps: 2 ** 40 + 5, ambient: 0, noNewPrivileges: true, seccomp } });
  return {
    cloneFlags: parts.cloneFlags, ops: parts.ops, argv: cfg.command!, env: ['PATH=/bin', 'A=b=c', 'EMPTY='],
    stdio: [-1, -1, -1], denySetgroups: false, uidMap: '0 100000 65536\n', gidMap: '0 100000 65536\n',
    cgroupProcs: ['/sys/fs/cgroup/memory/x/cgroup.procs'], pdeathsig: false,
  };
}

/** What the shim prints for a value: Buffers as {"$bytes": hex}, undefined fields left out. */
function asJson(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return { $bytes: v.toString('hex') };
  if (Array.isArray(v)) return v.map(asJson);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, e]) => e !== undefined).map(([k, e]) => [k, asJson(e)]));
  }
  return v;
}

/** The value as the wire keeps it: undefined fields left out, Buffers kept. */
function withoutUndefined(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v;
  if (Array.isArray(v)) return v.map(withoutUndefined);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, e]) => e !== undefined).map(([k, e]) => [k, withoutUndefined(e)]));
  }
  return v;
}

test('the layout: magic, version, tagged values, little-endian', (t) => {
  const b = encodeWire({ a: 1, s: 'é', x: Buffer.from([1, 2]), l: [true, false, null], u: undefined });
  t.is(b.subarray(0, 8).toString('latin1'), 'NSBXPLAN');
  t.is(b.readUInt32LE(8), 1);
  t.is(String.fromCharCode(b[12]!), 'o');
  t.is(b.readUInt32LE(13), 4, 'undefined fields are left out');
  t.deepEqual(decodeWire(b), { a: 1, s: 'é', x: Buffer.from([1, 2]), l: [true, false, null] });
});

test('a container plan round-trips through the TS decoder, numbers beyond 32 bits included', (t) => {
  const plan = samplePlan();
  const file = encodePlanFile(plan, { restart: 'on-failure:3', openStdin: true });
  const back = decodeWire(file) as { plan: WireValue; restart: string; openStdin: boolean; stopSignal: number; stopTimeout: number };
  t.deepEqual(back.plan, withoutUndefined(plan));
  t.deepEqual({ ...back, plan: undefined }, { restart: 'on-failure:3', openStdin: true, tty: false, cols: 80, rows: 24, stopSignal: 15, stopTimeout: 10, awaitAttach: 0, plan: undefined });
  t.is((back.plan as { ops: Array<{ op: string; caps?: number }> }).ops.find((o) => o.op === 'capbset')?.caps, 2 ** 40 + 5);
});

test('bad settings are refused before anything is written', (t) => {
  t.throws(() => encodePlanFile(samplePlan(), { restart: 'sometimes' as 'no' }), { message: /restart/ });
  t.throws(() => encodePlanFile({ ...samplePlan(), enterPidfd: 3 }), { message: /enter/ });
  t.throws(() => encodePlanFile(samplePlan(), { exitCommand: ['nsbox', 'rm'] }), { message: /absolute/ });
});

test('nsbox-shim reads the plan file as written: --print-plan', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-wire-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const plan = samplePlan();
  const file = join(dir, 'plan.bin');
  writeFileSync(file, encodePlanFile(plan, { restart: 'always', stopSignal: 2, stopTimeout: 1.5, tty: { cols: 132, rows: 43 }, awaitAttach: 5, exitCommand: ['/usr/bin/env', 'true'] }));
  const out = JSON.parse(execFileSync(shimPath(), ['--print-plan', file], { encoding: 'utf8' })) as Record<string, unknown>;
  t.deepEqual(out, { restart: 'always', openStdin: false, tty: true, cols: 132, rows: 43, stopSignal: 2, stopTimeout: 1.5, awaitAttach: 5, exitCommand: ['/usr/bin/env', 'true'], plan: asJson(plan) });
  const seccomp = (plan.ops.find((o) => o.op === 'seccomp') as { filter: Buffer }).filter;
  t.true(seccomp.length > 1000, 'the seccomp filter travels whole');
});

test('nsbox-shim refuses a corrupt or truncated plan file, and a plan it cannot parse', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-wire-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const good = encodePlanFile(samplePlan());
  const cases: Array<[Buffer, RegExp]> = [
    [good.subarray(0, good.length - 3), /corrupt plan file/],
    [Buffer.concat([good, Buffer.from([0])]), /corrupt plan file/],
    [Buffer.from('{"plan":{}}'), /not an nsbox plan file/],
    [encodeWire({ plan: { argv: [], ops: [] } }), /plan.argv must not be empty/],
    [encodeWire({ plan: { argv: ['x'], ops: [{ op: 'explode' }] } }), /unknown op 'explode'/],
    [encodeWire({ plan: { argv: ['x'] }, restart: 'on-failure:x' }), /bad restart policy/],
  ];
  for (const [bytes, message] of cases) {
    const file = join(dir, 'plan.bin');
    writeFileSync(file, bytes);
    const err = t.throws(() => execFileSync(shimPath(), ['--print-plan', file], { encoding: 'utf8', stdio: 'pipe' })) as Error & { stderr: string };
    t.regex(err.stderr, message);
  }
});
