/**
 * Waiting for a HEALTHCHECK status: of a detached container through its shim's events and
 * health.json (waitForBundleHealth), the one thing the engine's and the SDK's waits share.
 */
import { InvalidStateError } from '../errors.js';
import { readHealth, type HealthStatus, type ShimHealth } from './bundle.js';
import { ShimEvents } from './shim-events.js';

export interface HealthWaitOptions {
  /** The statuses that end the wait (default ['healthy']). */
  until?: HealthStatus[];
  signal?: AbortSignal;
}

const stoppedError = (id: string, until: Set<HealthStatus>) => new InvalidStateError(`container ${id} stopped before its health was ${[...until].join(' or ')}`);

/**
 * Resolves with health.json once its status is in `until`; rejects with InvalidStateError when the
 * shim's container stops first or has no healthcheck, with the signal's reason when it aborts.
 */
export async function waitForBundleHealth(bundle: string, id: string, opts: HealthWaitOptions = {}): Promise<ShimHealth> {
  const until = new Set<HealthStatus>(opts.until ?? ['healthy']);
  opts.signal?.throwIfAborted();
  // Connected before the file is read: a change between the two is still told.
  const events = await ShimEvents.connect(bundle);
  return new Promise<ShimHealth>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      events.close();
      fn();
    };
    const onAbort = () => finish(() => reject(opts.signal!.reason));
    const check = () => {
      let h: ShimHealth | undefined;
      try {
        h = readHealth(bundle);
      } catch (e) {
        return finish(() => reject(e));
      }
      if (!h) return finish(() => reject(new InvalidStateError(`container ${id} has no healthcheck`)));
      if (until.has(h.Status)) finish(() => resolve(h));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    events.on('health', check);
    events.on('error', (e) => finish(() => reject(e)));
    events.on('end', () => finish(() => reject(stoppedError(id, until))));
    events.on('state', (s) => {
      if (s.status === 'exited' || s.status === 'stopped') finish(() => reject(stoppedError(id, until)));
    });
    check();
  });
}
