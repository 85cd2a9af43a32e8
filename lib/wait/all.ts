/** `{ all: [...] }`: ready when every strategy in it is (they run side by side). */
import type { WaitRun } from './target.js';

export function waitForAll(runs: Array<{ what: string; run: WaitRun }>): WaitRun {
  const done = new Set<number>();
  return {
    done: Promise.all(runs.map((r, i) => r.run.done.then(() => void done.add(i)))).then(() => undefined),
    progress: () => runs.map((r, i) => `${r.what}: ${done.has(i) ? 'ready' : r.run.progress()}`).join('; '),
  };
}
