/**
 * `Container.run({ reuse: true })` (issue 17, testcontainers' withReuse), across processes: two
 * racing runs get one container; it survives SIGKILL of its makers and the next engine open (the
 * owner reap); a later run returns the same id; another env gives another container; a stopped one
 * is started again; discard() removes it. Runs in a network and mount namespace of the test's own
 * (test/fixtures/reuse-driver.ts does the work, reuse-child.ts is each run).
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { isRoot, runDriver, skipIf } from './_helpers.js';

const DRIVER = path.join(import.meta.dirname, '..', 'fixtures', 'reuse-driver.ts');
const dist = path.join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const missing = ['/usr/sbin/nft', '/usr/lib/podman/aardvark-dns', dist].filter((f) => !existsSync(f));
const why = [...(isRoot ? [] : ['root']), ...missing];
const run = skipIf(why.length ? `needs root, nftables, aardvark-dns and dist/ (missing ${why.join(', ')})` : undefined, test.serial);

run('reuse: one container for racing processes, kept through SIGKILL and the owner reap, found again by id, another for another env, discarded at the end', async (t) => {
  const o = await runDriver(DRIVER, 400_000);
  t.log(JSON.stringify(o));
  const [a, b] = o.race;
  // The race: one container, made by one of the two, found by the other.
  t.is(a.id, b.id);
  t.deepEqual([a.reused, b.reused].sort(), [false, true]);
  t.regex(a.hash, /^[0-9a-f]{64}$/);
  t.is(a.label, a.hash);
  t.is(a.owner, null, 'a reusable container has no owner');
  t.is(a.body, 'hello one\n');
  t.is(b.body, 'hello one\n');
  t.deepEqual(o.hashedAfterRace, [a.id]);
  // Both makers SIGKILLed, then an engine open (nsbox ps): the container runs on.
  t.deepEqual(o.raceEnded, ['SIGKILL', 'SIGKILL']);
  t.is(o.psAfterKill.status, 0, o.psAfterKill.stderr);
  t.deepEqual(o.psAfterKill.ids, [a.id]);
  t.true(o.aliveAfterKill);
  t.is(o.bodyAfterKill, 'hello one\n');
  // A third process: the same container, and the process ends by itself after remove() (a release).
  t.is(o.third.id, a.id);
  t.true(o.third.reused);
  t.is(o.third.body, 'hello one\n');
  t.is(o.third.state, 'released');
  t.deepEqual(o.third.ended, { status: 0, signal: null });
  // Another env: another container, made (not found), beside the first.
  t.not(o.other.id, a.id);
  t.false(o.other.reused);
  t.not(o.other.hash, a.hash);
  t.is(o.other.body, 'hello two\n');
  t.deepEqual([...o.hashedWithOther].sort(), [a.id, o.other.id].sort());
  // stop() stops it; the next run starts the same container again and waits for it.
  t.is(o.stopped.id, a.id);
  t.is(o.stopped.state, 'exited');
  t.false(o.aliveAfterStop);
  t.is(o.afterStop.id, a.id);
  t.true(o.afterStop.reused);
  t.is(o.afterStop.body, 'hello one\n');
  // discard(): both go; nothing left.
  t.is(o.discardOne.id, a.id);
  t.is(o.discardTwo.id, o.other.id);
  t.deepEqual(o.hashedAfterDiscard, []);
  t.deepEqual(o.psAtEnd, []);
  t.is(o.cleanedUp, 0);
});
