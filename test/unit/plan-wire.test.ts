/** plan.bin: the encoder's layout and a round trip through the TS decoder (nsbox-shim's reader: integration/plan-wire-shim). */
import test from 'ava';
import { decodeWire, encodePlanFile, encodeWire, type WireValue } from '../../lib/runtime/plan-wire.js';
import { samplePlan } from '../fixtures/sample-plan.js';

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
