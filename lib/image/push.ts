/**
 * Push of an image in the store to a registry, as docker's push does it: each layer's blob (pulled
 * compressed, or gzipped once: push-layer.ts) is checked with HEAD and skipped when the repository
 * has it ("Layer already exists"); else mounted from another repository of the same registry known
 * to have it (the store's distribution record, and the image's own names there); else uploaded.
 * Unlike docker, a blob the store does not know the repository to have is asked for with one POST,
 * a mount from the repository itself (201: there; 202: an upload session), or, when another
 * repository may lend it, with its mount POST beside the HEAD: one round trip less per new blob.
 * A layer or config the store's record places in this very repository (pushed or found there
 * before) costs no request: the manifest's PUT is the check, and a manifest refused for a blob the
 * registry lost since has those blobs checked and sent, and goes once more.
 * The config goes beside the layers and the manifest last, so the registry never holds a manifest
 * whose blobs are not all there. Manifests go in the image's own media type; a registry that
 * refuses an OCI manifest or index (415, or 400 MANIFEST_INVALID) gets it again once as Docker
 * schema2 / a manifest list (docker-manifest.ts), and is remembered as such in the store's
 * distribution record, so later pushes there go as Docker at once. A push cut short leaves only
 * upload sessions the registry never completed (invisible to its API) and, locally, a temp file
 * the store's repair removes: the next push starts over from the HEADs.
 */
import { readFile } from 'node:fs/promises';
import * as z from 'zod';
import { InvalidStateError, NotFoundError, ValidationError } from '../errors.js';
import type { DistributionSnapshot, ImageEntry, ImageSnapshot, Store } from '../storage/index.js';
import { sha256 } from '../storage/index.js';
import { dockerManifestList, isOciType, refusesMediaType, toDockerManifest } from './docker-manifest.js';
import { layerBlobForPush, type PushBlob } from './push-layer.js';
import type { Reference } from './reference.js';
import { RegistryError, type Credentials, type OpenedUpload, type RegistryClient } from './registry/index.js';
import { ImageIndexSchema, ImageManifestSchema, MediaType, type Descriptor, type ImageIndex } from './registry/manifest.js';
import { ATTESTATION, IN_TOTO, REF_DIGEST, REF_TYPE } from './provenance.js';
import { pLimit } from './registry/p-limit.js';

export interface PushOptions {
  /** Credentials for the registry, asked before ~/.docker/config.json. */
  auth?: Credentials;
  /** Registries reached over plain HTTP besides loopback ones. */
  insecureRegistries?: string[];
  onProgress?: (p: PushProgress) => void;
  signal?: AbortSignal;
  /** Layers uploaded at once (default 3). */
  concurrency?: number;
}

export interface PushProgress {
  /** The layer's diff id (docker shows its first 12 hex digits). */
  id: string;
  /**
   * 'preparing' (compressing, when the layer is a plain tar), 'pushing' (bytes sent of total),
   * then one of 'pushed', 'exists' (the repository had it) and 'mounted' (from `from`, another
   * repository of the registry).
   */
  phase: 'preparing' | 'pushing' | 'pushed' | 'exists' | 'mounted';
  done?: number;
  total?: number;
  from?: string;
}

export interface PushResult {
  /** The reference pushed to (`host/path:tag`). */
  reference: string;
  tag: string;
  /** The digest the tag now has on the registry: the index's, when the image went with one (provenance, platforms). */
  digest: string;
  /** That manifest's or index's size in bytes. */
  size: number;
  /** Its media type: the image's own, or Docker's when the registry refuses OCI (see `ManifestFormat`). */
  mediaType: string;
  /** What did not go and why (provenance left out where the registry takes no OCI manifest). */
  warnings: string[];
  /** The image manifest's digest on the registry (the same as `digest` when no index went). */
  manifest: string;
  layers: Array<{ diffId: string; digest: string; how: 'pushed' | 'exists' | 'mounted' }>;
}

/** The manifest as pushed: the stored one when every layer goes as stored, else the same with the pushed layers. */
function manifestFor(stored: Buffer, storedLayers: readonly Descriptor[], blobs: readonly PushBlob[]): Buffer {
  const same = blobs.every((b, i) => storedLayers[i]?.digest === b.digest);
  if (same) return stored;
  const json = z.looseObject({ layers: z.array(z.looseObject({})) }).parse(JSON.parse(stored.toString('utf8')));
  json.layers = blobs.map((b, i) => {
    const { urls: _urls, ...rest } = storedLayers[i] as Descriptor;
    return { ...rest, mediaType: b.mediaType, digest: b.digest, size: b.size };
  });
  return Buffer.from(JSON.stringify(json));
}

