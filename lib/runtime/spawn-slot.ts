/** At most one spawn per CPU in flight (see spawnSlot). */
import { availableParallelism } from 'node:os';

// Spawns in flight at once. Each clones this (large) process and sets up a container in the kernel:
// beyond the number of CPUs that only makes the event loop wait for a CPU, without finishing sooner.
const maxSpawns = Math.max(1, Math.min(4, availableParallelism()));
let spawning = 0;
const spawnQueue: Array<() => void> = [];
export function spawnSlot(): Promise<() => void> {
  const release = () => {
    spawning--;
    const next = spawnQueue.shift();
    if (next) {
      spawning++;
      next();
    }
  };
  if (spawning < maxSpawns) {
    spawning++;
    return Promise.resolve(release);
  }
  return new Promise((resolve) => spawnQueue.push(() => resolve(release)));
}

