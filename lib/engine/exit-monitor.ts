/**
 * `ExitMonitor`: the daemon's bookkeeping of every container in the store, whoever started it
 * (the daemon, a CLI, an SDK user): a ContainerWatch per container, and inotify on the containers
 * directory for new ones. A container seen running that is found exited (or dead) is told as
 * 'die', once per exit, the moment its shim writes its state or its shim's pidfd says it is gone.
 * A HEALTHCHECK status change its shim tells is docker's `health_status: healthy|unhealthy`.
 */
import { teardownNetworkOf } from './networking.js';
import { readdir } from 'node:fs/promises';
import { NotFoundError } from '../errors.js';
import { isCode } from '../storage/errors.js';
import { ContainerWatch } from './container-watch.js';
import { isRunning } from './container-status.js';
import type { EngineContext } from './engine-context.js';
import { watchDir, type Unwatch } from './watch.js';

const isId = (s: string) => /^[0-9a-f]{64}$/.test(s);

interface Tracked {
  watch: ContainerWatch;
  running: boolean;
  /** The start of the last run seen (a run may begin and end between two looks). */
  startedAt: string | undefined;
  /** Known before the monitor began: its past exits are not news. */
  old: boolean;
  /** Its name and image as last read, for the attributes of its health events. */
  record: { id: string; name: string; image?: { ref: string } | undefined } | undefined;
  busy: boolean;
  again: boolean;
}

export class ExitMonitor {
  readonly #ctx: EngineContext;
  readonly #tracked = new Map<string, Tracked>();
  readonly #stopDir: Unwatch;
  #closed = false;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
    this.#stopDir = watchDir(ctx.store.layout.containersDir, (name) => {
      if (name !== null && isId(name)) this.#track(name);
    });
    void readdir(ctx.store.layout.containersDir).then(
      (names) => names.filter(isId).forEach((id) => this.#track(id, true)),
      (e: unknown) => {
        if (!isCode(e, 'ENOENT')) ctx.warn('watching the containers directory', e);
      },
    );
  }

  #track(id: string, old = false): void {
    if (this.#closed) return;
    const known = this.#tracked.get(id);
    if (known) return void this.#check(id, known);
    const onHealth = (status: string) => {
      // docker tells the settled statuses only; `starting` at each start is no event.
      if (status !== 'starting') this.#ctx.emit(`health_status: ${status}`, t.record ?? { id });
    };
    const t: Tracked = { running: false, startedAt: undefined, old, record: undefined, busy: false, again: false, watch: new ContainerWatch(this.#ctx, id, () => this.#check(id, t), { onHealth }) };
    this.#tracked.set(id, t);
    void this.#check(id, t);
  }

  async #check(id: string, t: Tracked): Promise<void> {
    if (t.busy) {
      t.again = true;
      return;
    }
    t.busy = true;
    try {
      do {
        t.again = false;
        let r;
        try {
          r = await this.#ctx.store.peekById(id);
        } catch (e) {
          // Removed, or a directory without a record yet (a create under way: its record comes next).
          if (e instanceof NotFoundError) {
            if (this.#tracked.get(id) === t && !(await this.#exists(id))) this.#drop(id, t);
            return;
          }
          throw e;
        }
        t.record = r;
        t.watch.arm(r);
        const now = isRunning(r);
        const ranSince = r.startedAt !== undefined && r.startedAt !== t.startedAt && !t.old;
        if ((t.running || ranSince) && !now && (r.state === 'exited' || r.state === 'dead')) this.#ctx.emitDie(r);
        // Its networking goes with it (a restart sets it up again with the same host ports).
        if (!now && r.network?.state?.sandboxKey) await teardownNetworkOf(this.#ctx, r).catch((e: unknown) => this.#ctx.warn(`network teardown of ${id}`, e));
        t.running = now;
        t.startedAt = r.startedAt;
        t.old = false;
      } while (t.again && !this.#closed);
    } catch (e) {
      this.#ctx.warn(`watching container ${id}`, e);
    } finally {
      t.busy = false;
    }
  }

  async #exists(id: string): Promise<boolean> {
    try {
      await readdir(this.#ctx.store.layout.container(id));
      return true;
    } catch (e) {
      if (isCode(e, 'ENOENT', 'ENOTDIR')) return false;
      throw e;
    }
  }

  #drop(id: string, t: Tracked): void {
    t.watch.close();
    this.#tracked.delete(id);
  }

  close(): void {
    this.#closed = true;
    this.#stopDir();
    for (const [id, t] of this.#tracked) this.#drop(id, t);
  }
}
