/** Runs a spawn plan (off the event loop, a few at a time) and wraps the process it started. */
import { native, type SpawnPlan } from '../native.js';
import { ContainerProcess } from './process.js';
import { spawnSlot } from './spawn-slot.js';
import { closeQuietly, type PreparedStdio } from './stdio.js';

/** The child's ends of `stdio` are closed here, whether the spawn succeeded or not. */
export async function launch(plan: SpawnPlan, stdio: PreparedStdio): Promise<ContainerProcess> {
  const release = await spawnSlot();
  try {
    const { pid, pidfd } = await native.spawn(plan).finally(release);
    return new ContainerProcess(pid, pidfd, stdio);
  } finally {
    for (const fd of stdio.closeAfterSpawn) closeQuietly(fd);
    stdio.closeAfterSpawn = [];
  }
}