/**
 * What one push reads once and learns: the store's images and distribution record (each parsed
 * once, whatever the number of blobs and platforms), and the blobs it found or put in the
 * repository, remembered in one write at the end.
 */
interface PushContext {
  store: Store;
  client: RegistryClient;
  target: Reference;
  /** `host/path` */
  repository: string;
  opts: PushOptions;
  fmt: ManifestFormat;
  images: ImageSnapshot;
  dist: DistributionSnapshot;
  /** The push's signal: the caller's, and aborted by the push itself when one of its requests fails. */
  signal: AbortSignal;
  /** Blobs the repository has now (uploaded, mounted, or there already): remembered once the push succeeded. */
  learnt: Set<string>;
  /** Blobs taken as there without a request (the store's record places them in this repository): see putAfterBlobs. */
  trusted: Set<string>;
  /** Another repository of the registry known to have the blob, for a cross-repository mount. */
  mountSource(digest: string): string | undefined;
}

/**
 * Blob digest → repositories of `domain` that had it when a local image named there was pulled or
 * pushed: the store's images under a name on that registry, with their blobs (docker keeps the same
 * from its pulls, in its distribution metadata).
 */
function repositoriesInStore(images: ImageSnapshot, domain: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { record, names } of images.list()) {
    const repos = [...new Set(names.filter((n) => n.startsWith(`${domain}/`)).map((n) => n.replace(/(?::[^/:@]+)?(?:@.*)?$/, '')))];
    if (!repos.length) continue;
    for (const d of [record.config, ...record.layers.map((l) => l.digest)]) out.set(d, [...(out.get(d) ?? []), ...repos]);
  }
  return out;
}

/**
 * Awaits every promise (none is left running) and throws the first to reject; that first
 * rejection aborts `stop`, so that the others (requests taking the push's signal) end soon. An
 * abort is thrown only when nothing else failed: the requests it ended may reject before the
 * failure that caused it reaches this call (through another settleAll).
 */
