/** The on-disk cache of compiled seccomp programs: a hit is read back, a bad entry is rebuilt, never used. */
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileSeccomp, compileSeccompCached, defaultProfile, parseSeccompProfile, seccompCacheKey } from '../../lib/runtime/seccomp/index.js';

const opts = { arch: 'x86_64' as const, caps: ['CAP_CHOWN', 'CAP_KILL'], kernel: '6.1.0' };
const entry = (dir: string) => join(dir, `${seccompCacheKey(defaultProfile, opts)}.bpf`);
const withHash = (prog: Buffer) => Buffer.concat([createHash('sha256').update(prog).digest(), prog]);

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-seccomp-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'seccomp');
}

test('a miss compiles and stores the program under its key', (t) => {
  const dir = tempDir(t);
  const prog = compileSeccompCached(dir, defaultProfile, opts);
  t.deepEqual(prog, compileSeccomp(defaultProfile, opts));
  t.deepEqual(readFileSync(entry(dir)), withHash(prog));
  t.deepEqual(readdirSync(dir), [`${seccompCacheKey(defaultProfile, opts)}.bpf`], 'no temp file is left');
});

test('a hit is read from disk, not compiled', (t) => {
  const dir = tempDir(t);
  compileSeccompCached(dir, defaultProfile, opts);
  // A different sound program under the same key: only a read from disk can return it.
  const other = compileSeccomp(parseSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW' }), opts);
  writeFileSync(entry(dir), withHash(other));
  t.deepEqual(compileSeccompCached(dir, defaultProfile, opts), other);
});

for (const [what, damage] of [
  ['a flipped byte', (b: Buffer) => { const c = Buffer.from(b); c[c.length - 3]! ^= 0x40; return c; }],
  ['a torn file', (b: Buffer) => b.subarray(0, b.length - 5)],
  ['an empty file', () => Buffer.alloc(0)],
  ['only the hash', (b: Buffer) => b.subarray(0, 32)],
  ['garbage', () => Buffer.from('not a program at all, not even close')],
] as const) {
  test(`a corrupted entry (${what}) is ignored and rebuilt`, (t) => {
    const dir = tempDir(t);
    const good = compileSeccompCached(dir, defaultProfile, opts);
    writeFileSync(entry(dir), damage(readFileSync(entry(dir))));
    t.deepEqual(compileSeccompCached(dir, defaultProfile, opts), good);
    t.deepEqual(readFileSync(entry(dir)), withHash(good), 'the entry is written again');
  });
}

test('the key changes with the capabilities, the profile, the arch and the kernel', (t) => {
  const base = seccompCacheKey(defaultProfile, opts);
  t.is(seccompCacheKey(defaultProfile, { ...opts, caps: [...opts.caps].reverse() }), base, 'capability order does not matter');
  t.not(seccompCacheKey(defaultProfile, { ...opts, caps: [...opts.caps, 'CAP_SYS_ADMIN'] }), base);
  t.not(seccompCacheKey({ ...defaultProfile, defaultErrnoRet: 38 }, opts), base);
  t.not(seccompCacheKey(defaultProfile, { ...opts, arch: 'aarch64' }), base);
  t.not(seccompCacheKey(defaultProfile, { ...opts, kernel: '4.19.0' }), base);
});

test('a cache that cannot be written still gives the program', (t) => {
  const dir = tempDir(t);
  writeFileSync(dir, 'a file where the cache directory would be');
  t.deepEqual(compileSeccompCached(dir, defaultProfile, opts), compileSeccomp(defaultProfile, opts));
});

test('an entry that cannot be read or written (a directory in its place) is reported; the program is compiled all the same', async (t) => {
  const dir = tempDir(t);
  mkdirSync(entry(dir), { recursive: true });
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  t.deepEqual(compileSeccompCached(dir, defaultProfile, opts), compileSeccomp(defaultProfile, opts));
  // process.emitWarning emits on the next tick
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.deepEqual(
    // tests run side by side in this process: only this test's warnings
    warnings.filter((w) => w.message.includes(dir)).map((w) => [(w as NodeJS.ErrnoException).code, w.message.replace(/: .*/, '')]),
    [
      ['NSBOX_WARNING', `reading the seccomp cache entry ${entry(dir)}`],
      ['NSBOX_WARNING', `writing the seccomp cache entry ${entry(dir)}`],
    ],
  );
  t.deepEqual(readdirSync(dir), [`${seccompCacheKey(defaultProfile, opts)}.bpf`], 'no temp file is left');
});
