/**
 * `importRootfs`: docker import. A tar of a root filesystem (plain or gzipped, from a file, a
 * stream or an http(s) URL) becomes a one-layer image: the tar is spooled into the store's tmp dir
 * and hashed on the way (the blob digest; for gzip the diff id is the hash of what it inflates to),
 * the config gets this host's platform, the container config given (lib/build makes it from the
 * `--change` instructions) and a history entry with the message, and the result is stored as an
 * OCI image through the same commit as `load`.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NsboxError, ValidationError } from '../../errors.js';
import { sha256, sniffCompression, type Store } from '../../storage/index.js';
import { isTarHeader } from '../../storage/tar-reader.js';
import { parseReference } from '../reference.js';
import { ImageConfigSchema, type ContainerConfig, type ImageConfig } from '../registry/manifest.js';
import { hostPlatform, parsePlatform, type PlatformSpec } from '../registry/platform.js';
import { ArchiveError } from './archive-error.js';
import { commitImage, tarDigest, type LoadedImage } from '../commit.js';
import { sealManifest } from '../provenance.js';

export interface ImportOptions {
  /** `repo[:tag]` for the image; without one it is dangling (listed as `<none>`). */
  name?: string;
  /** Its container config (Cmd, Env, WorkingDir, …); lib/build's `importImage` makes it from Dockerfile instructions. */
  config?: ContainerConfig;
  /** The history entry's comment (default: `Imported from <source>`). */
  message?: string;
  /** The platform recorded in the config; default: this host's. */
  platform?: PlatformSpec | string;
  /** For the provenance: the instructions the config was made from. */
  changes?: readonly string[];
  /** org.opencontainers.image.source for the annotations. */
  labelSource?: string;
  signal?: AbortSignal;
}

export type ImportSource = string | URL | NodeJS.ReadableStream | AsyncIterable<Uint8Array>;

const MEDIA = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  tar: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export async function importRootfs(store: Store, source: ImportSource, opts: ImportOptions = {}): Promise<LoadedImage> {
  // Everything that can be checked without the bytes is checked before they are read.
  const names = opts.name === undefined ? [] : [parseReference(opts.name).toString()];
  const config = opts.config ?? {};
  const platform = opts.platform === undefined ? hostPlatform() : parsePlatform(opts.platform);
  const where = describe(source);
  return store.withLease(async () => {
    await store.blobs.init();
    const tmp = path.join(store.layout.tmpDir, `import-${randomBytes(8).toString('hex')}`);
    try {
      const blob = await spool(await open(source, opts.signal), tmp, opts.signal);
      if (blob.size === 0) throw new ArchiveError(`${where}: the archive is empty`);
      const compression = sniffCompression(blob.head);
      if (compression !== 'none' && compression !== 'gzip') {
        throw new ArchiveError(`${where}: ${compression} archives are not supported: give a plain or gzipped tar`, { code: 'ENOTSUP' });
      }
      // A tar is at least one 512-byte header; anything else is not a root filesystem.
      if (compression === 'none' && (blob.size < 512 || !isTarHeader(blob.head))) throw new ArchiveError(`${where}: not a tar archive`);
      const diffId = compression === 'gzip' ? await tarDigest(tmp) : blob.digest;
      if (diffId === undefined) throw new ArchiveError(`${where}: cannot read the archive`);
      const created = new Date().toISOString();
      const cfg: ImageConfig = ImageConfigSchema.parse({
        created,
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        config: config satisfies ContainerConfig,
        rootfs: { type: 'layers', diff_ids: [diffId] },
        history: [{ created, comment: opts.message ?? `Imported from ${where}` }],
      });
      const configBytes = Buffer.from(JSON.stringify(cfg));
      const configDigest = sha256(configBytes);
      const mediaType = compression === 'gzip' ? MEDIA.gzip : MEDIA.tar;
      const manifest = {
        schemaVersion: 2,
        mediaType: MEDIA.manifest,
        config: { mediaType: MEDIA.config, digest: configDigest, size: configBytes.length },
        layers: [{ mediaType, digest: blob.digest, size: blob.size }],
      };
      const sealed = sealManifest(manifest, {
        kind: 'import',
        created,
        startedOn: created,
        context: { digest: blob.digest, uri: where },
        ...(opts.labelSource ? { source: opts.labelSource } : {}),
        parameters: { ...(opts.changes?.length ? { changes: opts.changes } : {}), ...(opts.message ? { message: opts.message } : {}) },
      }, platform, names);
      return await commitImage(
        store,
        {
          manifest: sealed.manifest,
          config: { bytes: configBytes, digest: configDigest, parsed: cfg },
          layers: [{ digest: blob.digest, mediaType, size: blob.size, member: { file: tmp, digest: blob.digest, size: blob.size } }],
          extra: sealed.extra,
          names,
          index: sealed.index,
        },
        names,
        { by: 'import' },
      );
    } finally {
      await rm(tmp, { force: true });
    }
  });
}

/** `-` for a stream, as docker's history says; the path or URL otherwise. */
function describe(source: ImportSource): string {
  if (typeof source === 'string') return source;
  if (source instanceof URL) return source.href;
  return '-';
}

async function open(source: ImportSource, signal: AbortSignal | undefined): Promise<AsyncIterable<Uint8Array>> {
  const url = source instanceof URL ? source : typeof source === 'string' && /^https?:\/\//i.test(source) ? new URL(source) : undefined;
  if (url) {
    const res = await fetch(url, signal ? { signal } : {}).catch((e: unknown) => {
      throw new NsboxError(`import ${url.href}: ${(e as Error).message}`, { code: 'ERR_IMPORT_FETCH', cause: e });
    });
    if (!res.ok || !res.body) throw new NsboxError(`import ${url.href}: the server answered ${res.status} ${res.statusText}`, { code: 'ERR_IMPORT_FETCH' });
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  }
  if (typeof source === 'string') {
    if (!path.isAbsolute(source) && !source.startsWith('.') && /^[a-z][a-z0-9+.-]*:/i.test(source)) {
      throw new ValidationError(`import ${source}: only http:// and https:// URLs, files and streams can be imported`, 'source');
    }
    return createReadStream(source, { highWaterMark: 1 << 20 });
  }
  return source as AsyncIterable<Uint8Array>;
}

/** Writes the bytes to `file`, with their sha256, size and first 512 bytes. */
async function spool(input: AsyncIterable<Uint8Array>, file: string, signal: AbortSignal | undefined): Promise<{ digest: string; size: number; head: Buffer }> {
  const hash = createHash('sha256');
  let size = 0;
  const heads: Buffer[] = [];
  let headLen = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      if (headLen < 512) {
        heads.push(chunk.subarray(0, 512 - headLen));
        headLen += Math.min(chunk.length, 512 - headLen);
      }
      cb(null, chunk);
    },
  });
  await pipeline(input, tap, createWriteStream(file, { mode: 0o600 }), ...(signal ? [{ signal }] : []));
  const head = Buffer.concat(heads);
  return { digest: `sha256:${hash.digest('hex')}`, size, head: head.length >= 6 ? head : Buffer.concat([head, Buffer.alloc(6 - head.length)]) };
}