async function settleAll<T>(promises: ReadonlyArray<Promise<T>>, stop?: AbortController): Promise<T[]> {
  let first: { err: unknown } | undefined;
  const settled = await Promise.allSettled(promises.map((p) => p.catch((err: unknown) => {
    if (!first || (isAbort(first.err) && !isAbort(err))) first = { err };
    stop?.abort();
    throw err;
  })));
  if (first) throw first.err;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

function isAbort(err: unknown): boolean {
  return (err instanceof RegistryError && err.code === 'ABORTED') || (err as { name?: string } | undefined)?.name === 'AbortError';
}

/**
 * Pushes `entry` to `target` (a tag; `latest` when it has none). Call it holding the store's lease
 * (Store.withLease), so that the blobs it makes survive until the image record keeps them. An image
 * kept with an index (its provenance's, or the platforms of a multi-platform image) goes as an
 * index: each platform's manifest the store has and its attestations by digest, the index under the
 * tag, holding only what was pushed. `images`: the store's images as the caller read them.
 *
 * Each manifest goes as soon as its own blobs are in (an image manifest beside its attestation's),
 * the index last. What the push learnt of the repository is written once the registry took the
 * tag (the manifests it took are the proof that it has their blobs). Nothing of a push runs on
 * after it returns: its first failure aborts its other requests, and it returns once they ended.
 */
export async function pushStoredImage(store: Store, client: RegistryClient, entry: ImageEntry, target: Reference, opts: PushOptions = {}, images?: ImageSnapshot): Promise<PushResult> {
  if (target.digest) throw new ValidationError(`cannot push a digest reference (${target.familiar}): push a tag`, 'reference');
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  // The registry's ping (and auth challenge) while the store is read; a failure is met again, and
  // told, by the first request that needs it.
  const pinged = client.ping(target.domain, signal).catch(() => {});
  try {
    return await pushWith(store, client, entry, target, opts, images, stop, signal);
  } catch (err) {
    stop.abort();
    throw err;
  } finally {
    await pinged;
  }
}

async function pushWith(store: Store, client: RegistryClient, entry: ImageEntry, target: Reference, opts: PushOptions, images: ImageSnapshot | undefined, stop: AbortController, signal: AbortSignal): Promise<PushResult> {
  const tag = target.tag ?? 'latest';
  const repository = `${target.domain}/${target.path}`;
  const record = entry.record;
  // What the push reads of the store, at once: the image's own manifest and blobs prepared (it is
  // the image alone, or the index's first platform), the distribution record, the index and its
  // platforms, and the image's attestations as soon as the index names them.
  const own = prepareManifest(store, entry, opts);
  const ownAttestations = new Map<string, Promise<StoredAttestation>>();
  const found = (async () => {
    const snapshot = images ?? (await store.images.snapshot());
    let indexBytes: Buffer | undefined;
    try {
      indexBytes = record.index ? store.blobs.readSmall(record.index) : undefined;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      // collected: the image goes alone
    }
    const index = indexBytes ? ImageIndexSchema.parse(JSON.parse(indexBytes.toString('utf8'))) : undefined;
    for (const m of index?.manifests ?? []) {
      if (m.annotations?.[REF_TYPE] !== ATTESTATION || m.annotations[REF_DIGEST] !== record.digest || ownAttestations.has(m.digest)) continue;
      const read = readAttestation(store, m);
      read.catch(() => {}); // awaited when used, and before the push returns
      ownAttestations.set(m.digest, read);
    }
    const platforms = index ? await localPlatforms(store, snapshot, index, record.digest) : [];
    return { snapshot, index, platforms };
  })();
  try {
    return await pushFound(store, client, entry, target, opts, stop, signal, { own, found, ownAttestations, tag, repository });
  } finally {
    await Promise.allSettled(ownAttestations.values());
  }
}

async function pushFound(
  store: Store, client: RegistryClient, entry: ImageEntry, target: Reference, opts: PushOptions, stop: AbortController, signal: AbortSignal,
  reads: { own: Promise<Prepared>; found: Promise<{ snapshot: ImageSnapshot; index: ImageIndex | undefined; platforms: ImageEntry[] }>; ownAttestations: Map<string, Promise<StoredAttestation>>; tag: string; repository: string },
): Promise<PushResult> {
  const { own, found, ownAttestations, tag, repository } = reads;
  const record = entry.record;
  const [{ snapshot, index, platforms }, dist] = await settleAll<unknown>([found, (async () => store.distribution.snapshot())(), own]) as [Awaited<typeof found>, DistributionSnapshot];
  let local: Map<string, string[]> | undefined;
  const ctx: PushContext = {
    store, client, target, repository, opts, images: snapshot, dist, signal,
    fmt: manifestFormat(dist, target.domain),
    learnt: new Set(),
    trusted: new Set(),
    mountSource: (d) => {
      local ??= repositoriesInStore(snapshot, target.domain);
      const hit = [...dist.repositoriesOf(d), ...(local.get(d) ?? [])].find((r) => r.startsWith(`${target.domain}/`) && r !== repository);
      return hit?.slice(target.domain.length + 1);
    },
  };
  const fmt = ctx.fmt;
  const warnings: string[] = [];
  const attested = index ? index.manifests.filter((m) => m.annotations?.[REF_TYPE] === ATTESTATION && platforms.some((p) => p.record.digest === m.annotations?.[REF_DIGEST])) : [];
  const noProvenance = () => warnings.push(`${target.domain} takes no OCI manifests: the image went as Docker schema2, without its provenance attestation`);
  if (attested.length && fmt.docker) noProvenance();
  if (!index || (platforms.length === 1 && (!attested.length || fmt.docker))) {
    const p = await own;
    const layers = await sendBlobs(ctx, p, stop);
    const one = await putAfterBlobs(ctx, p, layers, stop, () => putImageManifest(client, repository, tag, p.manifest, record.mediaType, fmt, signal));
    // Kept only once the registry took it: a refused push leaves the image's record and what the
    // store knows of the registry as they were (a blob made for the push stays in the blob store,
    // found again by its distribution record).
    const blobs = p.blobs.map((b) => b.digest);
    await settleAll([keepPushed(store, entry, [one], blobs), remember(ctx)]);
    return { reference: `${repository}:${tag}`, tag, digest: one.digest, size: one.bytes.length, mediaType: one.mediaType, manifest: one.digest, layers, warnings };
  }
  // Every manifest is known before any upload: the attestations name the pushed manifests. Their
  // stored bytes are read while the images' manifests are prepared.
  const attReads = fmt.docker ? [] : attested.map((m) => ownAttestations.get(m.digest) ?? readAttestation(store, m));
  for (const r of attReads) r.catch(() => {}); // awaited below
  let prepared: Prepared[];
  try {
    prepared = await settleAll(platforms.map((p) => (p.record.digest === record.digest ? own : prepareManifest(store, p, opts))));
  } catch (err) {
    await Promise.allSettled(attReads);
    throw err;
  }
  const preparedOf = new Map(prepared.map((p) => [p.entry.record.digest, p]));
  // The images' blobs go while their attestations are made (read, rewritten for the pushed digest).
  const blobsIn = prepared.map((p) => sendBlobs(ctx, p, stop));
  for (const b of blobsIn) b.catch(() => {}); // awaited below; the first failure aborts the others
  const atts = new Map<Descriptor, Awaited<ReturnType<typeof attestationFor>> & { subject: string }>();
  if (!fmt.docker) {
    try {
      const made = await settleAll(attested.map(async (m, i) => {
        const subject = preparedOf.get(m.annotations![REF_DIGEST]!)!.digest;
        return [m, { ...(await attestationFor(store, m, await attReads[i]!, subject)), subject }] as const;
      }));
      for (const [m, att] of made) atts.set(m, att);
    } catch (err) {
      stop.abort();
      await Promise.allSettled([...blobsIn, ...attReads]);
      throw err;
    }
  }
  const attBlobsIn = [...atts.values()].map((att) => settleAll(att.blobs.map((b) => sendBlob(ctx, { mediaType: b.mediaType, digest: b.digest, size: b.bytes.length }, b.bytes)), stop));
  let refused = false;
  const attsIn = [...atts.entries()].map(async ([m, att], i) => {
    await settleAll<unknown>([attBlobsIn[i], att.keep()], stop);
    try {
      await client.pushManifest(`${repository}@${att.digest}`, att.bytes, MediaType.ociManifest, signal);
    } catch (err) {
      // An attestation is an OCI manifest with no Docker form: a registry refusing OCI does not get it.
      if (!refusesMediaType(err)) throw err;
      refused = true;
      fmt.refusal ??= err;
      atts.delete(m);
    }
  });
  const manifestsIn = prepared.map(async (p, i): Promise<[string, PushedManifest]> => {
    const layers = await blobsIn[i]!;
    const put = await putAfterBlobs(ctx, p, layers, stop, () => putImageManifest(client, repository, undefined, p.manifest, p.entry.record.mediaType, fmt, signal));
    return [p.entry.record.digest, { ...put, layers, blobs: p.blobs.map((b) => b.digest) }];
  });
  const settled = await settleAll<[string, PushedManifest] | void>([...manifestsIn, ...attsIn], stop);
  const pushed = new Map(settled.slice(0, manifestsIn.length) as Array<[string, PushedManifest]>);
  if (refused) {
    fmt.docker = true;
    noProvenance();
  }
  const listed = (withAttestations: boolean): Descriptor[] => {
    const entries: Descriptor[] = [];
    for (const m of index.manifests) {
      const mine = pushed.get(m.digest);
      const att = withAttestations ? atts.get(m) : undefined;
      if (mine) entries.push({ ...m, mediaType: mine.mediaType, digest: mine.digest, size: mine.bytes.length });
      else if (att) entries.push({ ...m, digest: att.digest, size: att.bytes.length, annotations: { ...m.annotations, [REF_DIGEST]: att.subject } });
    }
    return entries;
  };
  const mine = () => pushed.get(record.digest)!;
  /** As Docker: every manifest pushed as OCI goes again as schema2, then one alone under the tag, several in a list. */
  const asDocker = async (): Promise<{ digest: string; bytes: Buffer; mediaType: string }> => {
    for (const [d, p] of pushed) if (p.mediaType === MediaType.ociManifest) pushed.set(d, { ...p, ...(await putImageManifest(client, repository, undefined, p.bytes, p.mediaType, fmt, signal)) });
    if (pushed.size === 1) {
      const one = mine();
      await client.pushManifest(`${repository}:${tag}`, one.bytes, one.mediaType, signal);
      return { digest: one.digest, bytes: one.bytes, mediaType: one.mediaType };
    }
    const bytes = dockerManifestList(listed(false));
    await client.pushManifest(`${repository}:${tag}`, bytes, MediaType.dockerList, signal);
    return { digest: sha256(bytes), bytes, mediaType: MediaType.dockerList };
  };
  let top: { digest: string; bytes: Buffer; mediaType: string };
  if (fmt.docker) top = await asDocker();
  else {
    const entries = listed(true);
    const same = entries.length === index.manifests.length && entries.every((e, i) => e.digest === index.manifests[i]!.digest);
    const bytes = same ? store.blobs.readSmall(record.index!) : Buffer.from(JSON.stringify({ ...index, mediaType: index.mediaType ?? MediaType.ociIndex, manifests: entries }));
    const mediaType = index.mediaType ?? MediaType.ociIndex;
    try {
      await client.pushManifest(`${repository}:${tag}`, bytes, mediaType, signal);
      top = { digest: sha256(bytes), bytes, mediaType };
    } catch (err) {
      if (!isOciType(mediaType) || !refusesMediaType(err)) throw err;
      fmt.docker = true;
      try {
        top = await asDocker();
      } catch (again) {
        throw refusedTwice(err, again);
      }
      if (atts.size) noProvenance();
    }
  }
  // Kept only once the registry took the tag: a refused push leaves every image record, and what
  // the store knows of the registry, as they were.
  const platformOf = new Map(platforms.map((p) => [p.record.digest, p]));
  const kept = (async () => {
    for (const [d, p] of pushed) await keepPushed(store, platformOf.get(d)!, [p], p.blobs);
    await keepPushed(store, entry, [top]);
  })();
  await settleAll([kept, remember(ctx)]);
  return { reference: `${repository}:${tag}`, tag, digest: top.digest, size: top.bytes.length, mediaType: top.mediaType, manifest: mine().digest, layers: mine().layers, warnings: [...new Set(warnings)] };
}

/** Writes what the push learnt of its repository and registry (one write of the store's distribution record). */
async function remember(ctx: PushContext): Promise<void> {
  await ctx.store.distribution.addRepositories(new Map([[ctx.repository, ctx.learnt]]), ctx.fmt.learnt());
}

/**
 * What a push knows of the registry's manifest formats. `docker`: OCI manifests go as Docker
 * schema2 (the registry refused OCI, on this push or an earlier one); `tookDocker()` notes that the
 * registry took a converted manifest, which `learnt()` gives the store's record once the push's tag
 * went (a registry refusing both, or a push refused later, leaves the store as it was).
 */
interface ManifestFormat {
  docker: boolean;
  /** The registry's refusal of an OCI manifest on this push, if any (told with a Docker one's). */
  refusal?: unknown;
  tookDocker(): void;
  /** The format to record for the registry (none when it was known already or not learnt). */
  learnt(): Record<string, 'docker'>;
}

function manifestFormat(dist: DistributionSnapshot, registry: string): ManifestFormat {
  const known = dist.manifestFormat(registry) === 'docker';
  let took = false;
  return {
    docker: known,
    tookDocker: () => {
      took = true;
    },
    learnt: () => (took && !known ? { [registry]: 'docker' } : {}),
  };
}

/**
 * The manifests pushed, into the blob store, kept with the image with `blobs` (the layers as
 * pushed): the next push and rollback --push find them.
 */
async function keepPushed(store: Store, image: ImageEntry, manifests: ReadonlyArray<{ digest: string; bytes: Buffer }>, blobs: readonly string[] = []): Promise<void> {
  for (const m of manifests) if (!store.blobs.hasSync(m.digest)) await store.blobs.ingest(m.bytes, m.digest, m.bytes.length);
  const keep = [...new Set([...manifests.map((m) => m.digest), ...blobs])];
  // kept already, as the push read the record (every push after the first): images.json not read again
  const r = image.record;
  if (keep.every((b) => b === r.digest || r.extraBlobs.includes(b))) return;
  await store.images.keepBlobs(r.digest, keep);
}

function refusedTwice(first: unknown, again: unknown): unknown {
  if (!(first instanceof RegistryError) || !(again instanceof RegistryError)) return again;
  return new RegistryError(`${first.message}; and as Docker schema2: ${again.message.replace(/^push \S+: /, '')}`, {
    registry: again.registry, code: again.code ?? 'MANIFEST_INVALID', ...(again.status !== undefined ? { status: again.status } : {}), cause: again,
  });
}

/**
 * PUTs an image manifest under `repository:tag`, or by its digest when `tag` is undefined: in its
 * own media type unless the registry is known to refuse OCI; an OCI manifest refused goes again,
 * once, as Docker schema2, and the registry is remembered as one that takes Docker only.
 */
async function putImageManifest(client: RegistryClient, repository: string, tag: string | undefined, bytes: Buffer, mediaType: string, fmt: ManifestFormat, signal?: AbortSignal): Promise<{ digest: string; bytes: Buffer; mediaType: string }> {
  const put = (b: Buffer, type: string) => client.pushManifest(tag ? `${repository}:${tag}` : `${repository}@${sha256(b)}`, b, type, signal);
  if (!fmt.docker || mediaType !== MediaType.ociManifest) {
    try {
      return { digest: await put(bytes, mediaType), bytes, mediaType };
    } catch (err) {
      if (mediaType !== MediaType.ociManifest || !refusesMediaType(err)) throw err;
      fmt.docker = true;
      fmt.refusal ??= err;
    }
  }
  const docker = toDockerManifest(bytes);
  let digest: string;
  try {
    digest = await put(docker, MediaType.dockerManifest);
  } catch (err) {
    throw fmt.refusal === undefined ? err : refusedTwice(fmt.refusal, err);
  }
  fmt.tookDocker();
  return { digest, bytes: docker, mediaType: MediaType.dockerManifest };
}

interface PushedManifest {
  digest: string;
  /** The manifest as the registry has it. */
  bytes: Buffer;
  mediaType: string;
  /** The layers' blobs as pushed (gzipped once: to be kept with the image). */
  blobs: string[];
  layers: PushResult['layers'];
}

/** The index's image manifests the store has whole (record, blobs), `digest`'s first. */
async function localPlatforms(store: Store, images: ImageSnapshot, index: ImageIndex, digest: string): Promise<ImageEntry[]> {
  const out: ImageEntry[] = [];
  for (const m of index.manifests) {
    if (m.annotations?.[REF_TYPE] === ATTESTATION) continue;
    const e = images.get(m.digest);
    if (!e || e.record.digest !== m.digest) continue;
    const blobs = [e.record.digest, e.record.config, ...e.record.layers.map((l) => l.digest)];
    if (blobs.every((b) => store.blobs.hasSync(b))) out.push(e);
  }
  return out.sort((a, b) => Number(b.record.digest === digest) - Number(a.record.digest === digest));
}

interface StoredAttestation {
  /** The attestation manifest as stored, and parsed. */
  bytes: Buffer;
  manifest: ReturnType<typeof ImageManifestSchema.parse>;
  /** Its config and layers' bytes, in that order. */
  blobs: Array<{ digest: string; mediaType: string; bytes: Buffer }>;
}

/**
 * An attestation manifest of the store and its blobs (small JSON), read at once, on this thread
 * (readSmall); a promise all the same, so that a failure is met where the attestation is awaited.
 */
async function readAttestation(store: Store, desc: Descriptor): Promise<StoredAttestation> {
  const bytes = store.blobs.readSmall(desc.digest);
  const manifest = ImageManifestSchema.parse(JSON.parse(bytes.toString('utf8')));
  const blobs = [manifest.config, ...manifest.layers].map((d) => ({ digest: d.digest, mediaType: d.mediaType, bytes: store.blobs.readSmall(d.digest) }));
  return { bytes, manifest, blobs };
}

/**
 * An attestation manifest as it goes with the image manifest `subject` (the pushed one's digest:
 * when push gzipped layers, the statement's subject is rewritten to name what the registry holds).
 * `keep()` puts the blobs made into the store (the push runs it beside their upload), so the next
 * push finds the same bytes.
 */
async function attestationFor(store: Store, desc: Descriptor, stored: StoredAttestation, subject: string): Promise<{ digest: string; bytes: Buffer; blobs: Array<{ digest: string; mediaType: string; bytes: Buffer }>; keep: () => Promise<void> }> {
  const m = stored.manifest;
  const was = desc.annotations![REF_DIGEST]!;
  if (was === subject) return { digest: desc.digest, bytes: stored.bytes, blobs: stored.blobs, keep: async () => {} };
  const hex = (d: string) => d.slice(d.indexOf(':') + 1);
  const layers = m.layers.map((l, i) => {
    const b = stored.blobs[i + 1]!;
    if (l.mediaType !== IN_TOTO) return { desc: l, blob: b };
    const json = z.looseObject({ subject: z.array(z.looseObject({ digest: z.record(z.string(), z.string()) })) }).parse(JSON.parse(b.bytes.toString('utf8')));
    for (const s of json.subject) if (s.digest['sha256'] === hex(was)) s.digest['sha256'] = hex(subject);
    const bytes = Buffer.from(JSON.stringify(json));
    return { desc: { ...l, digest: sha256(bytes), size: bytes.length }, blob: { digest: sha256(bytes), mediaType: l.mediaType, bytes } };
  });
  const config = Buffer.from(JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.desc.digest) } }));
  const configBlob = { digest: sha256(config), mediaType: m.config.mediaType, bytes: config };
  const bytes = Buffer.from(JSON.stringify({ ...m, config: { ...m.config, digest: configBlob.digest, size: config.length }, layers: layers.map((l) => l.desc) }));
  const blobs = [configBlob, ...layers.map((l) => l.blob)];
  const keep = () => settleAll([...blobs, { digest: sha256(bytes), bytes }].map(async (b) => {
    if (!store.blobs.hasSync(b.digest)) await store.blobs.ingest(b.bytes, b.digest, b.bytes.length);
  })).then(() => {});
  return { digest: sha256(bytes), bytes, blobs, keep };
}

