/**
 * A writable layer mounted `volatile` (ContainerOptions.volatileLayer): overlayfs skips its syncs,
 * leaves `WORK/work/incompat/volatile` behind, and refuses every later mount of that upper and work
 * directory while the mark is there (EINVAL), volatile or not. Without a crash of the host in
 * between nothing was lost (the data never had to leave the page cache), so a later start of the
 * same container (`restart` of a --rm container, as docker allows) drops the mark first. A mark
 * older than this boot means the layer may have lost writes: that start is refused with the reason.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NsboxError } from '../errors.js';

/** When this boot began (ms since the epoch): /proc/stat's btime. */
function bootTimeMs(): number {
  const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1];
  if (btime === undefined) throw new NsboxError('/proc/stat has no btime line', { code: 'EINVAL', path: '/proc/stat' });
  return Number(btime) * 1000;
}

/**
 * Before a volatile mount of the layer whose work directory is `work`: drops the mark an earlier
 * volatile mount of it left in this boot (the first mount finds none and costs one stat).
 * `bootMs`: when this boot began (tests), else /proc/stat's.
 */
export function readyVolatileLayer(id: string, work: string, bootMs?: number): void {
  const incompat = join(work, 'work', 'incompat');
  const mark = join(incompat, 'volatile');
  if (!existsSync(mark)) return;
  if (statSync(mark).ctimeMs < (bootMs ?? bootTimeMs())) {
    throw new NsboxError(
      `container ${id.slice(0, 12)}: its writable layer was mounted volatile (a --rm container's: no syncs) before the host restarted, so writes to it may be lost; remove the container`,
      { code: 'EINVAL', path: mark },
    );
  }
  rmSync(incompat, { recursive: true, force: true });
}
