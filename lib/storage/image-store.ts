/**
 * Metadata: image records (manifest digest → config, layers) and names (name:tag → manifest digest)
 * in images.json, replaced atomically under an flock so that several processes (CLI, daemon, SDK
 * users) share one store; and garbage collection of the blobs and layers no image needs.
 */
import { readFile } from 'node:fs/promises';
import * as z from 'zod';
import { NotFoundError, NsboxError } from '../errors.js';
import { withLock, writeFileAtomic } from './atomic.js';
import type { BlobStore } from './blob-store.js';
import { digestSchema, parseDigest } from './digest.js';
import { isCode } from './errors.js';
import type { LayerStore } from './layer-store.js';
import type { StoreLayout } from './layout.js';
import { whoAmI } from './who-am-i.js';

export { whoAmI } from './who-am-i.js';

export const imageLayerSchema = z.object({
  /** The compressed blob. */
  digest: digestSchema,
  mediaType: z.string(),
  size: z.number().int().nonnegative(),
  diffId: digestSchema,
  chainId: digestSchema,
});

export const imageRecordSchema = z.object({
  /** The manifest's digest: the image's identity. */
  digest: digestSchema,
  mediaType: z.string(),
  config: digestSchema,
  layers: z.array(imageLayerSchema),
  /** Other blobs kept with the image, e.g. the index or manifest list it was chosen from. */
  extraBlobs: z.array(digestSchema).default([]),
  platform: z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).optional(),
  /** From the config's `created`. */
  created: z.string().optional(),
  addedAt: z.string(),
  /**
   * The image index this manifest is kept with (one of `extraBlobs`): the one it was pulled from, or
   * the one made at build, commit or import to attach its provenance (an attestation manifest).
   */
  index: digestSchema.optional(),
});
export type ImageRecord = z.infer<typeof imageRecordSchema>;
export type ImageRecordInput = z.input<typeof imageRecordSchema>;

/** What moved a tag: one line of its journal. */
export const journalEntrySchema = z.object({
  digest: digestSchema,
  /** When (ISO 8601). */
  at: z.string(),
  by: z.enum(['build', 'pull', 'commit', 'import', 'load', 'tag', 'rollback']),
  /** Who: user@host of the process that moved it. */
  user: z.string().optional(),
  /** Where from: the reference pulled, or the digest a rollback moved the tag away from. */
  from: z.string().optional(),
});
export type JournalEntry = z.infer<typeof journalEntrySchema>;
export type TagMove = Pick<JournalEntry, 'by'> & Partial<Pick<JournalEntry, 'from'>>;

const dbSchema = z.object({
  version: z.literal(1),
  /** name:tag (or name@digest) → manifest digest */
  refs: z.record(z.string(), digestSchema),
  images: z.record(z.string(), imageRecordSchema),
  /** name:tag → every digest it pointed to, oldest first (the last is where it points now). */
  journal: z.record(z.string(), z.array(journalEntrySchema)).default({}),
});
type Db = z.infer<typeof dbSchema>;

export interface ImageEntry {
  record: ImageRecord;
  names: string[];
}

/** What containers still use, from the caller (the lead's container records). */
export interface InUse {
  /** Top chain ids of container root file systems: they and their parents are kept. */
  layers?: Iterable<string>;
  /** Blobs to keep (manifests, configs of images a container was made from). */
  blobs?: Iterable<string>;
}

export interface GcResult {
  blobs: string[];
  layers: string[];
}

const isDigest = (s: string) => /^sha256:[0-9a-f]{64}$/.test(s);


/** Points `name` at `digest`, with a journal line when that moves it (a name@digest has none). */
function point(db: Db, name: string, digest: string, how: TagMove): void {
  const had = db.refs[name];
  db.refs[name] = digest;
  if (name.includes('@')) return;
  const log = (db.journal[name] ??= []);
  if (had === digest && log.at(-1)?.digest === digest) return;
  log.push({ digest, at: new Date().toISOString(), by: how.by, user: whoAmI(), ...(how.from ? { from: how.from } : {}) });
}

export class ImageStore {
  readonly layout: StoreLayout;
  readonly #blobs: BlobStore;
  readonly #layers: LayerStore;

  constructor(layout: StoreLayout, stores: { blobs: BlobStore; layers: LayerStore }) {
    this.layout = layout;
    this.#blobs = stores.blobs;
    this.#layers = stores.layers;
  }

