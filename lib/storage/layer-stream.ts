/**
 * One layer unpacked from its compressed bytes as they arrive, so a pull reads its download once:
 * decompress, parse, write and hash in the same pass as the fetcher's own hashing of the blob. The
 * layer appears under its name only after both digests matched: the blob's (the fetcher says so by
 * calling verify() once its bytes hashed right) and the diff id (checked by verify() itself), then
 * commit(). Any failure, or abort(), removes the partial layer.
 */
import { PassThrough } from 'node:stream';
import type { LayerRecord } from './layer-store.js';

/** Bytes of the blob buffered ahead of the unpack before write() asks the caller to wait. */
const AHEAD = 8 << 20;

/**
 * The unpack itself (LayerStore.stream): reads `input` to its end, checks the diff id, then calls
 * `verified()`, which returns once the layer may be published (or throws when it may not).
 */
export type LayerStreamRun = (input: PassThrough, verified: () => Promise<void>) => Promise<LayerRecord>;

/** The caller stopped the stream (abort()): what the unpack ends with when nothing else failed first. */
export class LayerStreamAborted extends Error {
  constructor(cause?: unknown) {
    super('layer stream aborted', cause === undefined ? undefined : { cause });
  }
}

export class LayerStream {
  readonly #input = new PassThrough({ highWaterMark: AHEAD });
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
    // abort() destroys the input with its reason, possibly before the unpack reads from it: the
    // unpack meets that error when it iterates, so the stream's own 'error' event needs no one
    this.#input.on('error', () => undefined);
    this.#task = run(this.#input, async () => {
      this.#onVerified();
      if (!(await this.#gate)) throw new LayerStreamAborted();
    });
    // kept for write() and verify(), which report it; commit() and abort() await the task itself
    this.#task.catch((err: unknown) => {
      this.#failure = err;
      this.#input.destroy();
    });
  }

  /** The next bytes of the blob, in order from its first; a returned promise asks the caller to wait. */
  write(chunk: Buffer): void | Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#input.write(chunk)) return;
    return new Promise<void>((resolve, reject) => {
      this.#input.once('drain', resolve);
      this.#task.catch(reject);
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
      this.#input.destroy(new LayerStreamAborted(reason));
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
