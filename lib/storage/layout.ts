/** Where the store keeps things. Every path of the on-disk layout is spelled here and only here. */
import { createRequire } from 'node:module';
import type * as Os from 'node:os';
import path from 'node:path';
import { ValidationError } from '../errors.js';
import { parseDigest } from './digest-format.js';

export interface LayoutEnv {
  NSBOX_ROOT?: string;
  XDG_DATA_HOME?: string;
  HOME?: string;
}

/** NSBOX_ROOT; else /var/lib/nsbox as root; else $XDG_DATA_HOME/nsbox or ~/.local/share/nsbox. */
/**
 * The home directory, with node:os loaded only when it is asked (HOME unset, rootless): its load
 * (~0.4 ms) was a share of every quick command's start (lib/cli/quick/), which never needs it as root.
 * process.getBuiltinModule is Node >= 20.16; before it, a require does the same.
 */
const homedir = (): string => (process.getBuiltinModule ? process.getBuiltinModule('node:os') : (createRequire(import.meta.url)('node:os') as typeof Os)).homedir();

export function defaultRoot(env: LayoutEnv = process.env, euid: number = process.geteuid?.() ?? 0): string {
  if (env.NSBOX_ROOT) return path.resolve(env.NSBOX_ROOT);
  if (euid === 0) return '/var/lib/nsbox';
  const data = env.XDG_DATA_HOME || path.join(env.HOME || homedir(), '.local', 'share');
  return path.join(path.resolve(data), 'nsbox');
}

export class StoreLayout {
  readonly root: string;
  constructor(root: string = defaultRoot()) {
    this.root = path.resolve(root);
  }
  get blobsDir(): string {
    return path.join(this.root, 'blobs', 'sha256');
  }
  blob(digest: string): string {
    return path.join(this.blobsDir, parseDigest(digest).hex);
  }
  get layersDir(): string {
    return path.join(this.root, 'layers');
  }
  layer(chainId: string): string {
    return path.join(this.layersDir, parseDigest(chainId, 'chainId').hex);
  }
  /** The unpacked tree: an overlay lower dir. */
  layerDiff(chainId: string): string {
    return path.join(this.layer(chainId), 'diff');
  }
  /** Written last: a layer directory without it is a crash leftover. */
  layerMarker(chainId: string): string {
    return path.join(this.layer(chainId), 'layer.json');
  }
  get imagesFile(): string {
    return path.join(this.root, 'images.json');
  }
  get imagesLock(): string {
    return path.join(this.root, 'images.lock');
  }
  /** What push learnt from registries: which repositories have a blob. */
  get distributionFile(): string {
    return path.join(this.root, 'distribution.json');
  }
  get distributionLock(): string {
    return path.join(this.root, 'distribution.lock');
  }
  /**
   * The gzip blob push made for a plain-tar layer, one small file per diff id (docker's
   * v2metadata-by-diffid): local knowledge that stays true while the blob exists, whatever the
   * registries forget.
   */
  compressedRecord(diffId: string): string {
    return path.join(this.root, 'compressed', `${parseDigest(diffId, 'diffId').hex}.json`);
  }
  /**
   * Held shared by whatever is adding content (ingest, unpack, a pull until its record is written)
   * and exclusively by garbage collection and start-up repair, so neither removes work in progress.
   */
  get leaseLock(): string {
    return path.join(this.root, 'lease.lock');
  }
  get containersDir(): string {
    return path.join(this.root, 'containers');
  }
  container(id: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw new ValidationError(`invalid container id "${id}"`, 'id');
    return path.join(this.containersDir, id);
  }
  get networksDir(): string {
    return path.join(this.root, 'networks');
  }
  /** A network's record. */
  networkRecord(id: string): string {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new ValidationError(`invalid network id "${id}"`, 'id');
    return path.join(this.networksDir, `${id}.json`);
  }
  /** A network's allocations: `ips/<address>` holds the container id it is allocated to. */
  networkIps(id: string): string {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new ValidationError(`invalid network id "${id}"`, 'id');
    return path.join(this.networksDir, id, 'ips');
  }
  /** Held exclusively to create, remove and repair networks, shared to allocate on one. */
  get networksLock(): string {
    return path.join(this.networksDir, 'networks.lock');
  }
  /**
   * Objects made by a process that should go with it (lib/engine/owners.ts): `owners/<pid>-<start
   * time>/<kind>-<name>.json`, one directory per owning process, read at every engine open.
   */
  get ownersDir(): string {
    return path.join(this.root, 'owners');
  }
  /** Temp files, on the same file system as blobs/ so that rename is atomic. */
  get tmpDir(): string {
    return path.join(this.root, 'tmp');
  }
}
