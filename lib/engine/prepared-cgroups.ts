/**
 * Cgroups made ahead of a start: a long-lived caller (the API server) makes a created container's
 * cgroup in the time between the create's answer and the start's request (the docker CLI attaches
 * and waits between them, while the server idles), so that the start does not wait for its
 * directories (ten v1 hierarchies, each mkdir a trip through the thread pool: 2–8 ms of a start
 * here, more under load). It is made as a start makes it, with the bundle's cgroup.json naming it,
 * so whatever finds the container before its start (a start or removal in any process, which
 * reads cgroup.json) finds it as it finds the cgroup of a start cut short. A start takes it only if
 * the record is still the one it was made from (a compare, as the store's commitStaged); else the
 * start removes it through cgroup.json and makes its own, as before. A removal waits for one being
 * made (drop) and then removes it with the rest; `close` removes those no start took.
 */
import { existsSync, unlinkSync } from 'node:fs';
import type { Cgroup } from '../cgroup/cgroup.js';
import { ignoreNotFound } from '../errors.js';
import { bundlePath as bundleFile } from '../runtime/bundle.js';
import { Container } from '../runtime/container.js';
import { bundlePath, type EngineContext } from './engine-context.js';
import { optionsOf } from './lifecycle.js';
import type { ContainerRecord } from './records.js';

interface Made {
  /** The record it was made from, as JSON. */
  base: string;
  cgroup: Promise<Cgroup | undefined>;
}

export class PreparedCgroups {
  readonly #ctx: EngineContext;
  readonly #made = new Map<string, Made>();
  #closed = false;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
  }

  /**
   * Makes the cgroup of the created container `r` (its record as the create wrote it) for its
   * start, in the background. Dropped on any error (the start then makes its own and reports what fails).
   */
  prepare(r: ContainerRecord): void {
    const id = r.id;
    // Only a container that has never run: one that has left its cgroup.json is its start's to clean up.
    if (this.#closed || this.#made.has(id) || r.state !== 'created' || r.supervisor) return;
    const made: Made = { base: JSON.stringify(r), cgroup: Promise.resolve(undefined) };
    made.cgroup = this.#make(r).catch((e: unknown) => {
      // Its start makes the cgroup itself, as without this, and says what fails then.
      this.#ctx.warn(`making the cgroup of ${id} ahead of its start`, e);
      return undefined;
    });
    this.#made.set(id, made);
  }

  async #make(r: ContainerRecord): Promise<Cgroup | undefined> {
    const bundle = bundlePath(this.#ctx, r.id);
    const cg = await Container.makeCgroupAhead(optionsOf(r), r.id, bundle);
    // Removed meanwhile (by another process, which may have looked for the cgroup before it was there).
    if (cg && !existsSync(this.#ctx.store.recordFile(r.id))) {
      await forget(cg, bundle);
      return undefined;
    }
    return cg;
  }

  /**
   * The cgroup made for `r`'s start, once made, if `r` is the record it was made from (undefined
   * otherwise, or when none was made). Taken: from here on it is the start's.
   */
  take(r: ContainerRecord): Promise<Cgroup | undefined> | undefined {
    const made = this.#made.get(r.id);
    if (!made) return undefined;
    this.#made.delete(r.id);
    // Its directories still there too (an empty cgroup is what a prune of leftovers removes).
    return made.cgroup.then((cg) => (cg && made.base === JSON.stringify(r) && Object.values(cg.paths).every((d) => existsSync(d)) ? cg : undefined));
  }

  /** Forgets the one of `id` (a removal), resolved once it is made: its cgroup.json names it then. */
  async drop(id: string): Promise<void> {
    const made = this.#made.get(id);
    if (!made) return;
    this.#made.delete(id);
    await made.cgroup;
  }

  /** Makes no more, and removes the cgroups made that no start took (their containers never ran). */
  async close(): Promise<void> {
    this.#closed = true;
    const left = [...this.#made];
    this.#made.clear();
    await Promise.all(
      left.map(async ([id, made]) => {
        const cg = await made.cgroup;
        if (!cg) return;
        // Started or changed by another process meanwhile: its cgroup may be this one's, by name.
        const now = await this.#ctx.store.peekById(id).catch(ignoreNotFound);
        if (now && JSON.stringify(now) !== made.base) return;
        await forget(cg, bundlePath(this.#ctx, id)).catch((e: unknown) => this.#ctx.warn(`removing the cgroup made ahead for ${id}`, e));
      }),
    );
  }
}

/** Removes a cgroup made ahead (empty: one with processes is a start's, and stays) and its cgroup.json. */
async function forget(cg: Cgroup, bundle: string): Promise<void> {
  await cg.remove();
  try {
    unlinkSync(bundleFile(bundle, 'cgroup'));
  } catch (e) {
    // Gone with the container's directory (removed meanwhile): nothing names the cgroup any more.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
