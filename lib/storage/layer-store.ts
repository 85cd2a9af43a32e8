/**
 * Snapshots: unpacked layers under layers/<chain id hex>/, each a `diff/` tree (whiteouts already in
 * overlayfs form) and a `layer.json` marker written before the directory is renamed into place. A
 * layer is unpacked into `<hex>.tmp-…` and appears under its final name complete or not at all; a
 * crash leaves a tmp directory that repair() removes. Layers never mount anything: they hand out
 * directories for the caller's overlay.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { NotFoundError, ValidationError } from '../errors.js';
import { fsyncDirAsync, withLock, writeFileAtomic } from './atomic.js';
import { chainId as computeChainId, digestSchema, parseDigest } from './digest.js';
import { DigestMismatchError, fsError, isCode } from './errors.js';
import type { StoreLayout } from './layout.js';
import { LayerStream } from './layer-stream.js';
import { unpackLayer, type UnpackOptions, type UnpackResult } from './unpack.js';

export const layerRecordSchema = z.object({
  chainId: digestSchema,
  diffId: digestSchema,
  parent: digestSchema.optional(),
  /** The compressed blob it came from, when known. */
  blob: digestSchema.optional(),
  /** Bytes of regular file content. */
  size: z.number().int().nonnegative(),
  tarSize: z.number().int().nonnegative(),
  compression: z.enum(['gzip', 'zstd', 'none']),
  unpackedAt: z.string(),
});
export type LayerRecord = z.infer<typeof layerRecordSchema>;

