import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { tryLock, withLock, writeFileAtomic } from '../../lib/storage/atomic.js';
import { defaultRoot, StoreLayout } from '../../lib/storage/layout.js';
import { native } from '../../lib/native.js';

const atomicModule = fileURLToPath(new URL('../../lib/storage/atomic.ts', import.meta.url));

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'nsbox-storage-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A second node process that holds `lock` for `holdMs` and says "locked" once it has it. */
function holder(lock: string, holdMs: number) {
  const code = `
    import { withLock } from ${JSON.stringify(atomicModule)};
    await withLock(${JSON.stringify(lock)}, async () => {
      console.log('locked ' + Date.now());
      await new Promise((r) => setTimeout(r, ${holdMs}));
      console.log('released ' + Date.now());
    });`;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('locked')) resolve();
    });
    child.once('exit', () => reject(new Error(`holder exited early: ${out}`)));
  });
  const exited = new Promise<string>((resolve) => child.once('exit', () => resolve(out)));
  return { child, locked, exited };
}

test('the store root: NSBOX_ROOT, then /var/lib/nsbox as root, then XDG_DATA_HOME or ~/.local/share', (t) => {
  t.is(defaultRoot({ NSBOX_ROOT: '/srv/x' }, 1000), '/srv/x');
  t.is(defaultRoot({}, 0), '/var/lib/nsbox');
  t.is(defaultRoot({ XDG_DATA_HOME: '/home/u/data', HOME: '/home/u' }, 1000), '/home/u/data/nsbox');
  t.is(defaultRoot({ HOME: '/home/u' }, 1000), '/home/u/.local/share/nsbox');
  const l = new StoreLayout('/r');
  const hex = 'a'.repeat(64);
  t.is(l.blob(`sha256:${hex}`), `/r/blobs/sha256/${hex}`);
  t.is(l.layerDiff(`sha256:${hex}`), `/r/layers/${hex}/diff`);
  t.is(l.imagesFile, '/r/images.json');
  t.throws(() => l.blob('sha256:../../etc'));
  t.throws(() => l.container('../x'));
});

test('writeFileAtomic replaces a file and leaves no temp file', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'f.json');
  await writeFileAtomic(file, 'one');
  await writeFileAtomic(file, 'two');
  t.is(readFileSync(file, 'utf8'), 'two');
  t.deepEqual(readdirSync(dir), ['f.json']);
});

test('writeFileAtomic into a missing directory fails cleanly', async (t) => {
  const dir = tempDir(t);
  await t.throwsAsync(writeFileAtomic(path.join(dir, 'nope', 'f'), 'x'), { code: 'ENOENT' });
  t.deepEqual(readdirSync(dir), []);
});

test('withLock serializes holders in one process and releases on throw', async (t) => {
  const lock = path.join(tempDir(t), 'l.lock');
  const log: string[] = [];
  const job = (name: string) =>
    withLock(lock, async () => {
      log.push(`${name}+`);
      await new Promise((r) => setTimeout(r, 20));
      log.push(`${name}-`);
    });
  await Promise.all([job('a'), job('b'), job('c')]);
  t.is(log.join(' ').replace(/(\w)\+ \1-/g, 'ok'), 'ok ok ok');
  await t.throwsAsync(withLock(lock, () => Promise.reject(new Error('boom'))), { message: 'boom' });
  const r = await tryLock(lock, () => 1);
  t.deepEqual(r, { locked: true, value: 1 });
});

