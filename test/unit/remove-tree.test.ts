/** remove-tree.ts: a tree with a mode-000 directory (overlayfs's work/work), removed by its owner without CAP_DAC_OVERRIDE. */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const module = fileURLToPath(new URL('../../lib/storage/remove-tree.ts', import.meta.url));
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/** `dir/work/work` (mode 000) holding incompat/volatile and a file, as a volatile overlay leaves it. */
function overlayWork(dir: string): string {
  const trash = join(dir, '.c.tmp-rm-1');
  mkdirSync(join(trash, 'work', 'work', 'incompat', 'volatile'), { recursive: true });
  writeFileSync(join(trash, 'work', 'work', 'f'), 'x');
  mkdirSync(join(trash, 'upper'));
  return trash;
}

/** Runs `code` (with `removeTree` in scope) as the owner of the tree: nobody when we are root. */
function asOwner(code: string): { status: number | null; stderr: string } {
  const script = `const { removeTree } = await import(${JSON.stringify(module)}); ${code}`;
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8', ...(isRoot ? { uid: NOBODY, gid: NOBODY } : {}) });
  return { status: r.status, stderr: r.stderr };
}

test('a tree with a directory its owner cannot list is removed (u+rwx given on the way down)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-remove-tree-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const trash = overlayWork(dir);
  chmodSync(join(trash, 'work', 'work'), 0);
  if (isRoot) for (const p of [dir, trash, join(trash, 'work'), join(trash, 'work', 'work'), join(trash, 'work', 'work', 'incompat'), join(trash, 'work', 'work', 'incompat', 'volatile'), join(trash, 'work', 'work', 'f'), join(trash, 'upper')]) chownSync(p, NOBODY, NOBODY);
  // Without the chmods a plain rm fails as overlayfs's work dir made it fail (EACCES on scandir).
  const plain = asOwner(`await (await import('node:fs/promises')).rm(${JSON.stringify(trash)}, { recursive: true, force: true });`);
  t.not(plain.status, 0);
  t.regex(plain.stderr, /EACCES/);
  t.is(statSync(join(trash, 'work', 'work')).mode & 0o777, 0);
  const r = asOwner(`await removeTree(${JSON.stringify(trash)});`);
  t.is(r.status, 0, r.stderr);
  t.false(existsSync(trash));
  t.deepEqual(readdirSync(dir), []);
});
