/**
 * A build step's layer tar (lib/build/diff-tar.ts), read back with the store's own tar reader:
 * sorted names, long and non-ASCII names and link targets through pax, symbolic and hard links,
 * modes, sizes and contents; its digest is the sha256 of its bytes; an empty tree is 0 entries.
 */
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { writeDiffTar } from '../../lib/build/diff-tar.js';
import { TarReader, type TarEntry } from '../../lib/storage/tar-reader.js';

async function read(file: string): Promise<Array<TarEntry & { body: string }>> {
  const out: Array<TarEntry & { body: string }> = [];
  const reader = new TarReader((e) => {
    const item = { ...e, body: '' };
    out.push(item);
    return { write: (c: Buffer) => void (item.body += c.toString('utf8')), end: () => undefined };
  }, 'test');
  await reader.write(readFileSync(file));
  reader.end();
  return out;
}

test('names sorted, pax for long and non-ASCII names and links, hard links by inode, modes and bytes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-difftar-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const upper = join(dir, 'upper');
  const long = 'd'.repeat(60);
  mkdirSync(join(upper, long, long), { recursive: true });
  writeFileSync(join(upper, long, long, 'file-with-a-long-path.txt'), 'deep\n');
  writeFileSync(join(upper, 'b.txt'), 'b\n');
  chmodSync(join(upper, 'b.txt'), 0o4750);
  linkSync(join(upper, 'b.txt'), join(upper, 'c-hard'));
  writeFileSync(join(upper, 'caf\u00e9.txt'), 'accent\n');
  symlinkSync(`/${'t'.repeat(120)}`, join(upper, 'a-link'));
  const file = join(dir, 'layer.tar');
  const r = await writeDiffTar(upper, file);
  const bytes = readFileSync(file);
  t.is(r.size, bytes.length);
  t.is(r.diffId, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  const entries = await read(file);
  t.is(r.entries, entries.length);
  t.deepEqual(entries.map((e) => e.path), ['a-link', 'b.txt', 'c-hard', 'caf\u00e9.txt', `${long}/`, `${long}/${long}/`, `${long}/${long}/file-with-a-long-path.txt`]);
  const byName = new Map(entries.map((e) => [e.path, e]));
  t.is(byName.get('a-link')!.type, 'symlink');
  t.is(byName.get('a-link')!.linkpath, `/${'t'.repeat(120)}`);
  t.is(byName.get('b.txt')!.mode, 0o4750);
  t.is(byName.get('b.txt')!.body, 'b\n');
  t.is(byName.get('c-hard')!.type, 'link');
  t.is(byName.get('c-hard')!.linkpath, 'b.txt');
  t.is(byName.get('caf\u00e9.txt')!.body, 'accent\n');
  t.is(byName.get(`${long}/${long}/file-with-a-long-path.txt`)!.body, 'deep\n');
  t.is(byName.get(`${long}/`)!.type, 'dir');

  const again = join(dir, 'again.tar');
  t.is((await writeDiffTar(upper, again)).diffId, r.diffId, 'the same tree, the same bytes');
  const clamped = await writeDiffTar(upper, join(dir, 'clamped.tar'), { clampMtime: 1000 });
  t.true((await read(join(dir, 'clamped.tar'))).every((e) => e.mtime <= 1000));
  t.not(clamped.diffId, r.diffId);

  mkdirSync(join(dir, 'empty'));
  t.is((await writeDiffTar(join(dir, 'empty'), join(dir, 'empty.tar'))).entries, 0);
});
