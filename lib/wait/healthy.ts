/**
 * `{ healthy: true }`: ready when the container's HEALTHCHECK says healthy, told by the shim's
 * health events (an engine container: engine-target.ts); `unhealthy` fails the wait. An in-process
 * SDK container has no healthcheck runner: the wait is refused for it.
 */
import { ValidationError } from '../errors.js';
import type { WaitRun, WaitTarget } from './target.js';

export function waitForHealthy(target: WaitTarget, signal: AbortSignal): WaitRun {
  if (!target.healthy) {
    const done = Promise.reject(new ValidationError(`waitFor healthy: ${target.name} is an in-process container: healthchecks run only under nsbox-shim (an engine container); wait for port, log, http or exec instead`, 'waitFor'));
    return { done, progress: () => 'no healthcheck to await' };
  }
  let state = 'not healthy yet';
  const done = target.healthy(signal).then(() => void (state = 'healthy'));
  return { done, progress: () => state };
}