export interface LayerUnpackOptions {
  /** The layer's diff id from the image config (rootfs.diff_ids): checked against the tar. */
  diffId: string;
  /** The chain id of the layer below; absent for the bottom layer. */
  parentChainId?: string;
  /** The compressed blob's digest, for records and error messages. */
  blobDigest?: string;
  /** Informational: compression is detected from the blob's bytes. */
  mediaType?: string;
  preserveOwners?: boolean;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

const HEX = /^[0-9a-f]{64}$/;

function checkChain(chainId: string, opts: LayerUnpackOptions): void {
  parseDigest(chainId, 'chainId');
  const expectedChain = computeChainId(opts.parentChainId, opts.diffId);
  if (expectedChain !== chainId) {
    throw new ValidationError(
      `layer ${chainId}: the chain id of diff id ${opts.diffId} on ${opts.parentChainId ?? 'nothing'} is ${expectedChain}`,
      'chainId',
    );
  }
}

function unpackOptions(chainId: string, blob: string | undefined, opts: LayerUnpackOptions): UnpackOptions {
  return {
    name: `layer ${blob ?? opts.diffId ?? chainId}`,
    ...(opts.preserveOwners === undefined ? {} : { preserveOwners: opts.preserveOwners }),
    ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
}

/** The layer's record, once its tar is known to hash to the diff id the image config names. */
function verified(chainId: string, blob: string | undefined, result: UnpackResult, opts: LayerUnpackOptions): LayerRecord {
  if (result.diffId !== opts.diffId) {
    throw new DigestMismatchError(
      `layer ${blob ?? chainId}: the uncompressed tar hashes to ${result.diffId}, but the image config says ${opts.diffId}`,
      opts.diffId,
      result.diffId,
    );
  }
  return {
    chainId,
    diffId: opts.diffId,
    ...(opts.parentChainId ? { parent: opts.parentChainId } : {}),
    ...(blob ? { blob } : {}),
    size: result.contentSize,
    tarSize: result.tarSize,
    compression: result.compression,
    unpackedAt: new Date().toISOString(),
  };
}

export class LayerStore {
  readonly layout: StoreLayout;
  constructor(layout: StoreLayout) {
    this.layout = layout;
  }

  async init(): Promise<void> {
    await mkdir(this.layout.layersDir, { recursive: true });
  }

  /** The unpacked tree of a layer: an overlay lower dir. Does not check that it exists. */
  dir(chainId: string): string {
    return this.layout.layerDiff(chainId);
  }

  async has(chainId: string): Promise<boolean> {
    try {
      return (await stat(this.layout.layerMarker(chainId))).isFile();
    } catch (err) {
      if (isCode(err, 'ENOENT')) return false;
      throw fsError(err, 'stat', this.layout.layerMarker(chainId));
    }
  }

  async get(chainId: string): Promise<LayerRecord> {
    const marker = this.layout.layerMarker(chainId);
    let text: string;
    try {
      text = await readFile(marker, 'utf8');
    } catch (err) {
      if (isCode(err, 'ENOENT')) throw new NotFoundError(`layer ${chainId} is not in the store`, { path: marker });
      throw fsError(err, 'read', marker);
    }
    return layerRecordSchema.parse(JSON.parse(text));
  }

  /**
   * The overlay lowerdir list for an image whose top layer is `chainId`: topmost first, down to the
   * bottom layer through each record's parent. NotFoundError when one is missing.
   */
  async lowerDirs(chainId: string): Promise<string[]> {
    const dirs: string[] = [];
    for (let id: string | undefined = chainId; id !== undefined; ) {
      const rec = await this.get(id);
      dirs.push(this.dir(id));
      id = rec.parent;
    }
    return dirs;
  }

  /**
   * Unpacks the layer blob at `blobPath` as layer `chainId` (idempotent: an existing complete layer is
   * returned as is). The tar's sha256 must equal `diffId` and chainId(parent, diffId) must equal
   * `chainId`, else DigestMismatchError / ValidationError and nothing is kept. Layers of one image may
   * be unpacked in parallel: a parent need not exist yet.
   */
  async unpack(chainId: string, blobPath: string, opts: LayerUnpackOptions): Promise<LayerRecord> {
    checkChain(chainId, opts);
    if (await this.has(chainId)) return this.get(chainId);
    await this.init();
    return withLock(this.layout.leaseLock, () => this.#unpack(chainId, blobPath, opts), { shared: true });
  }

  async #unpack(chainId: string, blobPath: string, opts: LayerUnpackOptions): Promise<LayerRecord> {
    const tmp = await mkdtemp(`${this.layout.layer(chainId)}.tmp-`);
    try {
      const diff = path.join(tmp, 'diff');
      await mkdir(diff, { mode: 0o755 });
      const blobHex = path.basename(blobPath);
      const blob = opts.blobDigest ?? (HEX.test(blobHex) ? `sha256:${blobHex}` : undefined);
      const result = await unpackLayer(blobPath, diff, unpackOptions(chainId, blob, opts));
      return await this.#publish(tmp, chainId, verified(chainId, blob, result, opts));
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Takes the directory `tree` as layer `chainId`'s tree by renaming it into place: a tree this
   * process made whose tar (uncompressed, `tarSize` bytes, `contentSize` of them file contents) it
   * has just written and hashed to `opts.diffId` (a build step's upper directory), so that tar is
   * not unpacked again. False when the rename cannot be done (`tree` on another file system); `tree`
   * is then left as it was for the caller to unpack the tar instead. An existing layer of that
   * chain id is kept (and `tree` left).
   */
  async adopt(chainId: string, tree: string, opts: LayerUnpackOptions & { tarSize: number; contentSize: number }): Promise<boolean> {
    checkChain(chainId, opts);
    if (await this.has(chainId)) return true;
    await this.init();
    return withLock(this.layout.leaseLock, async () => {
      const tmp = await mkdtemp(`${this.layout.layer(chainId)}.tmp-`);
      const diff = path.join(tmp, 'diff');
      try {
        await rename(tree, diff);
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        if (isCode(err, 'EXDEV')) return false;
        throw fsError(err, 'rename', tree);
      }
      try {
        // as an unpacked layer's: the tar has no entry for its root
        await chmod(diff, 0o755);
        await this.#publish(tmp, chainId, {
          chainId,
          diffId: opts.diffId,
          ...(opts.parentChainId ? { parent: opts.parentChainId } : {}),
          ...(opts.blobDigest ? { blob: opts.blobDigest } : {}),
          size: opts.contentSize,
          tarSize: opts.tarSize,
          compression: 'none',
          unpackedAt: new Date().toISOString(),
        });
        return true;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
    }, { shared: true });
  }

  /**
   * Unpacks layer `chainId` from its compressed bytes as they arrive (a download), in one pass: the
   * caller feeds the blob, calls verify() once the blob's own digest is known to match, then
   * commit(); until commit() nothing appears under the layer's name, and abort() (or any failure)
   * removes the partial layer. See LayerStream.
   */
  stream(chainId: string, opts: LayerUnpackOptions): LayerStream {
    checkChain(chainId, opts);
    const blob = opts.blobDigest;
    return new LayerStream(async (input, verify) => {
      await this.init();
      return withLock(this.layout.leaseLock, async () => {
        const tmp = await mkdtemp(`${this.layout.layer(chainId)}.tmp-`);
        try {
          const diff = path.join(tmp, 'diff');
          await mkdir(diff, { mode: 0o755 });
          const result = await unpackLayer(input, diff, unpackOptions(chainId, blob, opts));
          const record = verified(chainId, blob, result, opts);
          await verify();
          return await this.#publish(tmp, chainId, record);
        } catch (err) {
          await rm(tmp, { recursive: true, force: true });
          throw err;
        }
      }, { shared: true });
    });
  }

  /** Writes the marker into a complete, verified layer directory and renames it into place. */
  async #publish(tmp: string, chainId: string, record: LayerRecord): Promise<LayerRecord> {
    const final = this.layout.layer(chainId);
    await writeFileAtomic(path.join(tmp, 'layer.json'), `${JSON.stringify(record, null, 2)}\n`);
    try {
      await rename(tmp, final);
    } catch (err) {
      if (!isCode(err, 'ENOTEMPTY', 'EEXIST')) throw err;
      // another process finished the same layer first: theirs is as good as ours
      if (await this.has(chainId)) {
        await rm(tmp, { recursive: true, force: true });
        return this.get(chainId);
      }
      await this.#discard(final);
      await rename(tmp, final);
    }
    await fsyncDirAsync(this.layout.layersDir);
    return record;
  }

  /** Renames a layer directory out of the way, then deletes it: no half-deleted layer keeps its name. */
  async #discard(dir: string): Promise<void> {
    const gone = await mkdtemp(`${dir}.tmp-rm-`);
    try {
      await rename(dir, path.join(gone, 'layer'));
    } catch (err) {
      await rm(gone, { recursive: true, force: true });
      if (isCode(err, 'ENOENT')) return;
      throw fsError(err, 'remove', dir);
    }
    await rm(gone, { recursive: true, force: true });
  }

  /** Removes a layer; false when it was not there. The caller makes sure nothing mounts it. */
  async remove(chainId: string): Promise<boolean> {
    const dir = this.layout.layer(chainId);
    try {
      await stat(dir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return false;
      throw fsError(err, 'stat', dir);
    }
    await this.#discard(dir);
    return true;
  }

  /** Every complete layer. */
  async list(): Promise<LayerRecord[]> {
    const out: LayerRecord[] = [];
    for (const name of await this.#names()) {
      if (!HEX.test(name)) continue;
      try {
        out.push(await this.get(`sha256:${name}`));
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    return out;
  }

  async #names(): Promise<string[]> {
    try {
      return await readdir(this.layout.layersDir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return [];
      throw fsError(err, 'list', this.layout.layersDir);
    }
  }

  /**
   * Start-up repair: removes unpacks and removals that a crash interrupted (tmp directories) and any
   * layer directory without its marker. Call it holding the lease exclusively.
   */
  async repair(): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await this.#names()) {
      const dir = path.join(this.layout.layersDir, name);
      if (/^[0-9a-f]{64}\.tmp-/.test(name)) {
        await rm(dir, { recursive: true, force: true });
        removed.push(dir);
      } else if (HEX.test(name) && !(await this.has(`sha256:${name}`))) {
        await this.#discard(dir);
        removed.push(dir);
      }
    }
    return removed;
  }
}
