/**
 * `ContainerWatch`: wakes its owner whenever anything about one container may have changed, from
 * what the kernel and the shim tell: its record rewritten or removed (inotify on its directory and
 * on the containers directory), its shim's events (events.sock: state changes and exits, each with
 * its exit code, as they happen), its shim's files while no events socket answers (inotify on the
 * bundle: exit.json, state.json and container.log are written there, the first two by temp +
 * rename; an older shim has no events.sock), and its supervisor's exit (a pidfd of the shim, opened
 * from the recorded pid and start time, which also covers a shim killed -9 that told nothing). The
 * owner reads the record again on each wake-up and calls `arm` with it, so the watch follows the
 * container from one start (one shim) to the next.
 */
import { join } from 'node:path';
import { BundleFile, type HealthStatus, type ShimExit } from '../runtime/bundle.js';
import { ShimEvents } from '../runtime/shim-events.js';
import { bundlePath, type EngineContext } from './engine-context.js';
import type { ContainerRecord, Supervisor } from './records.js';
import { onProcessExit, watchDir, type Unwatch } from './watch.js';

export class ContainerWatch {
  readonly #wake: () => void;
  readonly #stops: Unwatch[] = [];
  #bundle: { dir: string; stop: Unwatch } | undefined;
  #sup: { key: string; stop: Unwatch } | undefined;
  /** The events of the running shim; `live` while its socket is connected. */
  #events: { key: string; live: boolean; stop: Unwatch } | undefined;
  #lastExit: ShimExit | undefined;
  #closed = false;

  readonly #onHealth: ((status: HealthStatus) => void) | undefined;

  /** `onHealth`: each HEALTHCHECK status change the running shim tells. */
  constructor(ctx: EngineContext, id: string, wake: () => void, opts: { log?: boolean; onHealth?: (status: HealthStatus) => void } = {}) {
    this.#onHealth = opts.onHealth;
    this.#wake = () => {
      if (!this.#closed) wake();
    };
    // shim.pid comes and goes too, but the shim's exit is the pidfd's to tell.
    const files = new Set<string>([BundleFile.exit, BundleFile.state, ...(opts.log ? [BundleFile.log] : [])]);
    this.#stops.push(watchDir(ctx.store.layout.containersDir, (name) => (name === id || name === null) && this.#wake()));
    // This process's own removal of it, told at once (the inotify event above comes once the event loop is free).
    this.#stops.push(ctx.store.onRemoved(id, () => this.#wake()));
    this.#stops.push(watchDir(ctx.store.layout.container(id), (name) => (name === 'record.json' || name === null) && this.#wake()));
    this.#files = files;
    // The bundle of this engine's starts is known before the first record read: watched from now.
    this.#watchBundle(bundlePath(ctx, id));
  }

  readonly #files: Set<string>;

  #watchBundle(dir: string): void {
    if (this.#bundle?.dir === dir) return;
    this.#bundle?.stop();
    this.#bundle = { dir, stop: watchDir(dir, (name) => this.#onBundleFile(name)) };
  }

  #onBundleFile(name: string | null): void {
    if (name !== null && !this.#files.has(name)) return;
    // exit.json and state.json are told by the shim's events (once each, the exit code with it)
    // while they come; the files' inotify is the fallback.
    if (this.#events?.live && (name === BundleFile.exit || name === BundleFile.state)) return;
    this.#wake();
  }

  /** The last exit the shim's events told (undefined until one comes; reset at each new shim). */
  get lastExit(): ShimExit | undefined {
    return this.#lastExit;
  }

  #listen(bundle: string, key: string): void {
    const entry = { key, live: false, stop: () => {} };
    this.#events = entry;
    let stopped = false;
    entry.stop = () => {
      stopped = true;
      entry.live = false;
    };
    void ShimEvents.connect(bundle).then(
      (events) => {
        if (stopped) return events.close();
        entry.stop = () => {
          stopped = true;
          entry.live = false;
          events.close();
        };
        entry.live = true;
        events.on('exit', ({ type: _, ...exit }) => {
          this.#lastExit = exit;
          this.#wake();
        });
        events.on('health', (h) => {
          if (!this.#closed) this.#onHealth?.(h.status);
        });
        // The first one is the state at connect time: whatever changed before it is read then.
        events.on('state', () => this.#wake());
        // A frame it cannot read: the files and the pidfd still tell.
        events.on('error', () => this.#wake());
        events.on('end', () => {
          entry.live = false;
          this.#wake();
        });
      },
      // No events socket (a shim from before it, or one gone meanwhile): the files and the pidfd tell.
      () => this.#wake(),
    );
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
    this.#events?.stop();
    this.#events = undefined;
    if (!key || !sup) return;
    // The pidfd is kept beside the events: it alone tells of a shim killed -9.
    this.#sup = { key, stop: onProcessExit(sup.pid, sup.pidStartTime, this.#wake) };
    if (sup.kind === 'shim') {
      this.#lastExit = undefined;
      this.#listen(sup.bundle, key);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#stops) s();
    this.#bundle?.stop();
    this.#sup?.stop();
    this.#events?.stop();
  }
}

/** The file the shim keeps the container's output in (docker's json-file log). */
export const logFileOf = (ctx: EngineContext, r: ContainerRecord): string =>
  join(r.supervisor?.kind === 'shim' ? r.supervisor.bundle : bundlePath(ctx, r.id), BundleFile.log);
