/** docker's volume commands over the store's volumes and the containers' records of them. */
import { InvalidStateError, NotFoundError, ValidationError } from '../errors.js';
import { matchesLabels } from '../network/network-filters.js';
import { validate } from '../runtime/options.js';
import type { EngineContext } from './engine-context.js';
import { volumesInUse } from './removal.js';
import { Volumes, VolumeRequestSchema } from './volumes.js';
import { OwnerIndex, ownerLabels, ownerOf } from './owners.js';
import { randomBytes } from 'node:crypto';

export interface VolumeInfo {
  name: string;
  anonymous: boolean;
  created: string;
  mountpoint: string;
  labels: Record<string, string>;
}

/** The labels docker shows for a volume: its own, and the anonymous volume's marker. */
export const volumeLabels = (v: VolumeInfo): Record<string, string> => ({ ...v.labels, ...(v.anonymous ? { 'com.docker.volume.anonymous': '' } : {}) });

export const VOLUME_FILTERS = ['name', 'label', 'dangling', 'driver'] as const;

/**
 * docker's volume filters (name: a substring; label: key or key=value, all must match; dangling:
 * used by no container; driver: local only), for `volume ls --filter` and `GET /volumes` alike.
 */
export function filterVolumes<V extends VolumeInfo & { usedBy: string[] }>(list: V[], filters: Map<string, string[]>): V[] {
  for (const k of filters.keys()) if (!(VOLUME_FILTERS as readonly string[]).includes(k)) throw new ValidationError(`invalid filter '${k}'`, 'filter');
  const dangling = filters.get('dangling')?.at(-1);
  if (dangling !== undefined && !['true', 'false', '1', '0'].includes(dangling)) throw new ValidationError(`invalid filter 'dangling=${dangling}'`, 'filter');
  return list.filter((v) => {
    if (!(filters.get('name') ?? []).every((n) => v.name.includes(n))) return false;
    if (!matchesLabels(volumeLabels(v), filters.get('label') ?? [])) return false;
    if (dangling !== undefined && (v.usedBy.length === 0) !== (dangling === 'true' || dangling === '1')) return false;
    return (filters.get('driver') ?? []).every((d) => d === 'local');
  });
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

/**
 * docker volume create [NAME]: made when absent (then anonymous without a name), as docker's; an
 * existing volume keeps its labels. An owned engine's volume is noted first (owners.ts).
 */
export function createVolume(ctx: EngineContext, name?: string, opts: { labels?: Record<string, string> } = {}): VolumeInfo {
  if (name !== undefined) validate(VolumeRequestSchema, { name, target: '/' }, 'volume');
  const volumes = new Volumes(ctx.root);
  const anonymousName = name === undefined ? randomBytes(32).toString('hex') : undefined;
  const fresh = !volumes.info(name ?? anonymousName!);
  if (ctx.owner && fresh) new OwnerIndex(ctx.root).note('volume', name ?? anonymousName!, {}, ctx.owner);
  const labels = { ...(opts.labels ?? {}), ...(ctx.owner && fresh ? ownerLabels(ctx.owner) : {}) };
  const made = volumes.ensure(name, { labels, ...(anonymousName ? { anonymousName } : {}) }).name;
  ctx.emitEvent({ type: 'volume', action: 'create', id: made, attributes: { driver: 'local' }, time: new Date() });
  return volumes.info(made)!;
}

/** docker volume rm: refused while a container (running or not) uses it, as docker refuses it (also with -f). */
export async function removeVolume(ctx: EngineContext, name: string): Promise<void> {
  const volumes = new Volumes(ctx.root);
  if (!volumes.info(name)) throw new NotFoundError(`get ${name}: no such volume`);
  const users = (await ctx.store.list({ all: true })).filter((r) => r.volumes.some((v) => v.name === name));
  if (users.length) throw new InvalidStateError(`remove ${name}: volume is in use - [${users.map((r) => r.id).join(', ')}]`);
  const owner = ownerOf(volumes.info(name)?.labels);
  volumes.remove(name);
  if (owner) new OwnerIndex(ctx.root).forget('volume', name, owner);
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
