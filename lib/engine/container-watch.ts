/**
 * `ContainerWatch`: wakes its owner whenever anything about one container may have changed, from
 * what the kernel tells: its record rewritten or removed (inotify on its directory and on the
 * containers directory), its shim's files (inotify on the bundle: exit.json, state.json and
 * container.log are written there, the first two by temp + rename), and its supervisor's exit (a
 * pidfd of the shim, opened from the recorded pid and start time, which also covers a shim killed
 * -9 that wrote nothing). The owner reads the record again on each wake-up and calls `arm` with
 * it, so the watch follows the container from one start (one shim) to the next.
 */
import { join } from 'node:path';
import { BundleFile } from '../runtime/bundle.js';
import { bundlePath, type EngineContext } from './engine-context.js';
import type { ContainerRecord, Supervisor } from './records.js';
import { onProcessExit, watchDir, type Unwatch } from './watch.js';

export class ContainerWatch {
  readonly #wake: () => void;
  readonly #stops: Unwatch[] = [];
  #bundle: { dir: string; stop: Unwatch } | undefined;
  #sup: { key: string; stop: Unwatch } | undefined;
  #closed = false;

  constructor(ctx: EngineContext, id: string, wake: () => void, opts: { log?: boolean } = {}) {
    this.#wake = () => {
      if (!this.#closed) wake();
    };
    // shim.pid comes and goes too, but the shim's exit is the pidfd's to tell.
    const files = new Set<string>([BundleFile.exit, BundleFile.state, ...(opts.log ? [BundleFile.log] : [])]);
    this.#stops.push(watchDir(ctx.store.layout.containersDir, (name) => (name === id || name === null) && this.#wake()));
    this.#stops.push(watchDir(ctx.store.layout.container(id), (name) => (name === 'record.json' || name === null) && this.#wake()));
    this.#files = files;
    // The bundle of this engine's starts is known before the first record read: watched from now.
    this.#watchBundle(bundlePath(ctx, id));
  }

  readonly #files: Set<string>;

  #watchBundle(dir: string): void {
    if (this.#bundle?.dir === dir) return;
    this.#bundle?.stop();
    this.#bundle = { dir, stop: watchDir(dir, (name) => (name === null || this.#files.has(name)) && this.#wake()) };
  }

  /** Follows `r`'s current supervisor (its bundle and its process). */
  arm(r: ContainerRecord | undefined): void {
    if (this.#closed) return;
    const sup: Supervisor | undefined = r?.supervisor;
    if (sup?.kind === 'shim') this.#watchBundle(sup.bundle);
    const key = sup && (r?.state === 'running' || r?.state === 'paused') ? `${sup.pid}:${sup.pidStartTime ?? ''}` : '';
    if (this.#sup?.key === key) return;
    this.#sup?.stop();
    this.#sup = undefined;
    if (key && sup) this.#sup = { key, stop: onProcessExit(sup.pid, sup.pidStartTime, this.#wake) };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#stops) s();
    this.#bundle?.stop();
    this.#sup?.stop();
  }
}

/** The file the shim keeps the container's output in (docker's json-file log). */
export const logFileOf = (ctx: EngineContext, r: ContainerRecord): string =>
  join(r.supervisor?.kind === 'shim' ? r.supervisor.bundle : bundlePath(ctx, r.id), BundleFile.log);
