/**
 * What pushes learnt, as docker's distribution metadata keeps it: for each layer (by diff id) the
 * compressed blob made for it once, so every later push of that layer sends the same bytes under
 * the same digest; and for each blob, the registry repositories known to hold it, so a push to
 * another repository of the same registry can mount it instead of uploading it. The repositories
 * are one JSON file, replaced atomically under an flock; each compressed blob's record is a file of
 * its own (`compressed/<diff id>.json`, written once, read without a lock), kept apart because it
 * stays true whatever the registries forget. The compressed blobs themselves are in the blob
 * store, kept by the image records that were pushed with them (`ImageStore.keepBlobs`). The
 * repositories file is a cache, written without fsync (see #update).
 * Both are small and read and written on the calling thread: a push reads them before its first
 * request and writes the repositories once the registry took its tag, and readFile's and
 * writeFile's thread-pool round trips (open, fstat, read, close; open, write, close, rename) each
 * waited their turn there on a busy machine, where the JSON parse, done on this thread anyway,
 * costs more than the reads themselves.
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { NsboxError } from '../errors.js';
import { tempName, withLock, writeFileAtomic } from './atomic.js';
import { digestSchema } from './digest.js';
import { fsError, isCode } from './errors.js';
import type { StoreLayout } from './layout.js';
import { replaceFileSync } from './replace-sync.js';

/** A compressed blob of one layer. */
export const compressedBlobSchema = z.object({
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  /** 'gzip' */
  compression: z.literal('gzip'),
});
export type CompressedBlob = z.infer<typeof compressedBlobSchema>;

const dbSchema = z.object({
  version: z.literal(1),
  /** diff id → its compressed blob: read from records written before they had files of their own */
  compressed: z.record(z.string(), compressedBlobSchema).default({}),
  /** blob digest → repositories (`host[:port]/path`) that have it, most recently seen first */
  repositories: z.record(z.string(), z.array(z.string())),
  /** registry (`host[:port]`) → the manifest format it takes, learnt when it refused an OCI manifest */
  manifestFormat: z.record(z.string(), z.literal('docker')).optional(),
});
type Db = z.infer<typeof dbSchema>;

/** DistributionStore's lookups over one read of its record. */
export interface DistributionSnapshot {
  repositoriesOf(digest: string): string[];
  manifestFormat(registry: string): 'docker' | undefined;
}

/** Repositories remembered per blob: the newest few are the likeliest to still have it. */
const MAX_REPOSITORIES = 8;

export class DistributionStore {
  readonly layout: StoreLayout;
  constructor(layout: StoreLayout) {
    this.layout = layout;
  }

  #load(): Db {
    let text: string;
    try {
      text = readFileSync(this.layout.distributionFile, 'utf8');
    } catch (err) {
      if (isCode(err, 'ENOENT')) return { version: 1, compressed: {}, repositories: {} };
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      // Written without fsync (a cache): a crash can leave it empty or cut short. Nothing is known then.
      if (!(err instanceof SyntaxError)) throw err;
      return { version: 1, compressed: {}, repositories: {} };
    }
    const parsed = dbSchema.safeParse(json);
    if (!parsed.success) {
      throw new NsboxError(`${this.layout.distributionFile}: not an nsbox distribution record: ${parsed.error.message}`, {
        code: 'ERR_STORE_CORRUPT',
        path: this.layout.distributionFile,
      });
    }
    return parsed.data;
  }

  /**
   * Read-modify-write under the lock. Not fsynced: every fact here is learnt again by the next push
   * (a HEAD, a refused manifest), so a crash costs a cache entry, and no push waits on the disk for it.
   */
  async #update(fn: (db: Db) => void): Promise<void> {
    await withLock(this.layout.distributionLock, () => {
      const db = this.#load();
      fn(db);
      const file = this.layout.distributionFile;
      try {
        replaceFileSync(file, `${JSON.stringify(db)}\n`, tempName(file));
      } catch (err) {
        throw fsError(err, 'write', file);
      }
    });
  }

  /** The record read once, for a push's many lookups (it does not see later changes). */
  snapshot(): DistributionSnapshot {
    const db = this.#load();
    return {
      repositoriesOf: (digest) => db.repositories[digest] ?? [],
      manifestFormat: (registry) => db.manifestFormat?.[registry],
    };
  }

  /** The compressed blob made for `diffId` earlier, if any (the blob itself may have been collected since). */
  compressed(diffId: string): CompressedBlob | undefined {
    const file = this.layout.compressedRecord(diffId);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
      return this.#load().compressed[diffId];
    }
    const parsed = compressedBlobSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new NsboxError(`${file}: not an nsbox compressed-blob record: ${parsed.error.message}`, { code: 'ERR_STORE_CORRUPT', path: file });
    return parsed.data;
  }

  /** Records the compressed blob of `diffId` (two pushes racing write equally valid records: the last stays). */
  async setCompressed(diffId: string, blob: CompressedBlob): Promise<void> {
    const b = compressedBlobSchema.parse(blob);
    const file = this.layout.compressedRecord(diffId);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, `${JSON.stringify(b)}\n`);
  }

  /** Repositories (`host/path`) known to have `digest`, newest first. */
  async repositoriesOf(digest: string): Promise<string[]> {
    return this.#load().repositories[digest] ?? [];
  }

  /** Records that each repository has each of `digests` (after a push, a mount or a HEAD that found it). */
  async addRepository(repository: string, digests: readonly string[]): Promise<void> {
    await this.addRepositories(new Map([[repository, digests]]));
  }

  /** addRepository for several repositories, in one write (with `formats`, setManifestFormat's too). */
  async addRepositories(learnt: ReadonlyMap<string, Iterable<string>>, formats: Readonly<Record<string, 'docker'>> = {}): Promise<void> {
    if (![...learnt.values()].some((ds) => [...ds].length) && !Object.keys(formats).length) return;
    await this.#update((db) => {
      if (Object.keys(formats).length) db.manifestFormat = { ...db.manifestFormat, ...formats };
      for (const [repository, digests] of learnt) {
        for (const d of digests) {
          const list = (db.repositories[d] ?? []).filter((r) => r !== repository);
          db.repositories[d] = [repository, ...list].slice(0, MAX_REPOSITORIES);
        }
      }
    });
  }

  /** 'docker' when `registry` refused an OCI manifest that went again as Docker schema2 (then every push there goes so). */
  async manifestFormat(registry: string): Promise<'docker' | undefined> {
    return this.#load().manifestFormat?.[registry];
  }

  async setManifestFormat(registry: string, format: 'docker'): Promise<void> {
    await this.#update((db) => {
      db.manifestFormat = { ...db.manifestFormat, [registry]: format };
    });
  }
}