interface Prepared {
  entry: ImageEntry;
  stored: ReturnType<typeof ImageManifestSchema.parse>;
  /** Each layer's blob as pushed (gzipped once when the store holds a plain tar). */
  blobs: PushBlob[];
  /** The manifest as pushed, and its digest: known before any upload, so attestations can name it. */
  manifest: Buffer;
  digest: string;
  /** The config's bytes (read beside the manifest). */
  config: Buffer;
}

/** The blobs and manifest an image goes to a registry as ('preparing': a plain-tar layer is gzipped, once). */
async function prepareManifest(store: Store, entry: ImageEntry, opts: PushOptions): Promise<Prepared> {
  const record = entry.record;
  const progress = opts.onProgress ?? (() => {});
  // small JSON blobs, read on this thread: the push's first requests wait for them
  const config = store.blobs.readSmall(record.config);
  const storedBytes = store.blobs.readSmall(record.digest);
  const stored = ImageManifestSchema.parse(JSON.parse(storedBytes.toString('utf8')));
  if (stored.layers.length !== record.layers.length) {
    throw new InvalidStateError(`image ${record.digest}: its manifest has ${stored.layers.length} layers, its record ${record.layers.length}`);
  }
  for (const l of record.layers) progress({ id: l.diffId, phase: 'preparing' });
  const blobs = await settleAll(record.layers.map((layer) => layerBlobForPush(store, layer, record.mediaType)));
  const manifest = manifestFor(storedBytes, stored.layers, blobs);
  return { entry, stored, blobs, manifest, digest: sha256(manifest), config };
}

