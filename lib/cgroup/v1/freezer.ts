import path from 'node:path';
import { readText, writeValue } from '../cgroupfs.js';
import { waitUntil } from '../kill.js';

/** freezer.state FREEZING or FROZEN (the cgroup's own or a parent's). */
export async function frozenV1(dir: string): Promise<boolean> {
  return (await readText(path.join(dir, 'freezer.state'))).trim() !== 'THAWED';
}

/** freezer.state: FROZEN is reached through FREEZING; the write is repeated until every task is frozen. */
export async function setFrozenV1(dir: string, frozen: boolean, timeoutMs = 10_000): Promise<void> {
  const file = path.join(dir, 'freezer.state');
  const want = frozen ? 'FROZEN' : 'THAWED';
  await writeValue(file, want);
  await waitUntil(
    async () => {
      if ((await readText(file)).trim() === want) return true;
      await writeValue(file, want);
      return false;
    },
    timeoutMs,
    `${dir} to become ${want}`,
  );
}
