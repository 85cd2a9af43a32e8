/** docker's volume commands over the store's volumes and the containers' records of them. */
import { InvalidStateError, NotFoundError } from '../errors.js';
import { validate } from '../runtime/options.js';
import type { EngineContext } from './engine-context.js';
import { volumesInUse } from './removal.js';
import { Volumes, VolumeRequestSchema } from './volumes.js';

export interface VolumeInfo {
  name: string;
  anonymous: boolean;
  created: string;
  mountpoint: string;
}

/** docker volume ls: every volume, with the containers that use it. */
export async function listVolumes(ctx: EngineContext): Promise<Array<VolumeInfo & { usedBy: string[] }>> {
  const records = await ctx.store.list({ all: true });
  const volumes = new Volumes(ctx.root);
  return volumes.list().flatMap((name) => {
    const info = volumes.info(name);
    return info ? [{ ...info, usedBy: records.filter((r) => r.volumes.some((v) => v.name === name)).map((r) => r.id) }] : [];
  });
}

/** docker volume create [NAME]: made when absent (then anonymous without a name), as docker's. */
export function createVolume(ctx: EngineContext, name?: string): VolumeInfo {
  if (name !== undefined) validate(VolumeRequestSchema, { name, target: '/' }, 'volume');
  const volumes = new Volumes(ctx.root);
  const made = volumes.ensure(name).name;
  ctx.emitEvent({ type: 'volume', action: 'create', id: made, attributes: { driver: 'local' }, time: new Date() });
  return volumes.info(made)!;
}

/** docker volume rm: refused while a container (running or not) uses it, as docker refuses it (also with -f). */
export async function removeVolume(ctx: EngineContext, name: string): Promise<void> {
  const volumes = new Volumes(ctx.root);
  if (!volumes.info(name)) throw new NotFoundError(`get ${name}: no such volume`);
  const users = (await ctx.store.list({ all: true })).filter((r) => r.volumes.some((v) => v.name === name));
  if (users.length) throw new InvalidStateError(`remove ${name}: volume is in use - [${users.map((r) => r.id).join(', ')}]`);
  volumes.remove(name);
  ctx.emitEvent({ type: 'volume', action: 'destroy', id: name, attributes: { driver: 'local' }, time: new Date() });
}

/** docker volume prune: the anonymous volumes (with `all`, every volume) no container uses. */
export async function pruneVolumes(ctx: EngineContext, opts: { all?: boolean } = {}): Promise<{ volumes: string[] }> {
  const inUse = await volumesInUse(ctx);
  const volumes = new Volumes(ctx.root);
  const removed: string[] = [];
  for (const name of volumes.list()) {
    if (inUse.has(name) || (!opts.all && !volumes.isAnonymous(name))) continue;
    volumes.remove(name);
    removed.push(name);
  }
  return { volumes: removed };
}
