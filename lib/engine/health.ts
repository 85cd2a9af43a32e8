/**
 * A container's HEALTHCHECK state as the engine shows it: read from the health.json its shim keeps
 * (cpp/shim/health.cc), the status in the `Status` text (`Up 5 seconds (healthy)`) that `nsbox ps`
 * and `GET /containers/json` both print, and waiting for a status through the shim's events.
 */
import { InvalidStateError } from '../errors.js';
import { readHealth, type HealthStatus, type ShimHealth } from '../runtime/bundle.js';
import { waitForBundleHealth, type HealthWaitOptions } from '../runtime/health-wait.js';
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
export async function waitForHealth(r: HealthSubject, opts: HealthWaitOptions = {}): Promise<ShimHealth> {
  const bundle = bundleOfSubject(r);
  if (!bundle || !isRunning(r)) throw new InvalidStateError(`container ${r.id} is not running`);
  return waitForBundleHealth(bundle, r.id, opts);
}
