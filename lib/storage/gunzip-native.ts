/**
 * A gzip layer inflated by the addon on the thread pool (cpp/layer-gunzip.cc: ISA-L when it was there
 * at build time, else zlib), with the sha256 of the output (the diff id) taken in the same pass: the
 * event loop only hands chunks over, and the inflate of the next megabytes runs while the tar reader
 * and the layer writer work on the last ones.
 */
import { native } from '../native.js';
import { LayerError } from './errors.js';

/**
 * Compressed bytes handed over per call (at least; a download's chunks are gathered up to it): the
 * first call small, so the tar reader starts early, then doubling up to IN_BATCH_MAX. Each call waits
 * its turn on the thread pool behind the file batches and the blob's writes; with 512 KiB calls (98 for
 * debian minbase) the tar reader sat waiting for the inflate for over half of a pull, with 4 MiB
 * calls (13) about a third less.
 */
const IN_BATCH_FIRST = 512 << 10;
const IN_BATCH_MAX = 4 << 20;

/**
 * The chunks of `source` in batches of growing size (`first` bytes, then twice that, … up to
 * `max`), for native calls that pay per call; the last batch (possibly empty) has `last: true`.
 * `check` runs before each chunk is taken (to stop early by throwing).
 */
export async function* growingBatches(source: AsyncIterable<Buffer>, first: number, max: number, check: () => void): AsyncGenerator<{ input: Buffer[]; last: boolean }> {
  let batch: Buffer[] = [];
  let bytes = 0;
  let want = first;
  for await (const chunk of source) {
    check();
    batch.push(chunk);
    bytes += chunk.length;
    if (bytes < want) continue;
    yield { input: batch, last: false };
    batch = [];
    bytes = 0;
    want = Math.min(want * 2, max);
  }
  check();
  yield { input: batch, last: true };
}
/** Output bytes per call at most (4 MiB of gzip input is about 10 MiB of tar). */
const MAX_OUT = 16 << 20;
/** The output held for the reader before the inflate waits. */
const MAX_QUEUED = 16 << 20;

export interface NativeGunzip {
  /** The uncompressed bytes; iterate once. */
  chunks: AsyncIterable<Buffer>;
  /** 'sha256:…' of every uncompressed byte, once `chunks` has ended. */
  digest(): string;
}

/** The inflate stopped because the reader did (not an error of its own). */
class Stopped extends Error {}

export function nativeGunzip(source: AsyncIterable<Buffer>, where: string): NativeGunzip {
  const stream = native.gunzipOpen();
  const queue: Buffer[] = [];
  let queued = 0;
  let done = false;
  let stopped = false;
  let failure: unknown;
  let digest: string | undefined;
  let wakeReader: (() => void) | undefined;
  let wakePump: (() => void) | undefined;
  const wake = (w: (() => void) | undefined) => w?.();

  const run = async (input: Buffer[], final: boolean): Promise<void> => {
    let more = true;
    while (more) {
      if (stopped) throw new Stopped();
      let r: Awaited<ReturnType<typeof native.gunzipRun>>;
      try {
        r = await native.gunzipRun(stream, input, final, MAX_OUT);
      } catch (err) {
        throw new LayerError(`${where}: gzip: ${(err as Error).message} (corrupt or truncated layer)`, { cause: err });
      }
      input = [];
      more = r.more;
      if (r.digest) digest = r.digest;
      for (const c of r.chunks) {
        queue.push(c);
        queued += c.length;
      }
      if (r.chunks.length) wake(wakeReader);
      while (queued > MAX_QUEUED && !stopped) await new Promise<void>((resolve) => (wakePump = resolve));
    }
  };

  const pump = (async () => {
    try {
      for await (const { input, last } of growingBatches(source, IN_BATCH_FIRST, IN_BATCH_MAX, () => {
        if (stopped) throw new Stopped();
      })) {
        await run(input, last);
      }
      done = true;
    } catch (err) {
      // Stopped: the reader left first and reports its own error, if any
      failure = err;
    }
    wake(wakeReader);
  })();

  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const c = queue.shift();
        if (c) {
          queued -= c.length;
          if (queued <= MAX_QUEUED) wake(wakePump);
          yield c;
          continue;
        }
        if (failure !== undefined) throw failure;
        if (done) return;
        await new Promise<void>((resolve) => (wakeReader = resolve));
      }
    } finally {
      // stopped early (a failed unpack): the pump leaves its source (closing the file or the
      // download's stream) and no inflate is left running
      stopped = true;
      wake(wakePump);
      await pump;
    }
  }

  return {
    chunks: chunks(),
    digest: () => {
      if (digest === undefined) throw new LayerError(`${where}: gzip: the stream was not read to its end`);
      return digest;
    },
  };
}
