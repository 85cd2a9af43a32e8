/**
 * `{ exec: argv }`: ready when `argv`, run in the container, exits 0. Run again with a bounded
 * backoff while it fails: a command's future success has no event.
 */
import { pollWithBackoff } from './backoff.js';
import type { WaitRun, WaitTarget } from './target.js';

export function waitForExec(target: WaitTarget, argv: string[], signal: AbortSignal): WaitRun {
  let last = 'not run yet';
  const done = pollWithBackoff(async () => {
    const code = await target.exec(argv, signal);
    last = `last exit code ${code}`;
    return code === 0;
  }, signal);
  return { done, progress: () => last };
}
