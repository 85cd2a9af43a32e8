/**
 * A container's status as every client shows it: the state predicates each operation checks
 * first (as youki's `container_*.rs` do), docker's exit codes, and the `Status` text (`Up 3
 * minutes`, `Exited (0) 2 hours ago`) that `nsbox ps` and `GET /containers/json` both print.
 */
import { InvalidStateError, NotModifiedError, NsboxError, ValidationError } from '../errors.js';
import { signalNumber, type SignalName } from '../runtime/signals.js';
import type { ContainerRecord } from './records.js';

export const isRunning = (r: Pick<ContainerRecord, 'state'>): boolean => r.state === 'running' || r.state === 'paused';

/** docker's exit code of a container: its own, or 128 + the signal that ended it. */
export function exitCodeOf(r: { exitCode: number | null; signal: string | null }): number {
  if (r.exitCode !== null) return r.exitCode;
  if (!r.signal) return -1;
  try {
    return 128 + signalNumber(r.signal as SignalName);
  } catch (err) {
    // ValidationError: a signal this host has no number for (a record from elsewhere): docker's 128 + unknown.
    if (!(err instanceof ValidationError)) throw err;
    return 128;
  }
}

/** docker's codes for a command that could not be run: 127 not found, 126 not executable; else undefined. */
export function execFailureCode(e: unknown): 126 | 127 | undefined {
  if (!(e instanceof NsboxError) || e.syscall !== 'execve') return undefined;
  return e.code === 'ENOENT' ? 127 : 126;
}

/**
 * docker's exit code for a failure of nsbox's own (a run or start that did not get the container's
 * code): 127 command not found, 126 cannot be invoked, else 125. The CLI exits with it; the engine
 * keeps it as the exit code of a container whose start failed.
 */
export function failureExitCode(e: unknown): 125 | 126 | 127 {
  return execFailureCode(e) ?? 125;
}

/** docker's `units.HumanDuration`. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(m / 60);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

/** "3 minutes ago", from an ISO time. */
export const timeAgo = (iso: string | undefined, now = Date.now()): string => `${humanDuration(now - (iso ? Date.parse(iso) : now))} ago`;

/**
 * docker's `Status` column; `health`: the HEALTHCHECK's status while it runs (health.ts's
 * containerStatusText reads it), shown as `Up 5 seconds (healthy)`, `(health: starting)`.
 */
export function statusText(r: Pick<ContainerRecord, 'state' | 'startedAt' | 'finishedAt' | 'exitCode' | 'signal'>, now = Date.now(), health?: 'starting' | 'healthy' | 'unhealthy'): string {
  const since = (iso: string | undefined) => humanDuration(now - (iso ? Date.parse(iso) : now));
  switch (r.state) {
    case 'created':
      return 'Created';
    case 'running':
      return `Up ${since(r.startedAt)}${health ? ` (${health === 'starting' ? 'health: starting' : health})` : ''}`;
    case 'paused':
      return `Up ${since(r.startedAt)} (Paused)`;
    case 'dead':
      return 'Dead';
    case 'exited':
      return `Exited (${exitCodeOf(r)}) ${since(r.finishedAt)} ago`;
  }
}

export type Operation = 'start' | 'stop' | 'kill' | 'pause' | 'unpause' | 'exec' | 'stats' | 'remove';

/**
 * The state check at the top of each operation, in docker's words: NotModifiedError where docker
 * answers 304 (start a running one, stop a stopped one), InvalidStateError (409) otherwise.
 */
export function checkState(op: Operation, r: ContainerRecord, opts: { force?: boolean } = {}): void {
  const running = isRunning(r);
  switch (op) {
    case 'start':
      if (running) throw new NotModifiedError(`container ${r.id} is already running`);
      return;
    case 'stop':
      if (!running) throw new NotModifiedError(`container ${r.id} is not running`);
      return;
    case 'kill':
      if (!running) throw new InvalidStateError(`Cannot kill container: ${r.id}: Container ${r.id} is not running`);
      return;
    case 'pause':
      if (r.state === 'paused') throw new InvalidStateError(`Container ${r.id} is already paused`);
      if (r.state !== 'running') throw new InvalidStateError(`Container ${r.id} is not running`);
      return;
    case 'unpause':
      if (r.state !== 'paused') throw new InvalidStateError(`Container ${r.id} is not paused`);
      return;
    case 'exec':
      if (r.state === 'paused') throw new InvalidStateError(`Container ${r.id} is paused, unpause the container before exec`);
      if (r.state !== 'running') throw new InvalidStateError(`Container ${r.id} is not running`);
      return;
    case 'stats':
      if (!running) throw new InvalidStateError(`container ${r.id} is not running`);
      return;
    case 'remove':
      if (running && !opts.force) {
        throw new InvalidStateError(`You cannot remove a ${r.state} container ${r.id}. Stop the container before attempting removal or force remove`);
      }
      return;
  }
}
