/**
 * `{ healthy: true }`: ready when the container's healthcheck says healthy. Not available yet: the
 * healthchecks (issue 17, another part) have not landed; a target that can await them gives `healthy`.
 */
import { ValidationError } from '../errors.js';
import type { WaitRun, WaitTarget } from './target.js';

export function waitForHealthy(target: WaitTarget, signal: AbortSignal): WaitRun {
  if (!target.healthy) {
    const done = Promise.reject(new ValidationError(`waitFor healthy: ${target.name} has no healthcheck that nsbox can await yet`, 'waitFor'));
    return { done, progress: () => 'no healthcheck to await' };
  }
  let state = 'not healthy yet';
  const done = target.healthy(signal).then(() => void (state = 'healthy'));
  return { done, progress: () => state };
}