/**
 * An image's layers and config, into the repository: each is checked with HEAD and skipped when
 * there, mounted from another repository of the registry known to have it, else uploaded; one the
 * store's record places in this repository is taken as there. `recheck`: the results of a first
 * call, whose blobs taken on trust are now checked (the others keep their result).
 */
async function sendBlobs(ctx: PushContext, prepared: Prepared, stop: AbortController, recheck?: PushResult['layers']): Promise<PushResult['layers']> {
  const { opts } = ctx;
  const { entry, stored, blobs } = prepared;
  const record = entry.record;
  const progress = opts.onProgress ?? (() => {});
  const limit = pLimit(opts.concurrency ?? 3);
  const results: PushResult['layers'] = [];
  // Layers whose blob is the same (two layers with one diff id) are sent once.
  const inFlight = new Map<string, Promise<'pushed' | 'exists' | 'mounted'>>();
  const layers = record.layers.map(async (layer, i) => {
    const blob = blobs[i]!;
    if (recheck && !ctx.trusted.has(blob.digest)) {
      results[i] = recheck[i]!;
      return;
    }
    const send = () => limit(() => sendBlob(ctx, { mediaType: blob.mediaType, digest: blob.digest, size: blob.size }, blob.file, {
      onPushing: () => progress({ id: layer.diffId, phase: 'pushing', done: 0, total: blob.size }),
      onProgress: (sent) => progress({ id: layer.diffId, phase: 'pushing', done: sent, total: blob.size }),
      onMounted: (from) => progress({ id: layer.diffId, phase: 'mounted', from }),
    }, !recheck));
    let job = inFlight.get(blob.digest);
    if (!job) {
      job = send();
      inFlight.set(blob.digest, job);
    }
    const how = await job;
    if (how === 'exists') progress({ id: layer.diffId, phase: 'exists' });
    if (how === 'pushed') progress({ id: layer.diffId, phase: 'pushed' });
    results[i] = { diffId: layer.diffId, digest: blob.digest, how };
  });
  // The config goes beside the layers (a registry checks blobs only when the manifest comes).
  const config = recheck && !ctx.trusted.has(record.config) ? undefined : sendBlob(ctx, { mediaType: stored.config.mediaType, digest: record.config, size: prepared.config.length }, prepared.config, {}, !recheck);
  await settleAll<unknown>([...layers, ...(config ? [config] : [])], stop);
  return results;
}

