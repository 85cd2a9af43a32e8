/**
 * Removing a container: its shim and cgroup, its record and directory (writable layer, bundle,
 * logs), and with `volumes` its anonymous volumes. Removals of one container in this process run
 * one at a time; across processes the store's lock decides, and the record check under it makes a
 * second removal a NotFoundError (which the auto-removal takes as done).
 */
import { OwnerIndex, ownerOf } from './owners.js';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { Cgroup } from '../cgroup/cgroup.js';
import { recordedCgroupPaths } from '../cgroup/recorded-paths.js';
import { cgroupLayout } from '../runtime/run-root.js';
import { InvalidStateError, NotFoundError, NsboxError } from '../errors.js';
import { checkState, isRunning } from './container-status.js';
import { bundlePath, type EngineContext } from './engine-context.js';
import { stopRunning } from './lifecycle.js';
import type { ContainerRecord } from './records.js';
import type { ExitStatus } from './removed-exits.js';
import { bundleOf, cgroupOf, liveShim, removeCgroupOf, shimExit, stopShim } from './shim-control.js';
import { Volumes } from './volumes.js';
import { removeNetworkOf } from './networking.js';

const inFlight = new WeakMap<EngineContext, Map<string, Promise<void>>>();

/**
 * Removes the container; a running one is refused (InvalidStateError, docker's words) unless
 * `force`, which kills it first.
 */
export async function removeContainer(ctx: EngineContext, ref: string, opts: { force?: boolean; volumes?: boolean; exit?: ExitStatus } = {}): Promise<void> {
  // Not written back: the record is about to go (and the store's removal reconciles it again under its lock).
  const r = await ctx.store.peek(ref);
  checkState('remove', r, opts);
  await removeKnown(ctx, r, opts);
}

/** The removal of `r` as read (or as its start recorded it): one at a time per container in this process. */
async function removeKnown(ctx: EngineContext, r: ContainerRecord, opts: { volumes?: boolean; exit?: ExitStatus }): Promise<void> {
  let running = inFlight.get(ctx);
  if (!running) inFlight.set(ctx, (running = new Map()));
  const earlier = running.get(r.id);
  if (earlier) {
    // The same removal, already under way (a DELETE racing the daemon's own --rm): done when it is.
    await earlier;
    return;
  }
  const p = removeNow(ctx, r, opts).finally(() => running.delete(r.id));
  running.set(r.id, p);
  await p;
}

/**
 * removeContainer, for the --rm removal: a container removed meanwhile (by anyone) is done; a
 * failure is kept in the record, as docker's daemon keeps it, so that whoever waits for the
 * removal (docker run --rm) is answered with it instead of waiting for a removal that won't come.
 * `started`: the record as its start committed it, for the removal once its shim is done with it
 * (lifecycle.ts): nothing of it that the removal uses changes while it runs (the store's removal
 * reads the record again under its lock, exit included), so it is not read first. Taken as not
 * running: its shim is done, so there is nothing to stop (a container a shim killed -9 left
 * behind goes with its cgroup).
 */
export async function autoRemove(ctx: EngineContext, id: string, exit?: ExitStatus, started?: ContainerRecord): Promise<void> {
  try {
    const opts = { force: true, volumes: true, ...(exit ? { exit } : {}) };
    if (started?.id === id) await removeKnown(ctx, { ...started, state: 'exited' }, opts);
    else await removeContainer(ctx, id, opts);
  } catch (e) {
    if (e instanceof NotFoundError) return;
    await keepRemovalError(ctx, id, e);
    throw e;
  } finally {
    ctx.claims.release(id);
  }
}

async function keepRemovalError(ctx: EngineContext, id: string, e: unknown): Promise<void> {
  const message = e instanceof Error ? e.message : String(e);
  try {
    await ctx.store.update(id, (x) => {
      x.error = message;
      x.removalError = message;
    });
  } catch (u) {
    // Removed meanwhile after all: nobody is left waiting.
    if (!(u instanceof NotFoundError)) ctx.warn(`recording the failed removal of container ${id}`, u);
  }
}

