/**
 * The blob a push sends for one layer. A layer pulled compressed goes as it came. A layer the store
 * holds as a plain tar (a build step, a loaded docker-archive) is gzipped once, into the blob store,
 * and the store's distribution record remembers which blob that was: every later push of the layer
 * (this image again, or a child built on it) sends the same bytes under the same digest, so the
 * registry's HEAD finds it and nothing is compressed or uploaded twice.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zc, createGzip } from 'node:zlib';
import { reportCleanupError } from '../errors.js';
import type { ImageRecord, Store } from '../storage/index.js';
import { blobCompressionSync } from './commit.js';
import { MediaType } from './registry/manifest.js';

/** What goes to the registry for one layer. */
export interface PushBlob {
  mediaType: string;
  digest: string;
  size: number;
  /** The blob's file in the store. */
  file: string;
  /** True when this push made the blob (it was compressed now). */
  fresh: boolean;
}

type Layer = ImageRecord['layers'][number];

const GZIP_MEDIA: Record<string, string> = {
  [MediaType.ociManifest]: 'application/vnd.oci.image.layer.v1.tar+gzip',
  [MediaType.dockerManifest]: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};

/** The gzip media type of a layer in a manifest of `manifestMediaType`. */
export function gzipLayerMediaType(manifestMediaType: string): string {
  return GZIP_MEDIA[manifestMediaType] ?? GZIP_MEDIA[MediaType.ociManifest]!;
}

/**
 * The blob to push for `layer`: its own when compressed, else the gzip made for its diff id earlier
 * (while the blob store still has it), else a new gzip. Call it holding the store's lease, and keep
 * the returned blob with the image (ImageStore.keepBlobs) before letting go of it.
 */
export async function layerBlobForPush(store: Store, layer: Layer, manifestMediaType: string, onCompress?: (done: number, total: number) => void): Promise<PushBlob> {
  const file = store.blobs.path(layer.digest);
  const asStored = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size, file, fresh: false };
  if (layer.digest !== layer.diffId) return asStored;
  // the blob's first bytes, the record of an earlier gzip and its blob's stat, on this thread (three
  // small reads a push makes before its first request)
  if (blobCompressionSync(file) !== 'none') return asStored;
  const known = store.distribution.compressed(layer.diffId);
  const mediaType = gzipLayerMediaType(manifestMediaType);
  if (known && store.blobs.hasSync(known.digest)) {
    return { mediaType, digest: known.digest, size: known.size, file: store.blobs.path(known.digest), fresh: false };
  }
  const made = await gzipInto(store, file, layer.size, onCompress);
  await store.distribution.setCompressed(layer.diffId, { digest: made.digest, size: made.size, compression: 'gzip' });
  return { mediaType, digest: made.digest, size: made.size, file: store.blobs.path(made.digest), fresh: true };
}

/**
 * Gzips `source` into the blob store. The temp file is named as the blob store's own (`blob-…` in
 * tmp/), so a push killed half-way leaves nothing the store's start-up repair does not remove.
 */
async function gzipInto(store: Store, source: string, total: number, onCompress?: (done: number, total: number) => void): Promise<{ digest: string; size: number }> {
  await mkdir(store.layout.tmpDir, { recursive: true });
  const tmp = path.join(store.layout.tmpDir, `blob-gzip-${randomBytes(8).toString('hex')}`);
  const hash = createHash('sha256');
  let size = 0;
  let read = 0;
  const fh = await open(tmp, 'wx', 0o600);
  let closed = false;
  try {
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        read += chunk.length;
        onCompress?.(read, total);
        cb(null, chunk);
      },
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        fh.write(chunk).then(() => cb(), cb);
      },
    });
    await pipeline(createReadStream(source, { highWaterMark: 1 << 20 }), counter, createGzip({ level: zc.Z_DEFAULT_COMPRESSION, chunkSize: 1 << 16 }), sink);
    closed = true;
    await fh.close();
    const digest = `sha256:${hash.digest('hex')}`;
    if (!(await store.blobs.has(digest))) await store.blobs.ingestFile(tmp, digest, size);
    return { digest, size };
  } finally {
    if (!closed) await fh.close().catch(reportCleanupError(`closing ${tmp}`));
    await rm(tmp, { force: true });
  }
}