/**
 * PUTs an image's manifest (`put`) once its blobs are in. Blobs taken on trust (sendBlobs) cost no
 * request; a registry that lost one since refuses the manifest for it (MANIFEST_BLOB_UNKNOWN), and
 * then those blobs are checked (HEAD, an upload if missing) and the manifest goes once more.
 */
async function putAfterBlobs<T>(ctx: PushContext, prepared: Prepared, layers: PushResult['layers'], stop: AbortController, put: () => Promise<T>): Promise<T> {
  try {
    return await put();
  } catch (err) {
    const trusted = [prepared.entry.record.config, ...prepared.blobs.map((b) => b.digest)].some((d) => ctx.trusted.has(d));
    if (!trusted || !(err instanceof RegistryError) || (err.code !== 'MANIFEST_BLOB_UNKNOWN' && err.code !== 'BLOB_UNKNOWN')) throw err;
    const rechecked = await sendBlobs(ctx, prepared, stop, layers);
    layers.splice(0, layers.length, ...rechecked);
    return put();
  }
}

/**
 * One blob into the repository: 'exists' when the repository has it, else mounted from another
 * repository of the registry known to have it, else uploaded. A blob the store does not know the
 * repository to have is likely missing: with no other repository to mount it from, one POST asks
 * for a mount from the repository itself, which the registry answers 201 when it has the blob and
 * with an upload session when not (HEAD and POST in one request); with one, the mount is asked
 * beside a HEAD (a mount that fails says nothing of this repository), and the session it may open
 * instead is dropped if the HEAD finds the blob after all. A blob known there is, with `trust`,
 * taken as there without a request (the manifest's PUT is the check: putAfterBlobs), else checked
 * with its HEAD alone, so a push of what was pushed opens no upload session.
 */