test('a lock held by another process: waited for without blocking the event loop; tryLock and timeouts', async (t) => {
  const lock = path.join(tempDir(t), 'l.lock');
  const h = holder(lock, 600);
  t.teardown(() => {
    if (h.child.exitCode === null) h.child.kill();
  });
  await h.locked;
  t.deepEqual(await tryLock(lock, () => 1), { locked: false });
  await t.throwsAsync(withLock(lock, () => 1, { timeoutMs: 50 }), { code: 'ETIMEDOUT' });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const acquiredAt = await withLock(lock, () => Date.now());
  clearInterval(timer);
  const out = await h.exited;
  const released = Number(/released (\d+)/.exec(out)?.[1]);
  t.true(acquiredAt >= released, `acquired at ${acquiredAt}, released at ${released}`);
  t.true(ticks > 5, `the event loop ran ${ticks} timer ticks while waiting`);
  // shared holders do not exclude each other
  const both = await withLock(lock, () => tryLock(lock, () => 'inner', { shared: true }), { shared: true });
  t.deepEqual(both, { locked: true, value: 'inner' });
});

test('writeFileAtomic: a reader never sees a partial file while another process rewrites it', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'big.json');
  const a = 'a'.repeat(1 << 20);
  writeFileSync(file, a);
  const code = `
    import { writeFileAtomic } from ${JSON.stringify(atomicModule)};
    for (let i = 0; i < 30; i++) await writeFileAtomic(${JSON.stringify(file)}, (i % 2 ? 'a' : 'b').repeat(1 << 20));`;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], { stdio: 'inherit' });
  t.teardown(() => {
    if (child.exitCode === null) child.kill();
  });
  const done = new Promise((r) => child.once('exit', r));
  let reads = 0;
  let bad = 0;
  while (child.exitCode === null) {
    const s = readFileSync(file, 'utf8');
    reads++;
    if (s.length !== 1 << 20 || (s !== a && s !== 'b'.repeat(1 << 20))) bad++;
    await new Promise((r) => setImmediate(r));
  }
  await done;
  t.is(child.exitCode, 0);
  t.is(bad, 0, `${bad} of ${reads} reads saw a partial file`);
  t.deepEqual(readdirSync(dir), ['big.json']);
});

/** A second node process that holds `lock` until its stdin ends (or it is killed). */
function holderUntilTold(lock: string) {
  const code = `
    import { withLock } from ${JSON.stringify(atomicModule)};
    await withLock(${JSON.stringify(lock)}, async () => {
      console.log('locked');
      process.stdin.resume();
      await new Promise((r) => process.stdin.once('end', r));
    });`;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', () => reject(new Error('holder exited early')));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, locked, exited };
}

test.serial("a lock's waiter is woken by its holder's close (inotify), not by a timer: a try when the watch is set, then one per close; a holder killed lets go too", async (t) => {
  const lock = path.join(tempDir(t), 'l.lock');
  // Count the waiter's tries and wake-ups: the addon's own object (which lib/native.ts's proxy
  // reads each call from) gets counting wrappers, set through that proxy.
  const { flock, watchClose } = native;
  let tries = 0;
  let wakes = 0;
  let watching: (() => void) | undefined;
  native.flock = (fd, op) => ((op & native.constants.LOCK_NB && tries++), flock(fd, op));
  native.watchClose = (file, cb) => {
    const handle = watchClose(file, () => (wakes++, cb()));
    watching?.();
    return handle;
  };
  t.teardown(() => Object.assign(native, { flock, watchClose }));
  for (const end of ['release', 'SIGKILL'] as const) {
    const h = holderUntilTold(lock);
    t.teardown(() => {
      if (h.child.exitCode === null) h.child.kill('SIGKILL');
    });
    await h.locked;
    tries = 0;
    wakes = 0;
    const watched = new Promise<void>((resolve) => (watching = resolve));
    const acquired = withLock(lock, () => 'mine');
    await watched;
    // The waiter has tried twice (before and after setting its watch) and now sleeps on the watch.
    t.is(tries, 2, end);
    if (end === 'release') h.child.stdin.end();
    else h.child.kill('SIGKILL');
    t.is(await acquired, 'mine', end);
    t.true(wakes >= 1, `${end}: woken by a close`);
    t.true(tries <= 2 + wakes, `${end}: ${tries} tries for ${wakes} wake-ups`);
    await h.exited;
  }
});
