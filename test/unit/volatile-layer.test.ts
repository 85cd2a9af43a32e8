/** volatile-layer.ts: a --rm container's volatile writable layer mounted again by a restart. */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { NsboxError } from '../../lib/errors.js';
import { readyVolatileLayer } from '../../lib/runtime/volatile-layer.js';

function workWithMark(): string {
  const work = mkdtempSync(join(tmpdir(), 'nsbox-volatile-'));
  mkdirSync(join(work, 'work', 'incompat', 'volatile'), { recursive: true });
  return work;
}

test('a first volatile mount: nothing to drop', (t) => {
  const work = mkdtempSync(join(tmpdir(), 'nsbox-volatile-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  t.notThrows(() => readyVolatileLayer('a'.repeat(64), work));
  t.false(existsSync(join(work, 'work')));
});

test("the mark of an earlier volatile mount in this boot is dropped (overlayfs refuses to mount the layer again while it is there)", (t) => {
  const work = workWithMark();
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  readyVolatileLayer('a'.repeat(64), work);
  t.false(existsSync(join(work, 'work', 'incompat')));
  t.true(existsSync(join(work, 'work')));
});

test('a mark from before this boot: the start is refused with the reason, the mark kept', (t) => {
  const work = workWithMark();
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const e = t.throws(() => readyVolatileLayer('b'.repeat(64), work, Date.now() + 60_000), { instanceOf: NsboxError });
  t.is(e.code, 'EINVAL');
  t.regex(e.message, /^container bbbbbbbbbbbb: its writable layer was mounted volatile .* before the host restarted, so writes to it may be lost; remove the container$/);
  t.true(existsSync(join(work, 'work', 'incompat', 'volatile')));
});
