/**
 * `system df`: what the store's images, containers' writable layers, volumes and build cache take,
 * and what of it is in use: images by a container, containers by running, volumes by a
 * container, the build cache's records by an image that shares their layer.
 */
import { join } from 'node:path';
import { buildCacheUsage, type BuildCacheItem } from '../build/prune.js';
import type { Image } from '../image/image.js';
import { treeSize } from '../storage/index.js';
import { isCode } from '../errors.js';
import { isRunning } from './container-status.js';
import type { Engine } from './engine.js';
import type { ContainerRecord } from './records.js';
import type { VolumeInfo } from './volume-ops.js';

export interface DiskUsage {
  /** Bytes of the unpacked layers of every image, each layer once. */
  layersSize: number;
  images: Array<{ image: Image; containers: number }>;
  containers: Array<{ record: ContainerRecord; sizeRw: number }>;
  volumes: Array<{ volume: VolumeInfo & { usedBy: string[] }; size: number }>;
  buildCache: BuildCacheItem[];
}

async function sizeOf(p: string): Promise<number> {
  try {
    return await treeSize(p);
  } catch (e) {
    // never started (no upper dir) or removed meanwhile
    if (isCode(e, 'ENOENT')) return 0;
    throw e;
  }
}

export async function diskUsage(engine: Engine): Promise<DiskUsage> {
  const [images, records, volumes, buildCache] = await Promise.all([engine.images.list(), engine.list({ all: true }), engine.volumes(), buildCacheUsage(engine.root)]);
  const layers = new Map<string, number>();
  for (const i of images) for (const l of i.layers) layers.set(l.chainId, l.size);
  return {
    layersSize: [...layers.values()].reduce((a, b) => a + b, 0),
    images: images.map((image) => ({ image, containers: records.filter((r) => r.image?.digest === image.digest).length })),
    containers: await Promise.all(records.map(async (record) => ({ record, sizeRw: await sizeOf(join(engine.store.layout.container(record.id), 'upper')) }))),
    volumes: await Promise.all(volumes.map(async (volume) => ({ volume, size: await sizeOf(volume.mountpoint) }))),
    buildCache,
  };
}

/** The four rows docker's `system df` prints: total, active, size, reclaimable. */
export function diskUsageRows(u: DiskUsage): Array<{ type: string; total: number; active: number; size: number; reclaimable: number }> {
  const activeImages = u.images.filter((i) => i.containers > 0);
  const imageSize = u.images.reduce((n, i) => n + i.image.size, 0);
  const stopped = u.containers.filter((c) => !isRunning(c.record));
  const unusedVolumes = u.volumes.filter((v) => v.volume.usedBy.length === 0);
  const cacheSize = u.buildCache.reduce((n, c) => n + (c.shared ? 0 : c.size), 0);
  return [
    { type: 'Images', total: u.images.length, active: activeImages.length, size: imageSize, reclaimable: imageSize - activeImages.reduce((n, i) => n + i.image.size, 0) },
    { type: 'Containers', total: u.containers.length, active: u.containers.length - stopped.length, size: u.containers.reduce((n, c) => n + c.sizeRw, 0), reclaimable: stopped.reduce((n, c) => n + c.sizeRw, 0) },
    { type: 'Local Volumes', total: u.volumes.length, active: u.volumes.length - unusedVolumes.length, size: u.volumes.reduce((n, v) => n + v.size, 0), reclaimable: unusedVolumes.reduce((n, v) => n + v.size, 0) },
    { type: 'Build Cache', total: u.buildCache.length, active: 0, size: cacheSize, reclaimable: cacheSize },
  ];
}