  async #load(): Promise<Db> {
    let text: string;
    try {
      text = await readFile(this.layout.imagesFile, 'utf8');
    } catch (err) {
      if (isCode(err, 'ENOENT')) return { version: 1, refs: {}, images: {}, journal: {} };
      throw err;
    }
    const parsed = dbSchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new NsboxError(`${this.layout.imagesFile}: not an nsbox image database: ${parsed.error.message}`, {
        code: 'ERR_STORE_CORRUPT',
        path: this.layout.imagesFile,
      });
    }
    return parsed.data;
  }

  /** Read-modify-write under the images lock; the file is replaced atomically. */
  async #update<T>(fn: (db: Db) => T): Promise<T> {
    return withLock(this.layout.imagesLock, async () => {
      const db = await this.#load();
      const out = fn(db);
      await writeFileAtomic(this.layout.imagesFile, `${JSON.stringify(db, null, 2)}\n`);
      return out;
    });
  }

  /** Every image with its names. */
  async list(): Promise<ImageEntry[]> {
    return listOf(await this.#load());
  }

  /**
   * An image by name (as stored: fully qualified), by manifest digest, or by docker's image id (the
   * config's digest, which `build -q` and `images --no-trunc` print); undefined when unknown.
   */
  async get(ref: string): Promise<ImageEntry | undefined> {
    return entryOf(await this.#load(), ref);
  }

  /**
   * images.json read once, for an operation that looks up several images (a push: the image, its
   * platforms, every image named on the registry); it does not see later changes.
   */
  async snapshot(): Promise<ImageSnapshot> {
    const db = await this.#load();
    return { get: (ref) => entryOf(db, ref), list: () => listOf(db) };
  }

  /** Adds (or replaces) an image record and points `names` at it (moving them from other images). */
  async put(input: ImageRecordInput, names: readonly string[] = [], how: TagMove = { by: 'tag' }): Promise<ImageRecord> {
    const record = imageRecordSchema.parse(input);
    return this.#update((db) => {
      const old = db.images[record.digest];
      if (old) record.extraBlobs = [...new Set([...old.extraBlobs, ...record.extraBlobs])];
      if (old?.index && !record.index) record.index = old.index;
      db.images[record.digest] = record;
      for (const n of names) point(db, n, record.digest, how);
      return record;
    });
  }

  /** The journal of `name`: every digest it pointed to, oldest first. */
  async journal(name: string): Promise<JournalEntry[]> {
    return (await this.#load()).journal[name] ?? [];
  }

  /**
   * Image digest → the names whose journal still lists it as an earlier version (not where the
   * name points now): what `rollback` may need, kept by rmi and prune unless told.
   */
  async keptByJournal(): Promise<Map<string, string[]>> {
    const db = await this.#load();
    const out = new Map<string, string[]>();
    for (const [name, log] of Object.entries(db.journal)) {
      for (const e of log) {
        if (e.digest === db.refs[name] || !db.images[e.digest]) continue;
        const names = out.get(e.digest) ?? [];
        if (!names.includes(name)) out.set(e.digest, [...names, name]);
      }
    }
    return out;
  }

  /** Drops `digest` from every journal (rmi/prune --forget). */
  async forget(digest: string): Promise<void> {
    await this.#update((db) => {
      for (const [name, log] of Object.entries(db.journal)) {
        const kept = log.filter((e) => e.digest !== digest || e.digest === db.refs[name]);
        if (kept.length) db.journal[name] = kept;
        else delete db.journal[name];
      }
    });
  }

  /**
   * Moves `name` back to `digest` (an image still in the store), with a 'rollback' line naming
   * where it pointed before; returns that digest.
   */
  async rollback(name: string, digest: string): Promise<string | undefined> {
    parseDigest(digest);
    return this.#update((db) => {
      if (!db.images[digest]) throw new NotFoundError(`image ${digest} is no longer in the store: ${name} cannot be moved back to it`);
      const was = db.refs[name];
      point(db, name, digest, { by: 'rollback', ...(was ? { from: was } : {}) });
      return was;
    });
  }

  /** Keeps `blobs` with an image (as extra blobs): what a push made for it, such as compressed layers and the manifest sent. */
  async keepBlobs(digest: string, blobs: readonly string[]): Promise<void> {
    parseDigest(digest);
    for (const b of blobs) parseDigest(b);
    // kept already (every push after the first): no rewrite of images.json, no fsync
    const now = (await this.#load()).images[digest];
    if (now && blobs.every((b) => now.extraBlobs.includes(b) || b === now.digest)) return;
    await this.#update((db) => {
      const record = db.images[digest];
      if (!record) throw new NotFoundError(`image ${digest} is not in the store`);
      record.extraBlobs = [...new Set([...record.extraBlobs, ...blobs])];
    });
  }

  /** Points `name` at an existing image. */
  async tag(name: string, digest: string, how: TagMove = { by: 'tag' }): Promise<void> {
    parseDigest(digest);
    await this.#update((db) => {
      if (!db.images[digest]) throw new NotFoundError(`image ${digest} is not in the store`);
      point(db, name, digest, how);
    });
  }

  /** Removes a name, and its journal with it; returns the digest it pointed to (undefined when it was unknown). */
  async untag(name: string): Promise<string | undefined> {
    return this.#update((db) => {
      const digest = db.refs[name];
      delete db.refs[name];
      delete db.journal[name];
      return digest;
    });
  }

  /**
   * Removes an image record and every name pointing to it; returns those names. Blobs stay until gc().
   * `namesOnly`: the record stays, dangling (docker's `rmi -f` of an image a container still uses).
   */
  async remove(digest: string, opts: { namesOnly?: boolean } = {}): Promise<string[]> {
    parseDigest(digest);
    return this.#update((db) => {
      if (!db.images[digest]) throw new NotFoundError(`image ${digest} is not in the store`);
      const names = namesOf(db, digest);
      for (const n of names) {
        delete db.refs[n];
        delete db.journal[n];
      }
      if (!opts.namesOnly) delete db.images[digest];
      return names;
    });
  }

  /** Digests of the images that use `digest` as manifest, config, layer blob, extra blob, diff id or chain id. */
  async references(digest: string): Promise<string[]> {
    const db = await this.#load();
    return Object.values(db.images)
      .filter((r) => blobsOf(r).includes(digest) || r.layers.some((l) => l.chainId === digest || l.diffId === digest))
      .map((r) => r.digest);
  }

  /**
   * Removes every blob and layer that no image record references and `inUse` does not name. Holds the
   * lease exclusively, so it waits for ingests, unpacks and pulls that hold it shared (Store.withLease).
   */
  async gc(inUse?: () => InUse | Promise<InUse>): Promise<GcResult> {
    return withLock(this.layout.leaseLock, async () => {
      const db = await this.#load();
      const used = (await inUse?.()) ?? {};
      const keepBlobs = new Set<string>(used.blobs ?? []);
      const keepLayers = new Set<string>();
      for (const r of Object.values(db.images)) {
        for (const b of blobsOf(r)) keepBlobs.add(b);
        for (const l of r.layers) keepLayers.add(l.chainId);
      }
      for (const top of used.layers ?? []) {
        for (let id: string | undefined = top; id !== undefined && !keepLayers.has(id); ) {
          keepLayers.add(id);
          id = (await this.#layers.get(id).catch((err: unknown) => {
            // a layer of a running container gone already: the chain below it is not known here
            if (err instanceof NotFoundError) return undefined;
            throw err;
          }))?.parent;
        }
      }
      const removed: GcResult = { blobs: [], layers: [] };
      for (const l of await this.#layers.list()) {
        if (!keepLayers.has(l.chainId) && (await this.#layers.remove(l.chainId))) removed.layers.push(l.chainId);
      }
      for (const b of await this.#blobs.list()) {
        if (!keepBlobs.has(b) && (await this.#blobs.remove(b))) removed.blobs.push(b);
      }
      return removed;
    });
  }
}

/** ImageStore's lookups over one read of images.json. */
export interface ImageSnapshot {
  get(ref: string): ImageEntry | undefined;
  list(): ImageEntry[];
}

function entryOf(db: Db, ref: string): ImageEntry | undefined {
  const digest = isDigest(ref) ? ref : db.refs[ref];
  let record = digest === undefined ? undefined : db.images[digest];
  if (!record && isDigest(ref)) record = Object.values(db.images).find((r) => r.config === ref);
  return record ? { record, names: namesOf(db, record.digest) } : undefined;
}

function listOf(db: Db): ImageEntry[] {
  return Object.values(db.images).map((record) => ({ record, names: namesOf(db, record.digest) }));
}

function namesOf(db: Db, digest: string): string[] {
  return Object.entries(db.refs)
    .filter(([, d]) => d === digest)
    .map(([n]) => n)
    .sort();
}

function blobsOf(r: ImageRecord): string[] {
  return [r.digest, r.config, ...r.layers.map((l) => l.digest), ...r.extraBlobs];
}
