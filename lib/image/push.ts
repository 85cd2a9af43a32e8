/**
 * Push of an image in the store to a registry, as docker's push does it: each layer's blob (pulled
 * compressed, or gzipped once: push-layer.ts) is checked with HEAD and skipped when the repository
 * has it ("Layer already exists"); else mounted from another repository of the same registry known
 * to have it (the store's distribution record, and the image's own names there); else uploaded.
 * The config goes after the layers and the manifest last, so the registry never holds a manifest
 * whose blobs are not all there. A push cut short leaves only upload sessions the registry never
 * completed (invisible to its API) and, locally, a temp file the store's repair removes: the next
 * push starts over from the HEADs.
 */
import * as z from 'zod';
import { InvalidStateError, ValidationError } from '../errors.js';
import type { ImageEntry, Store } from '../storage/index.js';
import { sha256 } from '../storage/index.js';
import { layerBlobForPush, type PushBlob } from './push-layer.js';
import type { Reference } from './reference.js';
import type { Credentials, RegistryClient } from './registry/index.js';
import { ImageManifestSchema, type Descriptor } from './registry/manifest.js';
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
  /** The manifest's digest on the registry. */
  digest: string;
  /** The manifest's size in bytes. */
  size: number;
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
 * Blob digest → repositories of `domain` that had it when a local image named there was pulled or
 * pushed: the store's images under a name on that registry, with their blobs (docker keeps the same
 * from its pulls, in its distribution metadata).
 */
async function repositoriesInStore(store: Store, domain: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const { record, names } of await store.images.list()) {
    const repos = [...new Set(names.filter((n) => n.startsWith(`${domain}/`)).map((n) => n.replace(/(?::[^/:@]+)?(?:@.*)?$/, '')))];
    if (!repos.length) continue;
    for (const d of [record.config, ...record.layers.map((l) => l.digest)]) out.set(d, [...(out.get(d) ?? []), ...repos]);
  }
  return out;
}

/**
 * Pushes `entry` to `target` (a tag; `latest` when it has none). Call it holding the store's lease
 * (Store.withLease), so that the blobs it makes survive until the image record keeps them.
 */
export async function pushStoredImage(store: Store, client: RegistryClient, entry: ImageEntry, target: Reference, opts: PushOptions = {}): Promise<PushResult> {
  if (target.digest) throw new ValidationError(`cannot push a digest reference (${target.familiar}): push a tag`, 'reference');
  const tag = target.tag ?? 'latest';
  const record = entry.record;
  const progress = opts.onProgress ?? (() => {});
  const signal = opts.signal;
  const storedBytes = await store.blobs.read(record.digest);
  const stored = ImageManifestSchema.parse(JSON.parse(storedBytes.toString('utf8')));
  if (stored.layers.length !== record.layers.length) {
    throw new InvalidStateError(`image ${record.digest}: its manifest has ${stored.layers.length} layers, its record ${record.layers.length}`);
  }
  const repository = `${target.domain}/${target.path}`;
  const localSources = await repositoriesInStore(store, target.domain);
  const mountSource = async (digest: string): Promise<string | undefined> => {
    const known = [...(await store.distribution.repositoriesOf(digest)), ...(localSources.get(digest) ?? [])];
    const hit = known.find((r) => r.startsWith(`${target.domain}/`) && r !== repository);
    return hit?.slice(target.domain.length + 1);
  };

  for (const l of record.layers) progress({ id: l.diffId, phase: 'preparing' });
  const limit = pLimit(opts.concurrency ?? 3);
  const results: PushResult['layers'] = [];
  // Layers whose blob is the same (two layers with one diff id) are sent once.
  const inFlight = new Map<string, Promise<'pushed' | 'exists' | 'mounted'>>();
  const blobs = await Promise.all(record.layers.map(async (layer, i) => {
    const blob = await layerBlobForPush(store, layer, record.mediaType);
    const send = () => limit(async () => {
      if (await client.hasBlob(target, blob.digest, signal)) return 'exists' as const;
      const from = await mountSource(blob.digest);
      progress({ id: layer.diffId, phase: 'pushing', done: 0, total: blob.size });
      const how = await client.pushBlob(target, { mediaType: blob.mediaType, digest: blob.digest, size: blob.size }, blob.file, {
        ...(from ? { mountFrom: from } : {}),
        ...(signal ? { signal } : {}),
        onProgress: (sent) => progress({ id: layer.diffId, phase: 'pushing', done: sent, total: blob.size }),
      });
      if (how === 'mounted') progress({ id: layer.diffId, phase: 'mounted', from: from! });
      return how;
    });
    let job = inFlight.get(blob.digest);
    if (!job) {
      job = send();
      inFlight.set(blob.digest, job);
    }
    const how = await job;
    if (how === 'exists') progress({ id: layer.diffId, phase: 'exists' });
    if (how === 'pushed') progress({ id: layer.diffId, phase: 'pushed' });
    results[i] = { diffId: layer.diffId, digest: blob.digest, how };
    return blob;
  }));

  const configBytes = await store.blobs.read(record.config);
  const config = { mediaType: stored.config.mediaType, digest: record.config, size: configBytes.length };
  if (!(await client.hasBlob(target, config.digest, signal))) {
    const from = await mountSource(config.digest);
    await client.pushBlob(target, config, configBytes, { ...(from ? { mountFrom: from } : {}), ...(signal ? { signal } : {}) });
  }
  const manifest = manifestFor(storedBytes, stored.layers, blobs);
  const digest = sha256(manifest);
  if (!(await store.blobs.has(digest))) await store.blobs.ingest(manifest, digest, manifest.length);
  await store.images.keepBlobs(record.digest, [...new Set([digest, ...blobs.map((b) => b.digest)])]);
  const pushedAs = await client.pushManifest(`${repository}:${tag}`, manifest, record.mediaType, signal);
  await store.distribution.addRepository(repository, [...new Set([...blobs.map((b) => b.digest), config.digest])]);
  return { reference: `${repository}:${tag}`, tag, digest: pushedAs, size: manifest.length, layers: results };
}
