/**
 * `Image`: images in the local store (pull, list, get, tag, remove, history) and the resolver that
 * lets `Container.run({ image })` start from them. Content, layers and records live in lib/storage;
 * registries are spoken to through lib/image/registry.
 */
import type { ImportOptions, ImportSource } from './archive/import.js';
import type { PushOptions, PushResult } from './push.js';
import { mkdirSync, type BigIntStats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { InvalidStateError, NotFoundError } from '../errors.js';
import { pickRollback } from './rollback.js';
import type { ImageRunConfig, PullPolicy, ResolvedImage } from '../runtime/image-source.js';
import { chainId, Store, type GcResult, type ImageEntry, type ImageRecord, type ImageSnapshot, type JournalEntry, type LayerUnpackOptions } from '../storage/index.js';
import { defaultRoot } from '../storage/layout.js';
import { isDigest, parseReference, type Reference } from './reference.js';
// The registry client (got) and the archive code load only when a pull, save or load needs them:
// running a local image is the common case and should not pay for them.
import type { BlobProgress, Credentials, History, ImageConfig, PlatformSpec } from './registry/index.js';
import type { Provenance } from './provenance.js';
import { ImageConfigSchema } from './registry/manifest.js';

export interface PullOptions {
  /** Per-layer progress: bytes done of total, and the phase ('downloading', 'retrying', 'done', 'unpacking', 'unpacked', 'exists'). */
  onProgress?: (p: PullProgress) => void;
  auth?: Credentials;
  /** 'linux/arm64/v8' or { os, architecture, variant }; default: this host's. */
  platform?: PlatformSpec;
  /** Registries reached over plain HTTP besides loopback ones. */
  insecureRegistries?: string[];
  /** The store (default $NSBOX_ROOT, /var/lib/nsbox as root). */
  root?: string;
  signal?: AbortSignal;
  /**
   * Unpack the layers now (default), or only fetch and verify the content: the layers are then
   * unpacked when a container first runs the image (or by `image.unpack()`).
   */
  unpack?: boolean;
}

export interface PullProgress {
  /** The layer's blob digest (or the image digest for 'resolved'). */
  id: string;
  phase: BlobProgress['phase'] | 'resolved' | 'exists' | 'unpacking' | 'unpacked';
  done?: number;
  total?: number;
}

export interface StoreOptions {
  root?: string;
}

const stores = new Map<string, Promise<Store>>();

/** One opened store per root per process (opening repairs crash leftovers once). */
function openStore(root = defaultRoot()): Promise<Store> {
  let s = stores.get(root);
  if (!s) {
    s = Store.open({ root });
    stores.set(root, s);
    // A failed open is seen by whoever awaits it; forgetting it lets the next call try again.
    s.catch(() => stores.delete(root));
  }
  return s;
}

/** The push's modules, loaded on the first push (an import() per push went through the loader each time). */
let pushLoaded: Promise<[typeof import('./registry/index.js'), typeof import('./push.js')]> | undefined;
const pushModules = () => (pushLoaded ??= Promise.all([import('./registry/index.js'), import('./push.js')]));

/** Containers of this process started from each image digest: such an image is not removed without force. */
const inUse = new Map<string, { count: number; topChainId: string | undefined }>();

/** The name an image is stored under: the fully qualified reference. */
function nameOf(ref: Reference): string {
  return ref.toString();
}

export class Image {
  /** The manifest digest: what a pull by digest names. */
  readonly digest: string;
  /** The names (fully qualified references) that point at it. */
  readonly names: string[];
  readonly record: ImageRecord;
  readonly config: ImageConfig;
  readonly #store: Store;

  private constructor(store: Store, entry: ImageEntry, config: ImageConfig) {
    this.#store = store;
    this.digest = entry.record.digest;
    this.names = entry.names;
    this.record = entry.record;
    this.config = config;
  }

  /** The image id docker shows: the config's digest. */
  get id(): string {
    return this.record.config;
  }
  /** Bytes of the compressed layers, as registries count them. */
  get size(): number {
    return this.record.layers.reduce((n, l) => n + l.size, 0);
  }
  get created(): string | undefined {
    return this.config.created;
  }
  get layers(): ImageRecord['layers'] {
    return this.record.layers;
  }
  history(): History[] {
    return this.config.history ?? [];
  }

  /** The unpacked layer directories, topmost first (overlay lower dirs); unpacks what is not yet. */
  async layerDirs(): Promise<string[]> {
    await this.unpack();
    const top = this.record.layers.at(-1);
    return top ? this.#store.layers.lowerDirs(top.chainId) : [];
  }

  /** Unpacks the layers not unpacked yet (after a pull with `unpack: false`, or a gc). */
  async unpack(): Promise<void> {
    const store = this.#store;
    await store.withLease(async () => {
      for (const [i, l] of this.record.layers.entries()) {
        if (await store.layers.has(l.chainId)) continue;
        if (!(await store.blobs.has(l.digest))) throw new NotFoundError(`image ${this.names[0] ?? this.digest}: layer ${l.digest} is not in the store; pull it again`);
        await store.layers.unpack(l.chainId, store.blobs.path(l.digest), {
          diffId: l.diffId,
          blobDigest: l.digest,
          ...(i > 0 ? { parentChainId: this.record.layers[i - 1]!.chainId } : {}),
        });
      }
    });
  }

  static async #load(store: Store, entry: ImageEntry): Promise<Image> {
    const config = ImageConfigSchema.parse(JSON.parse((await store.blobs.read(entry.record.config)).toString('utf8')));
    return new Image(store, entry, config);
  }

  /** Pulls from the registry: only what the store lacks is downloaded and unpacked. */
  static async pull(ref: string, options: PullOptions = {}): Promise<Image> {
    const reference = parseReference(ref);
    const store = await openStore(options.root);
    const { RegistryClient, pLimit } = await import('./registry/index.js');
    const client = new RegistryClient({
      ...(options.auth ? { auth: options.auth } : {}),
      ...(options.insecureRegistries ? { insecureRegistries: options.insecureRegistries } : {}),
    });
    const progress = options.onProgress ?? (() => {});
    const signal = options.signal;
    return store.withLease(async () => {
      const resolved = await client.resolve(reference, { ...(options.platform ? { platform: options.platform } : {}), ...(signal ? { signal } : {}) });
      progress({ id: resolved.digest, phase: 'resolved' });
      const diffIds = resolved.config.rootfs.diff_ids;
      const layers = resolved.manifest.layers;
      if (diffIds.length !== layers.length) {
        throw new InvalidStateError(`image ${nameOf(reference)}: the manifest has ${layers.length} layers but the config ${diffIds.length} diff ids`);
      }
      await store.blobs.ingest(resolved.manifestBytes, resolved.digest);
      await store.blobs.ingest(resolved.configBytes, resolved.manifest.config.digest);
      const kept: string[] = [];
      if (resolved.index) {
        await store.blobs.ingest(resolved.index.bytes, resolved.index.digest);
        const { fetchAttestations } = await import('./provenance.js');
        kept.push(resolved.index.digest, ...(await fetchAttestations(client, reference, store, resolved.index.index, resolved.digest, signal)));
      }
      mkdirSync(store.layout.blobsDir, { recursive: true });

      // Download (three at a time) and unpack each layer while it downloads; layers are unpacked
      // independently, keyed by chain id, so a layer shared with another image is reused as is.
      let parent: string | undefined;
      const chain = diffIds.map((diffId) => (parent = chainId(parent, diffId)));
      const limit = pLimit(3);
      const records = await Promise.all(
        layers.map((desc, i) =>
          limit(async () => {
            const chainId = chain[i]!;
            const diffId = diffIds[i]!;
            const layer = { digest: desc.digest, mediaType: desc.mediaType, size: desc.size, diffId, chainId };
            if (await store.layers.has(chainId)) {
              progress({ id: desc.digest, phase: 'exists', done: desc.size, total: desc.size });
              return layer;
            }
            const blobPath = store.blobs.path(desc.digest);
            const unpackOpts = {
              diffId,
              blobDigest: desc.digest,
              ...(i > 0 ? { parentChainId: chain[i - 1]! } : {}),
              ...(signal ? { signal } : {}),
            };
            if (!(await store.blobs.has(desc.digest))) {
              const fetched = await fetchLayer(client, reference, desc, blobPath, {
                store,
                chainId,
                unpack: options.unpack === false ? undefined : unpackOpts,
                progress: (p) => progress({ id: desc.digest, ...p }),
                signal,
              });
              if (fetched === 'unpacked' || options.unpack === false) return layer;
            } else if (options.unpack === false) {
              return layer;
            }
            progress({ id: desc.digest, phase: 'unpacking' });
            await store.layers.unpack(chainId, blobPath, unpackOpts);
            progress({ id: desc.digest, phase: 'unpacked' });
            return layer;
          }),
        ),
      );
      const cfg = resolved.config;
      await store.images.put(
        {
          digest: resolved.digest,
          mediaType: resolved.mediaType,
          config: resolved.manifest.config.digest,
          layers: records,
          extraBlobs: kept,
          platform: { os: cfg.os, architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) },
          ...(cfg.created ? { created: cfg.created } : {}),
          addedAt: new Date().toISOString(),
          ...(resolved.index ? { index: resolved.index.digest } : {}),
        },
        // 'name@digest' is kept as such; 'name:tag@digest' and 'name:tag' under 'name:tag'.
        reference.digest && !reference.tag ? [nameOf(reference)] : [nameOf(withoutDigest(reference))],
        { by: 'pull', from: reference.toString() },
      );
      return Image.get(reference.digest ? resolved.digest : nameOf(reference), { root: store.layout.root });
    });
  }

  /**
   * Pushes the image named `ref` ('host:5000/app:1'; `:latest` when untagged) to that registry:
   * only the blobs the repository lacks are sent (see push.ts). `image` names another image of
   * the store to push under `ref` instead.
   */
  static async push(ref: string, options: PushOptions & StoreOptions & { image?: string } = {}): Promise<PushResult> {
    const target = parseReference(ref);
    const [store, [{ RegistryClient }, { pushStoredImage }]] = await Promise.all([openStore(options.root), pushModules()]);
    const client = new RegistryClient({
      ...(options.auth ? { auth: options.auth } : {}),
      ...(options.insecureRegistries ? { insecureRegistries: options.insecureRegistries } : {}),
    });
    const stopPing = new AbortController();
    // The registry's ping (and auth challenge) goes first, while images.json is read: the push's
    // own ping joins it, and its first requests wait for it. A failure is met again, and told, by
    // the push's first request. A push that fails before it reaches the registry (no such image)
    // stops the ping, and returns once it ended.
    const pinged = client.ping(target.domain, options.signal ? AbortSignal.any([options.signal, stopPing.signal]) : stopPing.signal).catch(() => {});
    try {
      // images.json read once for the whole push (the image, its platforms, the mount sources)
      const images = await store.images.snapshot();
      const entry = lookUp(images, options.image ?? ref);
      if (!entry) throw new NotFoundError(`An image does not exist locally with the tag: ${target.familiar}`, { code: 'ENOENT' });
      const { root: _root, image: _image, ...opts } = options;
      return await store.withLease(() => pushStoredImage(store, client, entry, target, opts, images));
    } catch (err) {
      stopPing.abort();
      throw err;
    } finally {
      await pinged;
    }
  }

  /** An image in the store, by name ('busybox', 'host:5000/app:1') or digest; NotFoundError otherwise. */
  static async get(ref: string, options: StoreOptions = {}): Promise<Image> {
    const store = await openStore(options.root);
    const entry = await findEntry(store, ref);
    if (!entry) throw new NotFoundError(`No such image: ${ref}`, { code: 'ENOENT' });
    return Image.#load(store, entry);
  }

  static async list(options: StoreOptions = {}): Promise<Image[]> {
    const store = await openStore(options.root);
    return Promise.all((await store.images.list()).map((e) => Image.#load(store, e)));
  }

  /**
   * Loads a docker-archive (`docker save`) or oci-archive tar, gzipped or not, from a file or a
   * stream, or an OCI layout directory. `name` names an image the archive names only by tag.
   */
  static async load(source: string | NodeJS.ReadableStream, options: StoreOptions & { name?: string } = {}): Promise<Image[]> {
    const store = await openStore(options.root);
    const { loadImages } = await import('./archive/load.js');
    const loaded = await loadImages(store, source, options.name === undefined ? {} : { name: options.name });
    return Promise.all(loaded.map((l) => Image.get(l.digest, { root: store.layout.root })));
  }

  /**
   * docker import: a tar of a root filesystem (plain or gzipped; a file, an http(s) URL or a stream)
   * as a one-layer image, named `name` (else dangling), with `config` as its container config
   * (`importImage` in lib/build takes Dockerfile instructions instead).
   */
  static async import(source: ImportSource, options: StoreOptions & ImportOptions = {}): Promise<Image> {
    const store = await openStore(options.root);
    const { importRootfs } = await import('./archive/import.js');
    const { root: _root, ...opts } = options;
    const imported = await importRootfs(store, source, opts);
    return Image.get(imported.digest, { root: store.layout.root });
  }

  /** Writes this image as a docker-archive (default: what `docker load` reads) or an oci-archive. */
  async save(file: string, options: { format?: 'docker' | 'oci' } = {}): Promise<void> {
    const { saveImage } = await import('./archive/save.js');
    await saveImage(this.#store, { record: this.record, names: this.names }, file, options);
  }

  /** Adds a name for this image (or moves the name here: its journal says so). */
  async tag(ref: string): Promise<void> {
    await this.#store.images.tag(nameOf(parseReference(ref)), this.digest);
  }

  /**
   * Who made this image, when, how and from what: the manifest's org.opencontainers.image.*
   * annotations and the in-toto SLSA statements attached to it (written at build, commit and
   * import; fetched by pull when the registry's index has them).
   */
  async provenance(): Promise<Provenance> {
    const { readProvenance } = await import('./provenance.js');
    return readProvenance(this.#store, this.record);
  }

  /** The journal of a tag: every image it pointed to, oldest first (when, by which build, pull, commit, tag, import or rollback, and who). */
  static async log(ref: string, options: StoreOptions = {}): Promise<JournalEntry[]> {
    const store = await openStore(options.root);
    const name = nameOf(parseReference(ref));
    const log = await store.images.journal(name);
    if (!log.length && !(await store.images.get(name))) throw new NotFoundError(`No such image: ${ref}`, { code: 'ENOENT' });
    return log;
  }

  /**
   * Moves a tag back to an image it pointed to before: `to` a digest (or a unique prefix of one) from
   * its journal, or -N (N moves back; default -1, the previous image). Containers keep the image they
   * run. `push`: the tag is moved on its registry too (the image is pushed under it).
   */
  static async rollback(ref: string, options: StoreOptions & { to?: string | number; push?: boolean | PushOptions } = {}): Promise<{ from: string | undefined; to: string; pushed?: PushResult }> {
    const store = await openStore(options.root);
    const name = nameOf(parseReference(ref));
    const log = await store.images.journal(name);
    const current = (await store.images.get(name))?.record.digest;
    const to = pickRollback(ref, log, current, options.to ?? -1);
    const from = await store.images.rollback(name, to);
    const out: { from: string | undefined; to: string; pushed?: PushResult } = { from, to };
    if (options.push) out.pushed = await Image.push(ref, { ...(typeof options.push === 'object' ? options.push : {}), ...(options.root === undefined ? {} : { root: options.root }) });
    return out;
  }

  /**
   * Removes a name; when it was the image's last name (or `ref` is a digest), the image itself, and
   * then the blobs and layers no other image needs. Refused while a container of this process uses
   * the image, unless `force`. The unnamed records of its index's other platforms (loaded or pulled
   * with it) go too, once no named image keeps that index, unless a container uses them (`used`:
   * the digests the caller's containers were made from) or a journal keeps them.
   */
  static async remove(ref: string, options: StoreOptions & { force?: boolean; forget?: boolean; used?: ReadonlySet<string> } = {}): Promise<{ untagged: string[]; deleted: string[] }> {
    const store = await openStore(options.root);
    const entry = await findEntry(store, ref);
    if (!entry) throw new NotFoundError(`No such image: ${ref}`, { code: 'ENOENT' });
    const named = !isDigest(ref) && !ref.includes('@');
    const byName = named && entry.names.length > 1;
    if (byName) {
      const name = nameOf(parseReference(ref));
      await store.images.untag(name);
      return { untagged: [name], deleted: [] };
    }
    if ((inUse.get(entry.record.digest)?.count ?? 0) > 0 && !options.force) {
      throw new InvalidStateError(`image ${ref} is in use by a container: stop and remove the container, or use force`);
    }
    // An earlier version a tag's journal keeps (for rollback) stays unless told to forget it.
    const keptBy = (await store.images.keptByJournal()).get(entry.record.digest)?.filter((n) => !entry.names.includes(n)) ?? [];
    if (keptBy.length && !options.forget) {
      if (named) return { untagged: await store.images.remove(entry.record.digest, { namesOnly: true }), deleted: [] };
      throw new InvalidStateError(`image ${ref} is kept for rollback by the journal of ${keptBy.map((n) => parseReference(n).familiar).join(', ')} (nsbox image log ${parseReference(keptBy[0]!).familiar}): remove it with --forget, which also drops it from that journal`);
    }
    if (keptBy.length) await store.images.forget(entry.record.digest);
    const untagged = await store.images.remove(entry.record.digest);
    // The other platforms of its index go with it, once no named image keeps that index.
    const journal = await store.images.keptByJournal();
    const others = entry.record.index === undefined ? [] : (await store.images.snapshot()).list().filter((e) => e.record.index === entry.record.index);
    const deleted = [entry.record.digest];
    if (!others.some((e) => e.names.length)) {
      for (const e of others) {
        const d = e.record.digest;
        if ((inUse.get(d)?.count ?? 0) > 0 || options.used?.has(d) || journal.has(d)) continue;
        await store.images.remove(d);
        deleted.push(d);
      }
    }
    const gc = await Image.collectGarbage(store);
    return { untagged, deleted: [...deleted, ...gc.blobs, ...gc.layers] };
  }

  /**
   * Removes the blobs and layers that no image, no container of this process and no build-cache
   * record needs (the build cache outlives the images built with it, as docker's does).
   */
  static async collectGarbage(store: Store): Promise<GcResult> {
    return store.images.gc(async () => {
      const cache = await store.buildCache.refs();
      return { layers: [...[...inUse.values()].map((u) => u.topChainId).filter((c): c is string => c !== undefined), ...cache.layers], blobs: cache.blobs };
    });
  }
}

type Client = InstanceType<typeof import('./registry/index.js').RegistryClient>;

/**
 * Downloads a layer's blob into the store and, when `unpack` is given, unpacks it in the same pass
 * (LayerStream): the layer is published only once the blob's digest and the tar's diff id both
 * matched; a mismatch leaves neither blob nor layer. 'unpacked' when that happened; 'fetched' when
 * only the blob is here (no unpack asked, or a retry started the download over, which the unpack
 * cannot follow: the caller then unpacks from the file).
 */
async function fetchLayer(
  client: Client,
  reference: Reference,
  desc: { digest: string; size: number; mediaType: string },
  blobPath: string,
  o: {
    store: Store;
    chainId: string;
    unpack: LayerUnpackOptions | undefined;
    progress: (p: Omit<PullProgress, 'id'>) => void;
    signal: AbortSignal | undefined;
  },
): Promise<'unpacked' | 'fetched'> {
  const stream = o.unpack ? o.store.layers.stream(o.chainId, o.unpack) : undefined;
  let abandoned: Promise<void> | undefined;
  try {
    await client.fetchBlob(reference, desc, blobPath, {
      onProgress: (p) => {
        o.progress({ phase: p.phase, done: p.done, total: p.total });
        // the bytes are in and verified; the unpack finishes behind them
        if (p.phase === 'done' && stream && !abandoned) o.progress({ phase: 'unpacking' });
      },
      ...(o.signal ? { signal: o.signal } : {}),
      ...(stream
        ? { tee: { write: (c: Buffer) => stream.write(c), verify: () => stream.verify(), abandon: () => void (abandoned = stream.abort()) } }
        : {}),
    });
  } catch (err) {
    await (abandoned ?? stream?.abort(err));
    throw err;
  }
  if (!stream) return 'fetched';
  if (abandoned) {
    await abandoned;
    return 'fetched';
  }
  await stream.commit();
  o.progress({ phase: 'unpacked' });
  return 'unpacked';
}

function withoutDigest(ref: Reference): Reference {
  return parseReference(ref.tag ? `${ref.name}:${ref.tag}` : ref.name);
}

async function findEntry(store: Store, ref: string): Promise<ImageEntry | undefined> {
  return lookUp(await store.images.snapshot(), ref);
}

/** findEntry in images read already. */
function lookUp(images: ImageSnapshot, ref: string): ImageEntry | undefined {
  if (isDigest(ref)) return images.get(ref);
  const r = parseReference(ref);
  return images.get(r.digest ?? nameOf(r));
}


/**
 * What resolveForContainer found for a reference, kept while images.json is the very file it was
 * read from (its inode, size and mtime: every change of it is a rename of a new file) and each of
 * the image's layers is still unpacked: a container's create and each of its starts resolve the
 * same image, each otherwise a dozen reads and parses (the index, the config, every layer).
 */
interface Resolution {
  imagesKey: string;
  markers: string[];
  ref: string;
  digest: string;
  topChainId: string | undefined;
  layers: string[];
  config: ImageRunConfig;
}
const resolutions = new Map<string, Resolution>();
const statKey = (st: BigIntStats) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

async function imagesFileKey(store: Store): Promise<string | undefined> {
  return stat(store.layout.imagesFile, { bigint: true }).then(statKey, () => undefined);
}

async function cachedResolution(store: Store, ref: string): Promise<Resolution | undefined> {
  const key = `${store.layout.root}\0${ref}`;
  const hit = resolutions.get(key);
  if (!hit) return undefined;
  const [imagesKey, ...unpacked] = await Promise.all([imagesFileKey(store), ...hit.markers.map((m) => stat(m).then((st) => st.isFile(), () => false))]);
  if (imagesKey === hit.imagesKey && unpacked.every(Boolean)) return hit;
  resolutions.delete(key);
  return undefined;
}

/** What `Container.run({ image })` gets (its `images` dependency): the layers to stack and the config's defaults. */
export async function resolveForContainer(ref: string, { pull, root }: { pull: PullPolicy; root?: string }): Promise<ResolvedImage> {
  const store = await openStore(root);
  const r = (pull === 'always' ? undefined : await cachedResolution(store, ref)) ?? (await resolveInStore(store, ref, root, pull));
  const use = inUse.get(r.digest) ?? { count: 0, topChainId: r.topChainId };
  use.count++;
  inUse.set(r.digest, use);
  return {
    ref: r.ref,
    digest: r.digest,
    layers: [...r.layers],
    config: structuredClone(r.config),
    release: () => {
      if (--use.count <= 0) inUse.delete(r.digest);
    },
  };
}

/** resolveForContainer's reads: the image by `ref` (pulled as `pull` allows), its layers unpacked; kept for the next call. */
async function resolveInStore(store: Store, ref: string, root: string | undefined, pull: PullPolicy): Promise<Resolution> {
  const where = root === undefined ? {} : { root };
  // Before the reads: a change after this is a new key, so what is kept is never newer than its key.
  const imagesKey = await imagesFileKey(store);
  let image: Image | undefined;
  if (pull !== 'always') image = await Image.get(ref, where).catch((e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
  if (!image) {
    if (pull === 'never') throw new NotFoundError(`No such image: ${ref} (pull: 'never')`, { code: 'ENOENT' });
    image = await Image.pull(ref, where);
  }
  const r: Resolution = {
    imagesKey: imagesKey ?? '',
    markers: image.record.layers.map((l) => store.layout.layerMarker(l.chainId)),
    ref: image.names[0] ?? image.digest,
    digest: image.digest,
    topChainId: image.layers.at(-1)?.chainId,
    layers: await image.layerDirs(),
    config: (image.config.config ?? {}) as ImageRunConfig,
  };
  if (resolutions.size >= 256) resolutions.clear();
  if (imagesKey !== undefined) resolutions.set(`${store.layout.root}\0${ref}`, r);
  return r;
}

