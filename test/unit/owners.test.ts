/** The owner index (lib/engine/owners.ts): notes per process, dead owners by pid + start time, a fake /proc. */
import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OwnerIndex, ownerKey, ownerOf, ownerLabels, thisProcess } from '../../lib/engine/owners.js';
import { ValidationError } from '../../lib/errors.js';

function fakeProc(entries: Record<number, { state: string; start: number }>): string {
  const proc = mkdtempSync(path.join(tmpdir(), 'nsbox-proc-'));
  for (const [pid, e] of Object.entries(entries)) {
    mkdirSync(path.join(proc, pid));
    // field 2 may hold spaces and parentheses; field 22 is the start time
    const rest = [e.state, ...Array.from({ length: 18 }, () => '0'), String(e.start), '0'];
    writeFileSync(path.join(proc, pid, 'stat'), `${pid} (a (b) c) ${rest.join(' ')}\n`);
  }
  return proc;
}

test('notes, owners, dead ones (gone, pid reused, zombie), notes in kind order, forget and drop', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'nsbox-owners-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const index = new OwnerIndex(root);
  t.deepEqual(index.owners(), []);
  const live = { pid: 10, startTime: 100 };
  const gone = { pid: 11, startTime: 100 };
  const reused = { pid: 12, startTime: 100 };
  const zombie = { pid: 13, startTime: 100 };
  index.note('volume', 'data', {}, gone);
  index.note('network', 'net-1', {}, gone);
  index.note('sdk', 'a'.repeat(64), { runRoot: '/run/x' }, gone);
  index.note('container', 'b'.repeat(64), {}, gone);
  for (const o of [live, reused, zombie]) index.note('container', 'c'.repeat(64), {}, o);
  const proc = fakeProc({ 10: { state: 'S', start: 100 }, 12: { state: 'S', start: 999 }, 13: { state: 'Z', start: 100 } });
  t.teardown(() => rmSync(proc, { recursive: true, force: true }));
  t.deepEqual((await index.deadOwners(proc)).map(ownerKey).sort(), ['11-100', '12-100', '13-100']);
  t.deepEqual(index.notes(gone).map((n) => `${n.kind}-${n.name.slice(0, 3)}`), ['container-bbb', 'sdk-aaa', 'network-net', 'volume-dat']);
  t.deepEqual(index.notes(gone)[1]!.data, { runRoot: '/run/x' });
  for (const n of index.notes(gone)) index.forget(n.kind, n.name, gone);
  index.drop(gone);
  t.false(readdirSync(index.dir).includes('11-100'));
  t.notThrows(() => index.forget('volume', 'data', gone), 'forgetting twice is fine');
  // The last note forgotten takes its owner's directory with it.
  index.forget('container', 'c'.repeat(64), live);
  t.false(readdirSync(index.dir).includes('10-100'));
  t.throws(() => index.note('volume', '../escape', {}, live), { instanceOf: ValidationError });
});

test('the owner label names this process and reads back; another label is no owner', (t) => {
  const me = thisProcess();
  t.is(me.pid, process.pid);
  t.deepEqual(ownerOf(ownerLabels(me)), me);
  t.is(ownerOf({ 'nsbox.owner': 'nope' }), undefined);
  t.is(ownerOf(undefined), undefined);
});
