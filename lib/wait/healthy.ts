/**
 * `{ healthy: true }`: ready when the container's HEALTHCHECK says healthy, as its runner tells it
 * (the shim's health events, or an in-process container's own monitor); `unhealthy` fails the
 * wait, as testcontainers' forHealthCheck does. A container without a healthcheck is refused.
 */
import { NsboxError, ValidationError } from '../errors.js';
import type { ShimHealth } from '../runtime/bundle.js';

/** The healthcheck said unhealthy: the wait fails, with the last probe's output. */
export class UnhealthyError extends NsboxError {
  override name = 'UnhealthyError';
  constructor(name: string, h: ShimHealth) {
    const last = h.Log.at(-1);
    super(`${name} is unhealthy (${h.FailingStreak} failing in a row${last ? `; last probe exit ${last.ExitCode}: ${last.Output.trim()}` : ''})`, { code: 'ERR_UNHEALTHY' });
  }
}
import type { WaitRun, WaitTarget } from './target.js';

export function waitForHealthy(target: WaitTarget, signal: AbortSignal): WaitRun {
  if (!target.healthy) {
    const done = Promise.reject(new ValidationError(`waitFor healthy: ${target.name} has no healthcheck (give it one: the image's HEALTHCHECK or the healthcheck option)`, 'waitFor'));
    return { done, progress: () => 'no healthcheck to await' };
  }
  let state = 'not healthy yet';
  const done = target.healthy(signal).then(() => void (state = 'healthy'));
  return { done, progress: () => state };
}
