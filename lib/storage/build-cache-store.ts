/**
 * The build cache's records on disk: `<root>/build-cache/<key hex>.json`, each the layer a build
 * step made (null for a step without one), when, and what the step was; its file's mtime is when
 * it was last used. And the `RUN --mount=type=cache` directories, `<root>/build-cache-mounts/<id>`.
 * The records keep their layers and blobs from garbage collection (an image removed, its build
 * cache stays, as docker's does) until `builder prune` removes them.
 */
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { isCode, reportError } from '../errors.js';
import type { StoreLayout } from './layout.js';

export const builtLayerSchema = z.object({
  digest: z.string(),
  mediaType: z.string(),
  size: z.number().int().nonnegative(),
  diffId: z.string(),
  chainId: z.string(),
});
export type BuiltLayer = z.infer<typeof builtLayerSchema>;

export const buildCacheEntrySchema = z.object({ layer: builtLayerSchema.nullable(), createdAt: z.string(), description: z.string().optional() });
export type BuildCacheEntry = z.infer<typeof buildCacheEntrySchema>;

export interface BuildCacheRecord extends BuildCacheEntry {
  /** The key's hex. */
  id: string;
  lastUsedAt: Date;
}

export interface CacheMountRecord {
  id: string;
  dir: string;
  size: number;
  createdAt: Date;
  lastUsedAt: Date;
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return [];
    throw err;
  }
}

/** Bytes of regular files under `p` (not following links). */
export async function treeSize(p: string): Promise<number> {
  const st = await lstat(p);
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  let n = 0;
  for (const name of await readdir(p)) n += await treeSize(path.join(p, name));
  return n;
}

export class BuildCacheStore {
  readonly dir: string;
  readonly mountsDir: string;
  constructor(layout: StoreLayout) {
    this.dir = path.join(layout.root, 'build-cache');
    this.mountsDir = path.join(layout.root, 'build-cache-mounts');
  }

  file(key: string): string {
    return path.join(this.dir, `${key.replace(/^sha256:/, '')}.json`);
  }

  /** Every readable record (a damaged one is reported and left out: the next build rewrites it). */
  async list(): Promise<BuildCacheRecord[]> {
    const out: BuildCacheRecord[] = [];
    for (const n of await names(this.dir)) {
      if (!/^[0-9a-f]{64}\.json$/.test(n)) continue;
      const file = path.join(this.dir, n);
      try {
        const [text, st] = await Promise.all([readFile(file, 'utf8'), lstat(file)]);
        const parsed = buildCacheEntrySchema.safeParse(JSON.parse(text));
        if (parsed.success) out.push({ ...parsed.data, id: n.slice(0, 64), lastUsedAt: st.mtime });
      } catch (err) {
        // removed meanwhile (ENOENT) or damaged (SyntaxError): not a record
        if (!isCode(err, 'ENOENT')) reportError(`build cache record ${file}`)(err);
      }
    }
    return out;
  }

  async mounts(): Promise<CacheMountRecord[]> {
    const out: CacheMountRecord[] = [];
    for (const n of await names(this.mountsDir)) {
      if (!/^[0-9a-f]{64}$/.test(n)) continue;
      const dir = path.join(this.mountsDir, n);
      const st = await lstat(dir);
      out.push({ id: n, dir, size: await treeSize(dir), createdAt: st.birthtime.getTime() ? st.birthtime : st.ctime, lastUsedAt: st.mtime });
    }
    return out;
  }

  async remove(id: string): Promise<void> {
    await rm(path.join(this.dir, `${id}.json`), { force: true });
  }

  async removeMount(id: string): Promise<void> {
    await rm(path.join(this.mountsDir, id), { recursive: true, force: true });
  }

  /** The layers (top chain ids) and blobs the records keep from garbage collection. */
  async refs(): Promise<{ layers: string[]; blobs: string[] }> {
    const layers: string[] = [];
    const blobs: string[] = [];
    for (const r of await this.list()) {
      if (!r.layer) continue;
      layers.push(r.layer.chainId);
      blobs.push(r.layer.digest);
    }
    return { layers, blobs };
  }
}
