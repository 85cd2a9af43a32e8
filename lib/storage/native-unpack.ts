/**
 * The layer unpack done by the addon (cpp/layer-extract.cc) for a layer going into an empty directory,
 * which is what a pull and the store's unpack do: the event loop only hands the blob's compressed
 * bytes over, and the inflate, the diff id's sha256, the tar parse and every file system call run on
 * the thread pool, one call at a time, while the next bytes gather (a download as it arrives). The
 * rules and messages are layer-writer.ts's; that writer still takes a directory that is not empty
 * and zstd layers.
 */
import { native } from '../native.js';
import { overlayXattrPrefix } from '../privilege.js';
import { LayerError } from './errors.js';
import { growingBatches } from './gunzip-native.js';
import type { UnpackResult } from './unpack.js';

/** Compressed bytes handed over per call (at least): the first call small, so files appear early. */
const IN_BATCH_FIRST = 256 << 10;
const IN_BATCH_MAX = 4 << 20;

export interface NativeUnpackOptions {
  where: string;
  gzip: boolean;
  owners: boolean;
  /** The owner a new file gets anyway (-1 when the root's setgid bit makes it unknown). */
  ownUid: number;
  ownGid: number;
  warn: (message: string) => void;
  signal?: AbortSignal | undefined;
}

/** Unpacks `source` (the blob's bytes, gzip or plain tar) into the empty directory `root`. */
export async function nativeUnpack(source: AsyncIterable<Buffer>, root: string, o: NativeUnpackOptions): Promise<UnpackResult> {
  const x = native.layerExtractOpen(root, o.gzip, o.owners, o.ownUid, o.ownGid, overlayXattrPrefix());
  const run = async (input: Buffer[], final: boolean) => {
    try {
      const r = await native.layerExtractRun(x, input, final);
      for (const w of r.warnings) o.warn(`${o.where}: ${w}`);
      return r;
    } catch (err) {
      const e = err as Error & { code?: string; entry?: string; errno?: number; warnings?: string[] };
      for (const w of e.warnings ?? []) o.warn(`${o.where}: ${w}`);
      if (!(e instanceof Error) || e.code === undefined) throw err;
      throw new LayerError(`${o.where}: ${e.message}`, {
        code: e.code,
        ...(e.entry === undefined ? {} : { entry: e.entry }),
        ...(e.errno === undefined ? {} : { errno: e.errno }),
      });
    }
  };
  try {
    let r: Awaited<ReturnType<typeof run>> | undefined;
    for await (const { input, last } of growingBatches(source, IN_BATCH_FIRST, IN_BATCH_MAX, () => o.signal?.throwIfAborted())) {
      r = await run(input, last);
    }
    r = r!;
    return { diffId: r.diffId!, tarSize: r.tarSize!, entries: r.entries!, contentSize: r.contentSize!, compression: o.gzip ? 'gzip' : 'none' };
  } finally {
    native.layerExtractClose(x);
  }
}