async function removeNow(ctx: EngineContext, r: ContainerRecord, opts: { volumes?: boolean; exit?: ExitStatus }): Promise<void> {
  // A cgroup being made ahead of a start that will not come: made first, then found (cgroup.json) and removed below.
  await ctx.prepared?.drop(r.id);
  const bundles = new Set([bundlePath(ctx, r.id), ...(bundleOf(r) ? [bundleOf(r)!] : [])]);
  // Read beside the stop (cgroup.json is written before a shim starts, and goes with the directory).
  const found = Promise.all([...bundles].map((b) => cgroupOf(b)));
  found.catch(() => {
    // Awaited below, once the container is stopped: a rejection before then is not unhandled.
  });
  // A shim that restarts nothing is done with its container once it has recorded the exit: the
  // removal goes on from there, and only the directory's deletion waits for the shim to be gone
  // (it lets its clients go, then removes its sockets and pid file from the bundle). Not for one
  // that holds published host ports: they are free only once it is gone.
  const sup = r.supervisor;
  const holdsPorts = (r.network?.options.ports.length ?? 0) > 0 || r.network?.options.publishAll === true;
  const early = isRunning(r) && sup?.kind === 'shim' && r.restartPolicy.name === 'no' && !holdsPorts && liveShim(sup.bundle, sup) !== undefined ? sup : undefined;
  const shimGone = early ? shimExit(early.pid, 5000, { startTime: early.pidStartTime }) : undefined;
  if (isRunning(r)) await stopRunning(ctx, r, 0, 'SIGKILL', { exitRecorded: early !== undefined });
  // SIGKILL at once (a timeout of 0): the shim's stop signal first, then ours.
  for (const b of bundles) if (b !== early?.bundle && liveShim(b, r.supervisor)) await stopShim(b, 0, r.supervisor);
  // Its networking before its record: a crash between leaves the record to find it by (repair finds the rest).
  if (r.network) await removeNetworkOf(ctx, r);
  // The record and the cgroups go side by side: whoever waits for the removal (docker run --rm)
  // is told when the record is gone; this removal is done when both are. The directory is deleted
  // after (once its shim is gone): nothing finds it any more, and the answer need not wait for it.
  // The record's removal does not wait for the cgroups to be found: cgroup.json was read as `found`
  // began, and the rest of the lookup is in the cgroup file systems, not in the directory.
  const record = ctx.store.removeRecord(r.id, { force: true, ...(opts.exit ? { exit: opts.exit } : {}), ...(shimGone ? { deleteAfter: shimGone } : {}) }).catch((e: unknown) => {
    // Removed meanwhile by its own run (a foreground run --rm reaps and removes it the moment
    // this removal's kill ends it): it was there when asked, so this removal is done; the rest
    // (its owner note, the destroy event) is that removal's.
    if (e instanceof NotFoundError) return undefined;
    throw e;
  });
  const [removed] = await Promise.all([record, removeCgroupsOf(ctx, r, found)]);
  if (!removed) return;
  removed.deleted.catch((e: unknown) => ctx.warn(`deleting the directory of container ${r.id}`, e));
  ctx.claims.release(r.id);
  const owner = ownerOf(r.options.labels);
  if (owner) new OwnerIndex(ctx.root).forget('container', r.id, owner);
  // Containers of an earlier version kept their bundle under the run root, outside the store.
  for (const b of bundles) if (!b.startsWith(`${ctx.store.layout.container(r.id)}/`)) rmSync(dirname(b), { recursive: true, force: true });
  // Its exit first, as docker's (once: the daemon's exit monitor may have told it already; a
  // removal that went on from the recorded exit may be quicker than the monitor's read of it).
  if (early && (removed.record.state === 'exited' || removed.record.state === 'dead')) ctx.emitDie(removed.record);
  ctx.emit('destroy', r);
  // rm -v: its anonymous volumes (named ones stay, as docker's).
  if (opts.volumes && r.volumes.some((v) => v.anonymous)) {
    const inUse = await volumesInUse(ctx);
    const volumes = new Volumes(ctx.root);
    for (const v of r.volumes) if (v.anonymous && !inUse.has(v.name)) volumes.remove(v.name);
  }
}

/** The container's cgroups (those its bundle recorded, `found`; else its record's, else by name), removed. */
async function removeCgroupsOf(ctx: EngineContext, r: ContainerRecord, found: Promise<Array<Cgroup | undefined>>): Promise<void> {
  const cgroups = (await found).filter((cg): cg is Cgroup => cg !== undefined);
  let recordedGone = false;
  const written = r.supervisor?.kind === 'process' ? r.supervisor.cgroupPaths : undefined;
  // Checked as the owner reap checks its note's: only a cgroup named for this container, in its hierarchy.
  const recorded = written && Object.keys(written).length ? recordedCgroupPaths(written, await cgroupLayout(), r.id) : undefined;
  if (written && Object.keys(written).length && !recorded) ctx.warn(`removing container ${r.id}`, new NsboxError(`its record names cgroups that are not its own (${Object.values(written).join(', ')}): looked up by name instead`));
  if (cgroups.length === 0 && recorded) {
    // A foreground run's: where that process made it (a relative parent lies beneath its own cgroup, not ours).
    const made = await Cgroup.open(recorded).catch((e: unknown) => {
      if (e instanceof NotFoundError || (e instanceof NsboxError && e.code === 'ENOENT')) return undefined;
      throw e;
    });
    if (made) cgroups.push(made);
    else recordedGone = true;
  }
  if (cgroups.length === 0 && !recordedGone) {
    // A start cut short (kill -9) may have made the cgroup before writing cgroup.json: find it by name.
    const byName = await Cgroup.open(r.id, r.options.cgroupParent !== undefined ? { parent: r.options.cgroupParent } : {}).catch((e: unknown) => {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    });
    if (byName) cgroups.push(byName);
  }
  await Promise.all(cgroups.map(removeEmptyCgroup));
}

/** The cgroup of a container whose shim is gone: usually empty, so removed at once; else killed first. */
async function removeEmptyCgroup(cg: Cgroup): Promise<void> {
  try {
    await cg.remove();
  } catch (e) {
    // Processes left (a shim killed -9 leaves its container): kill them, then remove.
    if (!(e instanceof InvalidStateError)) throw e;
    await removeCgroupOf(cg);
  }
}

export async function volumesInUse(ctx: EngineContext): Promise<Set<string>> {
  return new Set((await ctx.store.list({ all: true })).flatMap((x) => x.volumes.map((v) => v.name)));
}

/** docker container prune: every container that is not running; one that cannot be removed is reported. */
export async function pruneContainers(ctx: EngineContext): Promise<{ containers: string[]; failed: Array<{ id: string; error: string }> }> {
  const out = { containers: [] as string[], failed: [] as Array<{ id: string; error: string }> };
  for (const r of await ctx.store.list({ all: true })) {
    if (isRunning(r)) continue;
    try {
      await removeContainer(ctx, r.id);
      out.containers.push(r.id);
    } catch (e) {
      // Removed meanwhile by someone else: not this prune's, not a failure either.
      if (e instanceof NotFoundError) continue;
      out.failed.push({ id: r.id, error: (e as Error).message });
    }
  }
  return out;
}
