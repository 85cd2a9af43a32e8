/** plan.bin through nsbox-shim's own reader (--print-plan): the built shim reads what the encoder wrote. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { encodePlanFile, encodeWire } from '../../lib/runtime/plan-wire.js';
import { shimPath } from '../../lib/runtime/shim.js';
import { samplePlan } from '../fixtures/sample-plan.js';

/** What the shim prints for a value: Buffers as {"$bytes": hex}, undefined fields left out. */
function asJson(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return { $bytes: v.toString('hex') };
  if (Array.isArray(v)) return v.map(asJson);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, e]) => e !== undefined).map(([k, e]) => [k, asJson(e)]));
  }
  return v;
}

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
