/**
 * `{ log: /re/ | 'text', times? }`: ready when the current start's output has had `times` (1)
 * lines matching. Event-driven: lines come from the log stream as they are printed; output of an
 * earlier start of the container never counts (testcontainers-node's #446).
 */
import type { WaitRun, WaitTarget } from './target.js';

export function waitForLog(target: WaitTarget, pattern: RegExp | string, times: number, signal: AbortSignal): WaitRun {
  let seen = 0;
  const matches = (line: string) => (typeof pattern === 'string' ? line.includes(pattern) : (pattern.lastIndex = 0, pattern.test(line)));
  const done = (async () => {
    for await (const line of target.logLines(signal)) {
      if (matches(line) && ++seen >= times) return;
    }
    signal.throwIfAborted();
    // The output ended (the container's exit says why, and wins the race in wait-for.ts).
    await new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
  })();
  return { done, progress: () => `${seen} of ${times} seen` };
}
