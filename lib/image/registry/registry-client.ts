/**
 * `RegistryClient`: the Distribution API as nsbox uses it. Resolve a reference to one platform's
 * manifest and config (every digest checked), download blobs to files, push blobs and manifests.
 * One client keeps one transport per registry host, so tokens are reused across calls.
 */
import * as z from 'zod';
import { ValidationError } from '../../errors.js';
import { parseReference, withDigest, type Reference } from '../reference.js';
import { DockerConfigCredentials, StaticCredentials, type CredentialSource, type Credentials } from './credentials.js';
import { DigestMismatchError, RegistryError } from './errors.js';
import { digestOf, fetchBlobToFile, hashFor, type BlobProgress, type FetchBlobOptions } from './fetch-blob.js';
import {
  DescriptorSchema, ImageConfigSchema, ImageIndexSchema, ImageManifestSchema, INDEX_MEDIA_TYPES, IMAGE_MEDIA_TYPES,
  MANIFEST_ACCEPT, type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest,
} from './manifest.js';
import { pLimit } from './p-limit.js';
import { choosePlatform, formatPlatform, hostPlatform, parsePlatform, type PlatformSpec } from './platform.js';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js';
import { DEFAULT_TRANSPORT, RegistryTransport, type HttpResponse } from './transport.js';
import { cancelUpload, openUpload, uploadBlob, type BlobSource, type OpenedUpload, type PushBlobOptions } from './upload-blob.js';

export interface RegistryClientOptions {
  /** Explicit credentials, asked before any other source. */
  auth?: Credentials | undefined;
  /** The ordered credential sources (default: `auth` if given, then the docker config.json). */
  credentialSources?: readonly CredentialSource[] | undefined;
  /** Path of docker's config.json (default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`). */
  dockerConfig?: string | undefined;
  /** Hosts (`host` or `host:port`) reached over plain HTTP; loopback always is. */
  insecureRegistries?: readonly string[] | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  userAgent?: string | undefined;
  timeoutMs?: number | undefined;
  /** The clock registry tokens expire by, ms since the epoch (default Date.now). */
  now?: (() => number) | undefined;
}

export interface ResolveOptions {
  /** `linux/arm64/v8` or `{ os, architecture, variant }`; default: this host's. */
  platform?: string | PlatformSpec | undefined;
  signal?: AbortSignal | undefined;
}

export interface ResolvedImage {
  /** The reference asked for, with the digest of what it resolved to (the index's, for a multi-platform image). */
  reference: Reference;
  /** Digest of the platform's image manifest. */
  digest: string;
  mediaType: string;
  manifest: ImageManifest;
  /** The manifest exactly as served: its sha256 is `digest`. */
  manifestBytes: Buffer;
  config: ImageConfig;
  configBytes: Buffer;
  /** Set when the reference named an OCI index or Docker manifest list. */
  index?: { digest: string; mediaType: string; index: ImageIndex; bytes: Buffer };
}

export interface BlobDownload {
  descriptor: Descriptor;
  destPath: string;
}