async function sendBlob(ctx: PushContext, desc: Descriptor, source: string | Buffer, hooks: SendHooks = {}, trust = false): Promise<'pushed' | 'exists' | 'mounted'> {
  const how = await blobInto(ctx, desc, source, hooks, trust);
  // remembered only once the push succeeds: a manifest the registry took is the proof
  ctx.learnt.add(desc.digest);
  return how;
}

interface SendHooks {
  onPushing?: () => void;
  onProgress?: (sent: number) => void;
  onMounted?: (from: string) => void;
}

async function blobInto(ctx: PushContext, desc: Descriptor, source: string | Buffer, hooks: SendHooks, trust: boolean): Promise<'pushed' | 'exists' | 'mounted'> {
  const known = ctx.dist.repositoriesOf(desc.digest).includes(ctx.repository);
  if (known && trust) {
    ctx.trusted.add(desc.digest);
    return 'exists';
  }
  // A small layer likely missing is read into memory while its POST is on its way, so its PUT starts
  // at once (a file read when the PUT starts waited 10-15 ms for the thread pool on a busy machine).
  const data = typeof source === 'string' && !known && desc.size <= PRELOAD_MAX ? readFile(source) : undefined;
  data?.catch(() => {}); // told by the upload that needs it
  try {
    return await checkAndSend(ctx, desc, data ?? source, known, hooks);
  } finally {
    // settled before the push goes on; a failed read is told by the upload that awaited it
    await data?.catch(() => {});
  }
}

