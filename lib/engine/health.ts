/**
 * A container's HEALTHCHECK state as the engine shows it: read from the health.json its shim keeps
 * (cpp/shim/health.cc), the status in the `Status` text (`Up 5 seconds (healthy)`) that `nsbox ps`
 * and `GET /containers/json` both print, and waiting for a status through the shim's events.
 */
import { InvalidStateError } from '../errors.js';
import { readHealth, type HealthStatus, type ShimHealth } from '../runtime/bundle.js';
import { ShimEvents } from '../runtime/shim-events.js';
import { isRunning, statusText } from './container-status.js';
import type { ContainerRecordState, Supervisor } from './records.js';

type HealthSubject = { id: string; state: ContainerRecordState; supervisor?: Supervisor | undefined };

const bundleOfSubject = (r: HealthSubject) => (r.supervisor?.kind === 'shim' ? r.supervisor.bundle : undefined);

/** docker's State.Health; undefined for a container without a healthcheck or never started with one. */
export function healthOf(r: HealthSubject): ShimHealth | undefined {
  const bundle = bundleOfSubject(r);
  return bundle ? readHealth(bundle) : undefined;
}

/** The status `ps` shows: only while the container runs (not paused), as docker's State.String(). */
export function healthStatusOf(r: HealthSubject): HealthStatus | undefined {
  return r.state === 'running' ? healthOf(r)?.Status : undefined;
}

/** docker's `Status` column, health included: what the CLI and the API both print. */
export function containerStatusText(r: HealthSubject & Parameters<typeof statusText>[0], now = Date.now()): string {
  return statusText(r, now, healthStatusOf(r));
}

/** docker's `health=` filter of ps: starting, healthy, unhealthy, or none (no healthcheck). */
export function matchesHealthFilter(r: HealthSubject, wanted: string): boolean {
  return (healthStatusOf(r) ?? 'none') === wanted;
}

/**
 * Resolves with the health once its status is in `until` (default: healthy), as told by the shim's
 * events; rejects with InvalidStateError when the container is not running or stops first, or has
 * no healthcheck, and with the signal's reason when `signal` aborts.
 */
export async function waitForHealth(r: HealthSubject, opts: { until?: HealthStatus[]; signal?: AbortSignal } = {}): Promise<ShimHealth> {
  const until = new Set(opts.until ?? ['healthy']);
  const bundle = bundleOfSubject(r);
  if (!bundle || !isRunning(r)) throw new InvalidStateError(`container ${r.id} is not running`);
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
      if (!h) return finish(() => reject(new InvalidStateError(`container ${r.id} has no healthcheck`)));
      if (until.has(h.Status)) finish(() => resolve(h));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    events.on('health', check);
    events.on('error', (e) => finish(() => reject(e)));
    events.on('end', () => finish(() => reject(new InvalidStateError(`container ${r.id} stopped before its health was ${[...until].join(' or ')}`))));
    events.on('state', (s) => {
      if (s.status === 'exited' || s.status === 'stopped') finish(() => reject(new InvalidStateError(`container ${r.id} stopped before its health was ${[...until].join(' or ')}`)));
    });
    check();
  });
}
