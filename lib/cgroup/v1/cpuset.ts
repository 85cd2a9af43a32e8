import path from 'node:path';
import { readText, writeValue } from '../cgroupfs.js';

/**
 * A new v1 cpuset starts with empty cpus and mems, and a task cannot join it until both are set:
 * copy them from the parent, level by level from the outermost new directory.
 */
export async function initCpusetV1(createdDirs: string[]): Promise<void> {
  for (const dir of createdDirs) {
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if ((await readText(path.join(dir, f))).trim() !== '') continue;
      await writeValue(path.join(dir, f), (await readText(path.join(path.dirname(dir), f))).trim());
    }
  }
}
