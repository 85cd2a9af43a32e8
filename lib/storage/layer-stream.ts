/**
 * One layer unpacked from its compressed bytes as they arrive, so a pull reads its download once:
 * decompress, parse, write and hash in the same pass as the fetcher's own hashing of the blob. The
 * layer appears under its name only after both digests matched: the blob's (the fetcher says so by
 * calling verify() once its bytes hashed right) and the diff id (checked by verify() itself), then
 * commit(). Any failure, or abort(), removes the partial layer.
 */
import type { LayerRecord } from './layer-store.js';

/** Bytes of the blob buffered ahead of the unpack before write() asks the caller to wait. */
const AHEAD = 8 << 20;

/**
 * The unpack itself (LayerStore.stream): reads `input` to its end, checks the diff id, then calls
 * `verified()`, which returns once the layer may be published (or throws when it may not).
 */
export type LayerStreamRun = (input: AsyncIterable<Buffer>, verified: () => Promise<void>) => Promise<LayerRecord>;

/**
 * The blob's bytes between the download and the unpack: the chunks as they came, handed to the
 * reader one by one (a PassThrough's reader gets everything buffered concatenated into one new
 * Buffer each time: a copy of the whole blob, in pieces of up to AHEAD bytes, on the event loop).
 */
class ChunkQueue implements AsyncIterable<Buffer> {
  readonly #chunks: Buffer[] = [];
  #head = 0;
  #bytes = 0;
  #ended = false;
  #error: unknown;
  #wakeReader: (() => void) | undefined;
  /** Resolved when the queue drops to AHEAD or below (or fails); shared by every waiting writer. */
  #drained: { promise: Promise<void>; resolve: () => void } | undefined;

  /** Queues the chunk; a promise when the reader is more than AHEAD bytes behind. */
  push(chunk: Buffer): void | Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    if (this.#ended) throw new Error('layer stream: write after end');
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    this.#wake();
    if (this.#bytes <= AHEAD) return;
    if (!this.#drained) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#drained = { promise, resolve };
    }
    return this.#drained.promise;
  }

  end(): void {
    this.#ended = true;
    this.#wake();
  }

  /** The reader gets `err`; waiting writers are let go (they see the failure on their next write). */
  fail(err: unknown): void {
    if (this.#error === undefined) this.#error = err;
    this.#chunks.length = 0;
    this.#head = 0;
    this.#bytes = 0;
    this.#wake();
    this.#release();
  }

  #wake(): void {
    const w = this.#wakeReader;
    this.#wakeReader = undefined;
    w?.();
  }

  #release(): void {
    const d = this.#drained;
    this.#drained = undefined;
    d?.resolve();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#head < this.#chunks.length) {
        const c = this.#chunks[this.#head]!;
        this.#chunks[this.#head++] = undefined as unknown as Buffer;
        if (this.#head > 1024 && this.#head * 2 > this.#chunks.length) {
          this.#chunks.splice(0, this.#head);
          this.#head = 0;
        }
        this.#bytes -= c.length;
        if (this.#bytes <= AHEAD) this.#release();
        yield c;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wakeReader = resolve));
    }
  }
}

/** The caller stopped the stream (abort()): what the unpack ends with when nothing else failed first. */
export class LayerStreamAborted extends Error {
  constructor(cause?: unknown) {
    super('layer stream aborted', cause === undefined ? undefined : { cause });
  }
}

export class LayerStream {
  readonly #input = new ChunkQueue();
  readonly #task: Promise<LayerRecord>;
  #failure: unknown;
  #ended = false;
  /** Resolved when the unpack has checked the diff id. */
  #onVerified!: () => void;
  readonly #verified = new Promise<void>((resolve) => (this.#onVerified = resolve));
  /** Opens (true) on commit(), shuts (false) on abort(). */
  #openGate!: (publish: boolean) => void;
  readonly #gate = new Promise<boolean>((resolve) => (this.#openGate = resolve));

  constructor(run: LayerStreamRun) {
    this.#task = run(this.#input, async () => {
      this.#onVerified();
      if (!(await this.#gate)) throw new LayerStreamAborted();
    });
    // kept for write() and verify(), which report it; commit() and abort() await the task itself
    this.#task.catch((err: unknown) => {
      this.#failure = err;
      this.#input.fail(err);
    });
  }

  /** The next bytes of the blob, in order from its first; a returned promise asks the caller to wait. */
  write(chunk: Buffer): void | Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    const wait = this.#input.push(chunk);
    if (!wait) return;
    return wait.then(() => {
      if (this.#failure !== undefined) throw this.#failure;
    });
  }

  /**
   * Every byte was written and the blob's digest matched: waits for the unpack to finish and checks
   * the diff id (DigestMismatchError, or the unpack's own error; the partial layer is then gone).
   */
  async verify(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      this.#input.end();
    }
    await Promise.race([this.#verified, this.#task]);
  }

  /** After verify(): publishes the layer under its chain id. */
  commit(): Promise<LayerRecord> {
    this.#openGate(true);
    return this.#task;
  }

  /** Throws the layer away; resolves once the partial layer is removed. */
  async abort(reason?: unknown): Promise<void> {
    this.#openGate(false);
    if (!this.#ended) {
      this.#ended = true;
      this.#input.fail(new LayerStreamAborted(reason));
    }
    try {
      await this.#task;
    } catch (err) {
      // The expected end of an aborted stream; anything else is why it was aborted, or what the
      // truncated bytes made of it, and the caller reports its own reason.
      if (!(err instanceof LayerStreamAborted) && this.#failure === undefined) this.#failure = err;
    }
  }
}