/** Blobs up to this size are read whole before their upload (see blobInto). */
const PRELOAD_MAX = 4 << 20;

async function checkAndSend(ctx: PushContext, desc: Descriptor, source: string | Buffer | Promise<Buffer>, known: boolean, hooks: SendHooks): Promise<'pushed' | 'exists' | 'mounted'> {
  const { client, target } = ctx;
  const signal = ctx.signal;
  const from = ctx.mountSource(desc.digest);
  const upload = async (opened?: Promise<OpenedUpload>) => {
    hooks.onPushing?.();
    const how = await client.pushBlob(target, desc, await source, { mountFrom: from, signal, onProgress: hooks.onProgress, opened });
    if (how === 'mounted') hooks.onMounted?.(from!);
    return how;
  };
  if (!known && !from) {
    let asked: OpenedUpload | undefined;
    try {
      asked = await client.openUpload(target, desc.digest, { mountFrom: target.path, signal });
    } catch (err) {
      // a registry that takes no mount parameters at all: asked again as HEAD, then POST
      if (!(err instanceof RegistryError) || !refusesMount(err)) throw err;
    }
    if (asked?.mounted) return 'exists';
    if (asked) return upload(Promise.resolve(asked));
  }
  const opened = known ? undefined : client.openUpload(target, desc.digest, { mountFrom: from, signal });
  // a failed POST is met again, and retried, by pushBlob's first attempt
  opened?.catch(() => {});
  const drop = async () => {
    // an upload session left open expires at the registry: dropping it is a courtesy
    await opened?.then((o) => client.cancelUpload(target, o, signal)).catch(() => {});
  };
  let there: boolean;
  try {
    there = await client.hasBlob(target, desc.digest, signal);
  } catch (err) {
    await drop();
    throw err;
  }
  if (there) {
    // the mount asked beside the HEAD may be what put it there (the registry answered it first)
    const mounted = (await opened?.catch(() => undefined))?.mounted === true;
    if (!mounted) await drop();
    if (mounted) hooks.onMounted?.(from!);
    return mounted ? 'mounted' : 'exists';
  }
  return upload(opened);
}

/** A registry's refusal of the mount parameters themselves (not of the push: auth, quota, a name). */
function refusesMount(err: RegistryError): boolean {
  return err.status === 400 || err.status === 404 || err.status === 405;
}
