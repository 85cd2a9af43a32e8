/**
 * The build cache as `system df` shows it and `builder prune` frees it: the step records (type
 * `regular`; `shared` when an image uses the record's layer, so removing the record frees nothing
 * of it) and the `RUN --mount=type=cache` directories (`exec.cachemount`). A prune removes the
 * records an image does not share (with `all`, every record) and the cache mounts, or with
 * `keepStorage` the least recently used of those until the cache is no larger than that; then
 * the layers and blobs nothing needs any more are collected.
 */
import { Image } from '../image/image.js';
import { NotFoundError } from '../errors.js';
import { Store } from '../storage/index.js';

export interface BuildCacheItem {
  id: string;
  type: 'regular' | 'exec.cachemount';
  description: string;
  /** An image uses its layer: removing the record frees none of its bytes. */
  shared: boolean;
  size: number;
  createdAt: Date;
  lastUsedAt: Date;
}

export async function buildCacheUsage(root?: string): Promise<BuildCacheItem[]> {
  const store = new Store(root === undefined ? {} : { root });
  const imageLayers = new Set((await store.images.list()).flatMap((e) => e.record.layers.map((l) => l.chainId)));
  const out: BuildCacheItem[] = [];
  for (const r of await store.buildCache.list()) {
    let size = 0;
    if (r.layer) {
      size = await store.layers.get(r.layer.chainId).then(
        (l) => l.size,
        (e: unknown) => {
          // its layer was never unpacked here, or collected: nothing of it on disk
          if (e instanceof NotFoundError) return 0;
          throw e;
        },
      );
    }
    out.push({ id: r.id, type: 'regular', description: r.description ?? '', shared: r.layer !== null && imageLayers.has(r.layer.chainId), size, createdAt: new Date(r.createdAt), lastUsedAt: r.lastUsedAt });
  }
  for (const m of await store.buildCache.mounts()) out.push({ id: m.id, type: 'exec.cachemount', description: 'cache mount (RUN --mount=type=cache)', shared: false, size: m.size, createdAt: m.createdAt, lastUsedAt: m.lastUsedAt });
  return out;
}

export interface PruneBuildCacheOptions {
  root?: string;
  /** Also the records whose layers images use (their layers stay with the images). */
  all?: boolean;
  /** Bytes to keep: the least recently used go first until the cache is no larger. */
  keepStorage?: number;
}

export async function pruneBuildCache(opts: PruneBuildCacheOptions = {}): Promise<{ deleted: string[]; spaceReclaimed: number }> {
  const store = new Store(opts.root === undefined ? {} : { root: opts.root });
  const items = await buildCacheUsage(opts.root);
  let victims = items.filter((i) => opts.all || !i.shared);
  if (opts.keepStorage !== undefined) {
    let total = items.filter((i) => !i.shared).reduce((n, i) => n + i.size, 0);
    const chosen: BuildCacheItem[] = [];
    for (const v of [...victims].sort((a, b) => a.lastUsedAt.getTime() - b.lastUsedAt.getTime())) {
      if (total <= opts.keepStorage) break;
      chosen.push(v);
      if (!v.shared) total -= v.size;
    }
    victims = chosen;
  }
  for (const v of victims) {
    if (v.type === 'regular') await store.buildCache.remove(v.id);
    else await store.buildCache.removeMount(v.id);
  }
  if (victims.length) await Image.collectGarbage(store);
  return { deleted: victims.map((v) => v.id), spaceReclaimed: victims.filter((v) => !v.shared).reduce((n, v) => n + v.size, 0) };
}
