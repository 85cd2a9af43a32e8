/**
 * `Engine.wait`: docker's three wait conditions, answered when the kernel says something changed
 * (see ContainerWatch), never by reading the store on a timer.
 */
import { NotFoundError } from '../errors.js';
import { readExit, type ShimExit } from '../runtime/shim.js';
import { ContainerWatch } from './container-watch.js';
import { exitCodeOf, isRunning } from './container-status.js';
import type { EngineContext } from './engine-context.js';
import type { ContainerRecord } from './records.js';
import { removedExit } from './removed-exits.js';
import { bundleOf } from './shim-control.js';
import { until } from './watch.js';

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';
export interface WaitResult {
  exitCode: number;
  error?: string;
}

/**
 * The shim's last exit: as its events told it (`told`, for the shim of `x`), else from exit.json,
 * which a shim may have written before the record caught up.
 */
function shimExit(x: ContainerRecord, told: ShimExit | undefined): ShimExit | undefined {
  if (told) return told;
  const b = bundleOf(x);
  return b ? readExit(b) : undefined;
}

/** The last exit's time, from the shim while it may know a newer one than the record. */
function exitTime(x: ContainerRecord, told?: ShimExit): string | undefined {
  const t = shimExit(x, told)?.finishedAt || x.finishedAt;
  return t ? new Date(t).toISOString() : undefined;
}

function result(x: ContainerRecord, told?: ShimExit): WaitResult {
  const e = shimExit(x, told);
  const status = isRunning(x) && e ? { exitCode: e.exitCode, signal: e.signal } : x;
  // A container that never ran has nothing to report: 0, as docker answers.
  const exitCode = x.state === 'created' && x.exitCode === null ? 0 : exitCodeOf(status);
  return { exitCode, ...(x.error ? { error: x.error } : {}) };
}

/**
 * Until the container is not running (`not-running`, the default), has exited once more
 * (`next-exit`), or is removed (`removed`). Resolves with docker's exit code; `signal` gives up.
 */
export async function waitContainer(ctx: EngineContext, ref: string, opts: { condition?: WaitCondition; signal?: AbortSignal } = {}): Promise<WaitResult> {
  const condition = opts.condition ?? 'not-running';
  // Taken before anything is awaited: an exit after this call is the next one, even when it
  // comes before the record is first read (a start racing this wait).
  const called = Date.now();
  let last = await ctx.store.get(ref);
  const id = last.id;
  const firstExit = exitTime(last);
  const firstRemovalError = last.removalError;
  let watch: ContainerWatch | undefined;
  // The last exit seen: a removal takes the bundle (and exit.json) with the record.
  let exited = isRunning(last) ? undefined : result(last);
  const check = async (): Promise<WaitResult | undefined> => {
    let r: ContainerRecord;
    try {
      r = await ctx.store.peekById(id);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      // The final status its removal left (read under the store's lock) first: the last one this
      // wait saw may be older (a created container that then ran, exited and was removed between
      // two of its reads, as a quick --rm removal may be), and it would answer 0. A removal that
      // left no exit (a record still saying running) says less than an exit this wait saw.
      const found = await removedExit(ctx.store.layout.containersDir, id);
      const final = found && found.state !== 'running' && found.state !== 'paused' ? found : undefined;
      if (!final && exited) return exited;
      const left = final ?? found;
      if (!left) return result(last, watch?.lastExit);
      const { error: _, ...rest } = last;
      return result({ ...rest, state: left.state, exitCode: left.exitCode, signal: left.signal, ...(left.error !== undefined ? { error: left.error } : {}) });
    }
    last = r;
    // Its --rm removal failed since (docker's removal error): no removal is coming.
    if (condition === 'removed' && r.removalError !== undefined && r.removalError !== firstRemovalError && !isRunning(r)) return result(r);
    // Armed first: the watch's exit is then that of r's own shim.
    watch?.arm(r);
    const told = watch?.lastExit;
    if (!isRunning(r) || shimExit(r, told)) exited = result(r, told);
    if (condition === 'not-running' && !isRunning(r)) return result(r, told);
    const t = exitTime(r, told);
    if (condition === 'next-exit' && t !== undefined && (t !== firstExit || Date.parse(t) >= called)) return result(r, told);
    return undefined;
  };
  return until(check, [(wake) => {
    watch = new ContainerWatch(ctx, id, wake);
    watch.arm(last);
    return () => watch!.close();
  }], opts.signal);
}
