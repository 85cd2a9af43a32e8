/**
 * The layer unpack: one layer tar (gzip, zstd or plain) into a directory, in one pass over its
 * bytes. Into an empty directory with gzip or a plain tar (a pull, the store's unpack), the addon does
 * it all off the event loop (native-unpack.ts, cpp/layer-extract.cc: inflate and diff id on the thread
 * pool, the tar parse and the entries on threads of its own). Otherwise: decompress (decompress.ts),
 * parse (tar-reader.ts), apply each entry without ever leaving the directory (layer-writer.ts), and
 * hash the uncompressed tar (the diff id) on the way. Both follow the same rules, with the same
 * messages. The bytes come from a file or from any stream of chunks, such as a download as it arrives.
 */
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { decompress, sniffStream, type Compression } from './decompress.js';
import { LayerError } from './errors.js';
import { LayerWriter } from './layer-writer.js';
import { nativeUnpack } from './native-unpack.js';
import { TarReader } from './tar-reader.js';

export { sniffCompression, type Compression } from './decompress.js';

export interface UnpackOptions {
  /** Names the layer in errors ("layer sha256:…"); default the blob path. */
  name?: string;
  /** chown entries to the tar's uid/gid (default: when running as root). */
  preserveOwners?: boolean;
  /** Bytes of file content in flight at once (default 16 MiB). */
  maxPendingBytes?: number;
  /** Things that were skipped or could not be applied (an xattr the file system refuses). */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  /**
   * Who applies the entries: 'native' (the addon, cpp/layer-extract.cc: gzip or plain tar into an
   * empty directory) or 'js' (layer-writer.ts: any directory, any compression). Default: native when
   * it can. For tests comparing the two.
   */
  engine?: 'native' | 'js';
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  entries: number;
  /** Sum of the regular files' sizes. */
  contentSize: number;
  compression: Compression;
}

/**
 * Unpacks the layer in `source` (a blob file, or a stream of the blob's bytes; gzip, zstd or plain,
 * told apart by their first bytes) into `dest`, an existing empty directory. Throws a LayerError
 * naming the entry for anything unsafe, and passes a failing stream's own error through; `dest` is
 * then left half-filled for the caller to remove.
 */
export async function unpackLayer(source: string | AsyncIterable<Buffer>, dest: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const where = opts.name ?? (typeof source === 'string' ? `layer ${source}` : 'layer');
  const root = path.resolve(dest);
  const st = lstatSync(root);
  if (!st.isDirectory()) throw new LayerError(`${where}: ${root} is not a directory`);
  let input: AsyncIterable<Buffer> = typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source;
  const owners = opts.preserveOwners ?? process.geteuid?.() === 0;
  if (opts.engine !== 'js' && readdirSync(root).length === 0) {
    const sniffed = await sniffStream(input, where);
    if (sniffed.compression !== 'zstd') {
      // the owner a new file gets anyway, unless the root's setgid bit passes its group down
      const inherits = (st.mode & 0o2000) === 0;
      return nativeUnpack(sniffed.chunks, root, {
        where,
        gzip: sniffed.compression === 'gzip',
        owners,
        ownUid: inherits ? (process.geteuid?.() ?? -1) : -1,
        ownGid: inherits ? (process.getegid?.() ?? -1) : -1,
        warn: opts.onWarning ?? (() => undefined),
        signal: opts.signal,
      });
    }
    input = sniffed.chunks;
  }
  const writer = new LayerWriter(root, where, owners, opts.maxPendingBytes ?? 16 << 20, opts.onWarning ?? (() => undefined));
  const reader = new TarReader(writer.entry, where);
  const hash = createHash('sha256');
  let tarSize = 0;
  let compression: Compression;
  let diffId: string;
  try {
    const tar = await decompress(input, where);
    compression = tar.compression;
    for await (const chunk of tar.chunks) {
      opts.signal?.throwIfAborted();
      if (!tar.digest) hash.update(chunk);
      tarSize += chunk.length;
      await reader.write(chunk);
    }
    reader.end();
    await writer.complete();
    diffId = tar.digest ? tar.digest() : `sha256:${hash.digest('hex')}`;
  } catch (err) {
    await writer.abandon();
    throw err;
  }
  return { diffId, tarSize, entries: reader.entries, contentSize: writer.contentSize, compression };
}
