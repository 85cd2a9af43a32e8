/** replace-sync.ts: a small file replaced at once, renamed over or swapped in. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { exchangeFileSync, replaceFileSync } from '../../lib/storage/replace-sync.js';
import { NsboxError } from '../../lib/errors.js';

function dir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'nsbox-replace-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('exchangeFileSync swaps the new content in and unlinks the old under the temp name', (t) => {
  const d = dir(t);
  const file = join(d, 'record.json');
  writeFileSync(file, 'old\n');
  exchangeFileSync(file, 'new\n', join(d, '.record.json.tmp-1'));
  t.is(readFileSync(file, 'utf8'), 'new\n');
  t.deepEqual(readdirSync(d), ['record.json'], 'the old content went with the temp name');
  exchangeFileSync(file, 'newer\n', join(d, '.record.json.tmp-2'));
  t.is(readFileSync(file, 'utf8'), 'newer\n');
});

test('exchangeFileSync of a file that is not there fails with ENOENT and leaves no temp file', (t) => {
  const d = dir(t);
  const e = t.throws(() => exchangeFileSync(join(d, 'gone.json'), 'x', join(d, '.gone.json.tmp-1')), { instanceOf: NsboxError });
  t.is(e.code, 'ENOENT');
  t.is(e.syscall, 'renameat2');
  t.deepEqual(readdirSync(d), []);
  // A temp name taken (never followed or overwritten): EEXIST, the file unchanged.
  writeFileSync(join(d, 'f'), 'kept');
  writeFileSync(join(d, '.f.tmp'), 'someone else');
  t.is((t.throws(() => exchangeFileSync(join(d, 'f'), 'x', join(d, '.f.tmp'))) as NodeJS.ErrnoException).code, 'EEXIST');
  t.is(readFileSync(join(d, 'f'), 'utf8'), 'kept');
  t.is(readFileSync(join(d, '.f.tmp'), 'utf8'), 'someone else', 'a temp name it did not make is left alone');
});

test('exchangeFileSync on a filesystem without RENAME_EXCHANGE (EINVAL): renamed over instead, no temp file left', (t) => {
  const d = dir(t);
  const file = join(d, 'record.json');
  writeFileSync(file, 'old\n');
  const einval = () => {
    throw new NsboxError('renameat2: EINVAL', { code: 'EINVAL', errno: -22, syscall: 'renameat2' });
  };
  exchangeFileSync(file, 'new\n', join(d, '.record.json.tmp-1'), einval);
  t.is(readFileSync(file, 'utf8'), 'new\n');
  t.deepEqual(readdirSync(d), ['record.json']);
  // Any other failure is the caller's, with the temp file gone.
  const eio = () => {
    throw new NsboxError('renameat2: EIO', { code: 'EIO', errno: -5, syscall: 'renameat2' });
  };
  t.is((t.throws(() => exchangeFileSync(file, 'x', join(d, '.record.json.tmp-2'), eio)) as NsboxError).code, 'EIO');
  t.is(readFileSync(file, 'utf8'), 'new\n');
  t.deepEqual(readdirSync(d), ['record.json']);
});

test('replaceFileSync renames over the file, or makes it', (t) => {
  const d = dir(t);
  const file = join(d, 'names.json');
  replaceFileSync(file, 'a', join(d, '.names.json.tmp-1'));
  replaceFileSync(file, 'b', join(d, '.names.json.tmp-2'));
  t.is(readFileSync(file, 'utf8'), 'b');
  t.false(existsSync(join(d, '.names.json.tmp-2')));
});
