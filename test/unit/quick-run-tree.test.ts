/** run-store.ts's removeRunTree: a quick run's directory removed by name, and by a walk when the container wrote to its layer. */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeRunTree } from '../../lib/cli/quick/run-store.ts';

/** A directory as a quick run leaves it: the record, the overlay's root and upper, and the volatile overlay's work/work (mode 000). */
function runTree(): { base: string; dir: string } {
  const base = mkdtempSync(join(tmpdir(), 'nsbox-run-tree-'));
  const dir = join(base, '.c.tmp-rm-q1');
  mkdirSync(join(dir, 'root'), { recursive: true });
  mkdirSync(join(dir, 'upper'));
  mkdirSync(join(dir, 'work', 'work', 'incompat', 'volatile'), { recursive: true });
  writeFileSync(join(dir, 'work', 'work', 'incompat', 'volatile', 'dirty'), '');
  writeFileSync(join(dir, 'record.json'), '{}\n');
  return { base, dir };
}

const isRoot = process.getuid?.() === 0;

test('a quick run\'s directory is removed by its names, the volatile overlay\'s mode-000 work/work included', (t) => {
  const { base, dir } = runTree();
  // overlayfs makes work/work 000; root removes it without listing it
  if (isRoot) chmodSync(join(dir, 'work', 'work'), 0);
  try {
    removeRunTree(dir);
    t.false(existsSync(dir));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('what the container wrote to its layer (files, directories, a symlink) goes by the walk', (t) => {
  const { base, dir } = runTree();
  mkdirSync(join(dir, 'upper', 'a', 'b'), { recursive: true });
  writeFileSync(join(dir, 'upper', 'a', 'b', 'c'), 'x');
  symlinkSync('/etc', join(dir, 'upper', 'link'));
  writeFileSync(join(dir, 'work', 'stray'), 'x');
  try {
    removeRunTree(dir);
    t.false(existsSync(dir));
    t.true(existsSync('/etc'), 'a symlink is removed, not followed');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('a directory of another shape (no work directory, no record) is removed as well', (t) => {
  const base = mkdtempSync(join(tmpdir(), 'nsbox-run-tree-'));
  const dir = join(base, '.c.tmp-rm-q2');
  mkdirSync(join(dir, 'root'), { recursive: true });
  try {
    removeRunTree(dir);
    t.false(existsSync(dir));
    removeRunTree(dir); // gone already: nothing to do, no error
    t.false(existsSync(dir));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