export interface FetchBlobsOptions {
  /** Downloads in flight at once (default 3). */
  concurrency?: number | undefined;
  onProgress?: ((p: BlobProgress) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export interface PushImageInput {
  /** Manifest bytes exactly as they will be stored, and their media type. */
  manifest: { bytes: Buffer; mediaType: string };
  /** Config and layers (any order), with where to read each. */
  blobs: ReadonlyArray<{ descriptor: Descriptor; source: BlobSource }>;
  /** A repository on the same registry to mount blobs from. */
  mountFrom?: string | undefined;
  concurrency?: number | undefined;
  chunkSize?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface PushImageResult {
  digest: string;
  pushed: string[];
  mounted: string[];
  skipped: string[];
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
const SCHEMA1 = /^application\/vnd\.docker\.distribution\.manifest\.v1\+(prettyjws|json)$/;

function toRef(ref: Reference | string): Reference {
  return typeof ref === 'string' ? parseReference(ref) : ref;
}

function mediaTypeOf(res: HttpResponse, body: unknown): string {
  const header = RegistryTransport.header(res.headers, 'content-type')?.split(';')[0]?.trim();
  const inBody = z.object({ mediaType: z.string() }).safeParse(body);
  if (header && header !== 'application/json' && header !== 'text/plain') return header;
  return inBody.success ? inBody.data.mediaType : header ?? '';
}

export class RegistryClient {
  readonly #transports = new Map<string, RegistryTransport>();
  readonly #retry: RetryPolicy;
  readonly #transportDefaults: Omit<ConstructorParameters<typeof RegistryTransport>[1], 'retry'>;

  constructor(opts: RegistryClientOptions = {}) {
    const sources: CredentialSource[] = opts.credentialSources
      ? [...opts.credentialSources]
      : [...(opts.auth ? [new StaticCredentials(opts.auth)] : []), new DockerConfigCredentials(opts.dockerConfig)];
    if (opts.credentialSources && opts.auth) sources.unshift(new StaticCredentials(opts.auth));
    this.#retry = { ...DEFAULT_RETRY, ...opts.retry };
    if (!Number.isInteger(this.#retry.retries) || this.#retry.retries < 0) throw new ValidationError('retry.retries must be a non-negative integer', 'retry.retries');
    this.#transportDefaults = {
      credentials: sources,
      insecureRegistries: opts.insecureRegistries ?? DEFAULT_TRANSPORT.insecureRegistries,
      userAgent: opts.userAgent ?? DEFAULT_TRANSPORT.userAgent,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TRANSPORT.timeoutMs,
      ...(opts.now ? { now: opts.now } : {}),
    };
  }

  /** The transport for one registry host (exposed for tests and advanced callers). */
  transport(domain: string): RegistryTransport {
    let t = this.#transports.get(domain);
    if (!t) {
      t = new RegistryTransport(domain, { ...this.#transportDefaults, retry: this.#retry });
      this.#transports.set(domain, t);
    }
    return t;
  }

  /** `GET /v2/`: the registry answers, and how it wants auth is known. */
  async ping(domain: string, signal?: AbortSignal): Promise<void> {
    await this.transport(domain).ping(signal);
  }

  /**
   * Checks that the registry takes this client's credentials (`docker login`'s check): `GET /v2/`
   * with them, through a token when the registry wants one. Throws the UNAUTHORIZED RegistryError.
   */
  async checkLogin(domain: string, signal?: AbortSignal): Promise<void> {
    const t = this.transport(domain);
    const op = `login ${domain}`;
    const res = await t.request({ method: 'GET', url: '/v2/', scopes: [], op, signal });
    if (res.status !== 200) throw t.errorFor(op, res);
  }

  /** Fetches a manifest by tag or digest; checks its digest (and the reference's, when it has one). */
  async fetchManifest(ref: Reference | string, opts: { signal?: AbortSignal | undefined; op?: string; expect?: Descriptor } = {}): Promise<{ digest: string; mediaType: string; bytes: Buffer; json: unknown }> {
    const r = toRef(ref);
    const t = this.transport(r.domain);
    const op = opts.op ?? `pull ${r.familiar}`;
    const target = opts.expect?.digest ?? r.digest ?? r.tag ?? 'latest';
    const res = await t.request({
      method: 'GET', url: `/v2/${r.path}/manifests/${target}`, scopes: [`repository:${r.path}:pull`], op,
      headers: { accept: MANIFEST_ACCEPT.join(', ') }, signal: opts.signal,
    });
    if (res.status !== 200) throw t.errorFor(op, res);
    if (res.body.length > MAX_MANIFEST_BYTES) {
      throw new RegistryError(`${op}: manifest is ${res.body.length} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`, { registry: t.registry, code: 'MANIFEST_INVALID', status: res.status });
    }
    const wanted = opts.expect?.digest ?? r.digest;
    const algo = wanted ? wanted.slice(0, wanted.indexOf(':')) : 'sha256';
    hashFor(`${algo}:x`);
    const digest = digestOf(res.body, algo);
    const served = RegistryTransport.header(res.headers, 'docker-content-digest');
    if (wanted && digest !== wanted) {
      throw new DigestMismatchError(`${op}: manifest ${wanted.slice(0, 19)} does not match its digest: received content hashes to ${digest.slice(0, 19)}`, wanted, digest, { registry: t.registry });
    }
    if (served && served.startsWith(`${algo}:`) && served !== digest) {
      throw new DigestMismatchError(`${op}: manifest digest ${digest.slice(0, 19)} differs from the ${served.slice(0, 19)} the registry announced`, served, digest, { registry: t.registry });
    }
    if (opts.expect && res.body.length !== opts.expect.size) {
      throw new DigestMismatchError(`${op}: manifest ${digest.slice(0, 19)} is ${res.body.length} bytes, its descriptor says ${opts.expect.size}`, `${opts.expect.size} bytes`, `${res.body.length} bytes`, { registry: t.registry, code: 'SIZE_MISMATCH' });
    }
    let json: unknown;
    try {
      json = JSON.parse(res.body.toString('utf8'));
    } catch (err) {
      throw new RegistryError(`${op}: manifest is not JSON`, { registry: t.registry, code: 'MANIFEST_INVALID', status: res.status, cause: err });
    }
    return { digest, mediaType: mediaTypeOf(res, json), bytes: res.body, json };
  }

  /** Resolves a reference to one platform's manifest and its parsed config. */
  async resolve(ref: Reference | string, opts: ResolveOptions = {}): Promise<ResolvedImage> {
    const r = toRef(ref);
    const op = `pull ${r.familiar}`;
    const registry = r.domain;
    const want = opts.platform === undefined ? hostPlatform() : parsePlatform(opts.platform);
    const top = await this.fetchManifest(r, { signal: opts.signal, op });
    let index: ResolvedImage['index'];
    let image = top;
    if (INDEX_MEDIA_TYPES.includes(top.mediaType)) {
      const parsed = this.#parse(ImageIndexSchema, top.json, op, registry, 'index');
      index = { digest: top.digest, mediaType: top.mediaType, index: parsed, bytes: top.bytes };
      const entry = choosePlatform(parsed.manifests, want);
      if (!entry) {
        const have = parsed.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ');
        throw new RegistryError(`${op}: no image for platform ${formatPlatform(want)} (the index has: ${have || 'nothing'})`, { registry, code: 'PLATFORM_UNKNOWN' });
      }
      image = await this.fetchManifest(r, { signal: opts.signal, op, expect: entry });
      if (INDEX_MEDIA_TYPES.includes(image.mediaType)) {
        throw new RegistryError(`${op}: nested indexes are not supported (${entry.digest.slice(0, 19)})`, { registry, code: 'MANIFEST_UNSUPPORTED' });
      }
    }
    if (SCHEMA1.test(image.mediaType)) {
      throw new RegistryError(`${op}: Docker schema1 manifests are not supported (push the image again with a current tool)`, { registry, code: 'MANIFEST_UNSUPPORTED' });
    }
    if (!IMAGE_MEDIA_TYPES.includes(image.mediaType)) {
      throw new RegistryError(`${op}: unsupported manifest type ${JSON.stringify(image.mediaType)}`, { registry, code: 'MANIFEST_UNSUPPORTED' });
    }
    const manifest = this.#parse(ImageManifestSchema, image.json, op, registry, 'manifest');
    const configBytes = await this.readBlob(r, manifest.config, { signal: opts.signal, op, maxBytes: MAX_CONFIG_BYTES });
    let configJson: unknown;
    try {
      configJson = JSON.parse(configBytes.toString('utf8'));
    } catch (err) {
      throw new RegistryError(`${op}: image config is not JSON`, { registry, code: 'CONFIG_INVALID', cause: err });
    }
    const config = this.#parse(ImageConfigSchema, configJson, op, registry, 'image config');
    return {
      reference: withDigest(r, top.digest),
      digest: image.digest,
      mediaType: image.mediaType,
      manifest,
      manifestBytes: image.bytes,
      config,
      configBytes,
      ...(index ? { index } : {}),
    };
  }

  #parse<T>(schema: z.ZodType<T>, json: unknown, op: string, registry: string, what: string): T {
    const r = schema.safeParse(json);
    if (r.success) return r.data;
    const issue = r.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new RegistryError(`${op}: invalid ${what}${where}: ${issue?.message ?? 'bad shape'}`, { registry, code: what === 'image config' ? 'CONFIG_INVALID' : 'MANIFEST_INVALID', cause: r.error });
  }

  /** A small blob (a config) into memory, digest and size checked. */
  async readBlob(ref: Reference | string, descriptor: Descriptor, opts: { signal?: AbortSignal | undefined; op?: string; maxBytes?: number } = {}): Promise<Buffer> {
    const r = toRef(ref);
    const t = this.transport(r.domain);
    const op = opts.op ?? `pull ${r.familiar}`;
    const d = DescriptorSchema.parse(descriptor);
    const short = d.digest.slice(0, 19);
    if (opts.maxBytes !== undefined && d.size > opts.maxBytes) {
      throw new RegistryError(`${op}: blob ${short} is ${d.size} bytes, more than the ${opts.maxBytes} allowed here`, { registry: t.registry, code: 'BLOB_TOO_LARGE' });
    }
    const res = await t.request({ method: 'GET', url: `/v2/${r.path}/blobs/${d.digest}`, scopes: [`repository:${r.path}:pull`], op: `${op}: blob ${short}`, signal: opts.signal });
    if (res.status !== 200) throw t.errorFor(`${op}: blob ${short}`, res);
    if (res.body.length !== d.size) {
      throw new DigestMismatchError(`${op}: blob ${short} is ${res.body.length} bytes, its descriptor says ${d.size}`, `${d.size} bytes`, `${res.body.length} bytes`, { registry: t.registry, code: 'SIZE_MISMATCH' });
    }
    const actual = digestOf(res.body, d.digest.slice(0, d.digest.indexOf(':')));
    if (actual !== d.digest) {
      throw new DigestMismatchError(`${op}: blob ${short} does not match its digest: received content hashes to ${actual.slice(0, 19)}`, d.digest, actual, { registry: t.registry });
    }
    return res.body;
  }

  /**
   * Downloads a blob to `destPath` (temp file beside it, digest and size verified, fsync, rename).
   * Retries network errors, 5xx and truncated bodies; the temp file is removed on failure.
   */
  async fetchBlob(ref: Reference | string, descriptor: Descriptor, destPath: string, opts: FetchBlobOptions = {}): Promise<void> {
    const r = toRef(ref);
    const d = DescriptorSchema.parse(descriptor);
    await fetchBlobToFile(this.transport(r.domain), r.path, d, destPath, `pull ${r.familiar}`, this.#retry, opts);
  }

  /**
   * Downloads several blobs, `concurrency` at a time. On the first failure the others are aborted,
   * and the first error is thrown once every download has stopped (no temp file left behind).
   */
  async fetchBlobs(ref: Reference | string, list: readonly BlobDownload[], opts: FetchBlobsOptions = {}): Promise<void> {
    const r = toRef(ref);
    const stop = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
    const limit = pLimit(opts.concurrency ?? 3);
    let first: unknown;
    await Promise.all(list.map((item) => limit(async () => {
      if (signal.aborted) return;
      try {
        await this.fetchBlob(r, item.descriptor, item.destPath, { onProgress: opts.onProgress, signal });
      } catch (err) {
        if (first === undefined) {
          first = err;
          stop.abort();
        }
      }
    })));
    if (first !== undefined) throw first;
    opts.signal?.throwIfAborted();
  }

  /** `HEAD` a blob: whether the repository has it. */
  async hasBlob(ref: Reference | string, digest: string, signal?: AbortSignal): Promise<boolean> {
    const r = toRef(ref);
    const t = this.transport(r.domain);
    const op = `push ${r.familiar}: blob ${digest.slice(0, 19)}`;
    const res = await t.request({ method: 'HEAD', url: `/v2/${r.path}/blobs/${digest}`, scopes: [`repository:${r.path}:pull,push`], op, signal });
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw t.errorFor(op, res);
  }

  /**
   * Opens an upload (or mounts from `mountFrom`) without sending the blob: for a caller asking
   * `hasBlob` at the same time, which hands the result to pushBlob (`opened`) or cancelUpload.
   */
  async openUpload(ref: Reference | string, digest: string, opts: Pick<PushBlobOptions, 'mountFrom' | 'signal'> = {}): Promise<OpenedUpload> {
    const r = toRef(ref);
    return openUpload(this.transport(r.domain), r.path, digest, `push ${r.familiar}`, opts);
  }

  /** Drops an upload session openUpload opened (nothing to do for a mount). */
  async cancelUpload(ref: Reference | string, opened: OpenedUpload, signal?: AbortSignal): Promise<void> {
    const r = toRef(ref);
    await cancelUpload(this.transport(r.domain), r.path, opened, `push ${r.familiar}: cancel upload`, signal);
  }

  /** Uploads one blob (or mounts it from `mountFrom` on the same registry). */
  async pushBlob(ref: Reference | string, descriptor: Descriptor, source: BlobSource, opts: PushBlobOptions = {}): Promise<'pushed' | 'mounted'> {
    const r = toRef(ref);
    const d = DescriptorSchema.parse(descriptor);
    return uploadBlob(this.transport(r.domain), r.path, d, source, `push ${r.familiar}`, this.#retry, opts);
  }

  /** PUTs a manifest under the reference's tag (or digest); returns its digest. */
  async pushManifest(ref: Reference | string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
    const r = toRef(ref);
    const t = this.transport(r.domain);
    const op = `push ${r.familiar}`;
    const digest = digestOf(bytes);
    if (r.digest && r.digest !== digest) {
      throw new DigestMismatchError(`${op}: the manifest hashes to ${digest.slice(0, 19)}, not the reference's digest`, r.digest, digest, { registry: t.registry });
    }
    const res = await t.request({
      method: 'PUT', url: `/v2/${r.path}/manifests/${r.tag ?? r.digest ?? digest}`, scopes: [`repository:${r.path}:pull,push`], op, signal,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) }, body: bytes,
    });
    if (res.status !== 201) throw t.errorFor(op, res);
    const served = RegistryTransport.header(res.headers, 'docker-content-digest');
    if (served && served !== digest) {
      throw new DigestMismatchError(`${op}: the registry stored the manifest as ${served.slice(0, 19)}, not ${digest.slice(0, 19)}`, digest, served, { registry: t.registry });
    }
    return digest;
  }

  /** Pushes the blobs the repository lacks (HEAD first; mounted when possible), then the manifest. */
  async pushImage(ref: Reference | string, input: PushImageInput): Promise<PushImageResult> {
    const r = toRef(ref);
    const limit = pLimit(input.concurrency ?? 3);
    const result: PushImageResult = { digest: '', pushed: [], mounted: [], skipped: [] };
    const seen = new Set<string>();
    const unique = input.blobs.filter((b) => !seen.has(b.descriptor.digest) && seen.add(b.descriptor.digest));
    await Promise.all(unique.map((b) => limit(async () => {
      if (await this.hasBlob(r, b.descriptor.digest, input.signal)) {
        result.skipped.push(b.descriptor.digest);
        return;
      }
      const how = await this.pushBlob(r, b.descriptor, b.source, { mountFrom: input.mountFrom, chunkSize: input.chunkSize, signal: input.signal });
      (how === 'mounted' ? result.mounted : result.pushed).push(b.descriptor.digest);
    })));
    result.digest = await this.pushManifest(r, input.manifest.bytes, input.manifest.mediaType, input.signal);
    return result;
  }
}
