/**
 * At every engine open (SDK, CLI, `nsbox serve`): the objects of owners that are gone (owners.ts)
 * are removed, running containers stopped first. Engine containers go as `rm -f -v` takes them,
 * an in-process SDK container as its own remove() would have (cgroup, networking, run directory),
 * then networks and volumes. One reaper at a time (an flock); an open with no dead owner costs a
 * readdir and a /proc read per owner.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Cgroup } from '../cgroup/cgroup.js';
import { recordedCgroupPaths } from '../cgroup/recorded-paths.js';
import { NotFoundError, isCode } from '../errors.js';
import { teardownContainerNetwork } from '../network/container-network.js';
import { NetworkStateSchema } from '../network/schemas.js';
import { cgroupLayout } from '../runtime/run-root.js';
import { withLock } from '../storage/atomic.js';
import type { EngineContext } from './engine-context.js';
import { networkStore, repairNetworkingOf } from './networking.js';
import { OWNER_LABEL, OwnerIndex, ownerAlive, ownerKey, type OwnedNote, type Owner } from './owners.js';
import { removeContainer } from './removal.js';
import { removeVolume } from './volume-ops.js';
import { Volumes } from './volumes.js';

export interface Reaped {
  owners: string[];
  containers: string[];
  networks: string[];
  volumes: string[];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
/** The label says the object is still the one noted (a name may have been taken again since). */
const ownedBy = (labels: Record<string, string> | undefined, o: Owner) => labels?.[OWNER_LABEL] === ownerKey(o);

/** An in-process SDK container whose process died: what its remove() would have undone. */
async function reapInProcess(ctx: EngineContext, id: string, data: Record<string, unknown>): Promise<boolean> {
  const runRoot = str(data.runRoot);
  const parent = str(data.cgroupParent);
  // Its processes died with their parent (PDEATHSIG); a cgroup kill ends any that escaped it.
  // By the directories its note recorded (a relative parent lies beneath the owner's own cgroup in
  // each hierarchy, not this process's); by name for a note written before its cgroup was made.
  const layout = await cgroupLayout();
  const paths = recordedCgroupPaths(data.cgroupPaths, layout);
  const cg = await (paths ? Cgroup.open(paths, { layout }) : Cgroup.open(id, { layout, ...(parent !== undefined ? { parent } : {}) })).catch((e: unknown) => {
    // never made (no privileges, not started) or gone
    if (e instanceof NotFoundError || isCode(e, 'EACCES', 'EPERM')) return undefined;
    throw e;
  });
  await cg?.remove({ force: true });
  let repair = false;
  if (data.network !== undefined && runRoot) {
    const state = NetworkStateSchema.safeParse(data.network);
    // Killed during its network setup: the engine's repair finds what was made by id.
    if (!state.success) repair = true;
    else await teardownContainerNetwork({ id, runRoot, ...(str(data.name) ? { name: str(data.name)! } : {}) }, state.data, await networkStore(ctx.root));
  }
  if (runRoot) {
    rmSync(join(runRoot, id), { recursive: true, force: true });
    rmSync(join(runRoot, 'network', id), { recursive: true, force: true });
  }
  return repair;
}

async function reapNote(ctx: EngineContext, o: Owner, n: OwnedNote, out: Reaped): Promise<boolean> {
  if (n.kind === 'container') {
    const r = await ctx.store.get(n.name).catch((e: unknown) => {
      // removed by its owner or by hand
      if (e instanceof NotFoundError) return undefined;
      throw e;
    });
    // A foreground run's container (foreground.ts) carries no label: its id, never reused, is enough.
    if (r && r.id === n.name && (ownedBy(r.options.labels, o) || n.data.foreground === true)) {
      await removeContainer(ctx, r.id, { force: true, volumes: true });
      out.containers.push(r.id);
    }
    return false;
  }
  if (n.kind === 'sdk') {
    out.containers.push(n.name);
    return reapInProcess(ctx, n.name, n.data);
  }
  if (n.kind === 'network') {
    const store = await networkStore(ctx.root);
    const net = await store.get(n.name).catch((e: unknown) => {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    });
    if (net && net.name === n.name && ownedBy(net.labels, o)) {
      await store.remove(net.id);
      out.networks.push(net.name);
    }
    return false;
  }
  const info = new Volumes(ctx.root).info(n.name);
  if (info && ownedBy(info.labels, o)) {
    await removeVolume(ctx, n.name);
    out.volumes.push(n.name);
  }
  return false;
}

/** Removes what dead owners left; what could not be removed is reported (ctx.warn) and forgotten. */
export async function reapDeadOwners(ctx: EngineContext, proc = '/proc'): Promise<Reaped> {
  const index = new OwnerIndex(ctx.root);
  const out: Reaped = { owners: [], containers: [], networks: [], volumes: [] };
  if ((await index.deadOwners(proc)).length === 0) return out;
  return withLock(index.lockFile, async () => {
    let repair = false;
    // Again under the lock: another engine may have reaped them meanwhile.
    for (const o of await index.deadOwners(proc)) {
      for (const n of index.notes(o)) {
        try {
          if (await reapNote(ctx, o, n, out)) repair = true;
        } catch (e) {
          ctx.warn(`removing ${n.kind} ${n.name} of process ${o.pid}, which is gone`, e);
        }
        index.forget(n.kind, n.name, o);
      }
      index.drop(o);
      out.owners.push(ownerKey(o));
    }
    if (repair) await repairNetworkingOf(ctx).catch((e: unknown) => ctx.warn('network repair', e));
    return out;
  });
}

/** The in-process SDK containers whose owner lives: the network repair must count them as live. */
export async function liveInProcessIds(root: string, proc = '/proc'): Promise<string[]> {
  const index = new OwnerIndex(root);
  const ids: string[] = [];
  for (const o of index.owners()) {
    if (!(await ownerAlive(o, proc))) continue;
    for (const n of index.notes(o)) if (n.kind === 'sdk') ids.push(n.name);
  }
  return ids;
}
