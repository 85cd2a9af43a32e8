/**
 * A step's diff into the store: the upper directory's tar (diff-tar.ts) becomes an uncompressed
 * blob named by its digest (which is also its diff id), then a layer unpacked from it under its
 * chain id, as a pulled layer is. Compression waits for push and save. And the build cache: the
 * layer a step made, under the digest of what it was made from.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import { ignoreCode, isCode, reportError } from '../errors.js';
import { buildCacheEntrySchema, chainId as chainIdOf, replaceFile, type BuiltLayer, type Store } from '../storage/index.js';
import { writeDiffTar } from './diff-tar.js';


export const LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar';

export { builtLayerSchema, type BuiltLayer } from '../storage/index.js';

/**
 * The layer of `upper` on top of `parentChainId`; undefined when the step changed nothing. With
 * `adopt` (the caller is done with `upper`), a faithful upper directory (diff-tar.ts) becomes the
 * layer's tree by a rename, and is gone afterwards.
 */
export async function commitDiff(store: Store, upper: string, parentChainId: string | undefined, opts: { clampMtime?: number; tmpPrefix?: string; adopt?: boolean } = {}): Promise<BuiltLayer | undefined> {
  await mkdir(store.layout.tmpDir, { recursive: true });
  const tmp = path.join(store.layout.tmpDir, `${opts.tmpPrefix ?? 'build-'}layer-${randomBytes(8).toString('hex')}`);
  try {
    const tar = await writeDiffTar(upper, tmp, opts.clampMtime === undefined ? {} : { clampMtime: opts.clampMtime });
    if (tar.entries === 0) return undefined;
    // the tar's digest was taken as it was written (and the file fsynced): moved into place, not copied
    if (!(await store.blobs.has(tar.diffId))) await store.blobs.adoptFile(tmp, tar.diffId, tar.size);
    const chainId = chainIdOf(parentChainId, tar.diffId);
    const layerOpts = { diffId: tar.diffId, blobDigest: tar.diffId, mediaType: LAYER_MEDIA_TYPE, ...(parentChainId ? { parentChainId } : {}) };
    const adopted = opts.adopt && tar.faithful && (await store.layers.adopt(chainId, upper, { ...layerOpts, tarSize: tar.size, contentSize: tar.contentSize }));
    if (!adopted) await store.layers.unpack(chainId, store.blobs.path(tar.diffId), layerOpts);
    return { digest: tar.diffId, mediaType: LAYER_MEDIA_TYPE, size: tar.size, diffId: tar.diffId, chainId };
  } finally {
    await rm(tmp, { force: true });
  }
}


/**
 * The build cache: `<root>/build-cache/<key hex>.json`, each the layer a step made (null for a
 * metadata step or one that changed nothing) and its time. A hit needs the layer still in the store (an image removal may have
 * collected it).
 */
export class BuildCache {
  readonly dir: string;
  /** Entries from --cache-from images (their inline cache metadata), after this store's own. */
  readonly #imported = new Map<string, { layer: BuiltLayer | null; created: string }>();
  /** Each record this build hit or wrote (file → text): what a plan of the build checks (build-plan.ts). */
  readonly touched = new Map<string, string>();
  constructor(readonly store: Store) {
    this.dir = store.buildCache.dir;
  }

  /** Adds a --cache-from image's entry (its layer's blob must be in the store by the time it is used). */
  import(key: string, entry: { layer: BuiltLayer | null; created: string }): void {
    if (!this.#imported.has(key)) this.#imported.set(key, entry);
  }

  #file(key: string): string {
    return this.store.buildCache.file(key);
  }

  /** The entry for `key`; `blobOnly`: its layer's blob must be there (a linked step's layer, unpacked over any parent), not its chain. */
  async get(key: string, opts: { blobOnly?: boolean } = {}): Promise<{ layer: BuiltLayer | null; created: string } | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file(key), 'utf8');
    } catch (err) {
      // ENOENT: a miss; any other failure is reported and taken as one (the step runs)
      if (!isCode(err, 'ENOENT')) reportError(`reading the build cache entry ${this.#file(key)}`)(err);
      return this.#fromImported(key);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      // a torn or damaged entry (SyntaxError): a miss, and the step's new entry replaces it
      reportError(`the build cache entry ${this.#file(key)} is damaged; the step runs again`)(err);
      return undefined;
    }
    const parsed = buildCacheEntrySchema.safeParse(json);
    if (!parsed.success) return undefined;
    const layer = parsed.data.layer;
    if (layer && !((await this.store.blobs.has(layer.digest)) && (opts.blobOnly || (await this.store.layers.has(layer.chainId))))) return this.#fromImported(key);
    // the record's mtime is its last use (builder prune --keep-storage removes the least recent first)
    const now = new Date();
    await utimes(this.#file(key), now, now).catch(ignoreCode('ENOENT'));
    this.touched.set(this.#file(key), text);
    return { layer, created: parsed.data.createdAt };
  }

  /** An imported entry, kept as this store's own from now on; its layer is placed over the step's parent by the caller. */
  async #fromImported(key: string): Promise<{ layer: BuiltLayer | null; created: string } | undefined> {
    const hit = this.#imported.get(key);
    if (!hit || (hit.layer && !(await this.store.blobs.has(hit.layer.digest)))) return undefined;
    await this.put(key, hit.layer ?? undefined, hit.created, 'cache-from');
    return hit;
  }

  /** `created`: the step's history time, reused by a hit so that a fully cached build gives the same image. */
  async put(key: string, layer: BuiltLayer | undefined, created: string, description?: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // a cache record, so not fsynced (two fsyncs a step): a crash may lose it or leave it empty,
    // which get() takes as a miss
    const text = `${JSON.stringify({ layer: layer ?? null, createdAt: created, ...(description ? { description } : {}) })}\n`;
    await replaceFile(this.#file(key), text);
    this.touched.set(this.#file(key), text);
  }
}
