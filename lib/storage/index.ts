/**
 * The on-disk store in three parts (containerd's split): content (BlobStore), snapshots
 * (LayerStore) and metadata (ImageStore), over one StoreLayout.
 */
import { mkdir } from 'node:fs/promises';
import { tryLock, withLock } from './atomic.js';
import { BlobStore } from './blob-store.js';
import { BuildCacheStore } from './build-cache-store.js';
import { DistributionStore } from './distribution-store.js';
import { ImageStore } from './image-store.js';
import { LayerStore } from './layer-store.js';
import { defaultRoot, StoreLayout } from './layout.js';

export class Store {
  readonly layout: StoreLayout;
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  readonly images: ImageStore;
  readonly distribution: DistributionStore;
  readonly buildCache: BuildCacheStore;

  constructor(opts: { root?: string } = {}) {
    this.layout = new StoreLayout(opts.root ?? defaultRoot());
    this.blobs = new BlobStore(this.layout);
    this.layers = new LayerStore(this.layout);
    this.images = new ImageStore(this.layout, { blobs: this.blobs, layers: this.layers });
    this.distribution = new DistributionStore(this.layout);
    this.buildCache = new BuildCacheStore(this.layout);
  }

  /** Creates the directories and repairs what a crash left (unless another process is busy with the store). */
  static async open(opts: { root?: string } = {}): Promise<Store> {
    const store = new Store(opts);
    await store.blobs.init();
    await store.layers.init();
    await mkdir(store.layout.containersDir, { recursive: true });
    await store.repair();
    return store;
  }

  /**
   * Removes temp files and unfinished layers. Only when no other holder of the lease exists (an
   * ingest or unpack in progress elsewhere): returns false when it had to skip.
   */
  async repair(): Promise<boolean> {
    const r = await tryLock(this.layout.leaseLock, async () => {
      await this.blobs.repair();
      await this.layers.repair();
    });
    return r.locked;
  }

  /**
   * Runs `fn` holding the lease shared: gc() waits until it ends. Wrap a whole pull in it, so the
   * blobs and layers it added survive until its image record is written.
   */
  withLease<T>(fn: () => Promise<T> | T): Promise<T> {
    return withLock(this.layout.leaseLock, fn, { shared: true });
  }
}

export { fsyncDir, fsyncDirAsync, replaceFile, tryLock, withLock, writeFileAtomic, type LockOptions } from './atomic.js';
export { BlobStore, type BlobInfo, type BlobSource } from './blob-store.js';
export { BuildCacheStore, buildCacheEntrySchema, builtLayerSchema, treeSize, type BuildCacheEntry, type BuildCacheRecord, type BuiltLayer, type CacheMountRecord } from './build-cache-store.js';
export { DistributionStore, type CompressedBlob, type DistributionSnapshot } from './distribution-store.js';
export { chainId, chainIds, digestSchema, parseDigest, sha256, type Digest } from './digest.js';
export { DigestMismatchError, LayerError } from './errors.js';
export {
  ImageStore,
  imageLayerSchema,
  imageRecordSchema,
  type GcResult,
  type ImageEntry,
  type ImageRecord,
  type ImageRecordInput,
  type ImageSnapshot,
  type InUse,
  type JournalEntry,
  type TagMove,
  whoAmI,
} from './image-store.js';
export { mergeLayers, mergeLayersAt, type MergeOptions } from './layer-merge.js';
export { LayerStore, layerRecordSchema, type LayerRecord, type LayerUnpackOptions } from './layer-store.js';
export { LayerStream } from './layer-stream.js';
export { defaultRoot, StoreLayout, type LayoutEnv } from './layout.js';
export { decompress, sniffCompression, type Compression } from './decompress.js';
export { isTarHeader, TarReader, type TarEntry, type TarEntryType, type TarSink } from './tar-reader.js';
export { TarWriter } from './tar-writer.js';
export { unpackLayer, type UnpackOptions, type UnpackResult } from './unpack.js';
