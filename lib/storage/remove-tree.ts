/**
 * `rm -rf` that also removes directories their owner cannot list: overlayfs makes its work dir's
 * `work` with mode 000 (and, mounted `volatile`, leaves `incompat/volatile` in it), which a process
 * without CAP_DAC_OVERRIDE (rootless nsbox) can neither read nor empty. On EACCES the directories
 * are given u+rwx on the way down and the removal is tried again. Only for trees of nsbox's own
 * store whose processes are gone: chmod follows a symlink swapped in between its lstat and it.
 */
import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { isCode } from './errors.js';

export async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
    return;
  } catch (e) {
    if (!isCode(e, 'EACCES')) throw e;
  }
  await openUp(dir);
  await rm(dir, { recursive: true, force: true });
}

async function openUp(dir: string): Promise<void> {
  let st;
  try {
    st = await lstat(dir);
  } catch (e) {
    if (isCode(e, 'ENOENT')) return;
    throw e;
  }
  if (!st.isDirectory()) return;
  if ((st.mode & 0o700) !== 0o700) await chmod(dir, (st.mode & 0o7777) | 0o700);
  for (const entry of await readdir(dir)) await openUp(path.join(dir, entry));
}
