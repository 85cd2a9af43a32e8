/**
 * File contents of a layer unpack: written concurrently (on the thread pool) through the fds the
 * layer writer opened, with a bound on the bytes and files in flight, so the tar parse never waits
 * on one write at a time and memory stays bounded. Path operations stay with the layer writer.
 */
import { closeSync, write as fsWrite } from 'node:fs';
import type { TarEntry, TarSink } from './tar-reader.js';

/** What a file needs from its writer once its content is written. */
export interface FileOwner {
  /** Owner, xattrs, mode, times; closes `fd` whatever happens. */
  finish(fd: number, e: TarEntry, rel: string): void;
  /** An error that stops the unpack (a write failed). */
  failed(err: unknown, entry: string): void;
}

export class ContentWriter {
  readonly #maxPending: number;
  #pendingBytes = 0;
  #pendingFiles = 0;
  #waiters: (() => void)[] = [];
  /** Sinks whose body has not ended: abandoned ones must still close their fd. */
  readonly open = new Set<FileSink>();

  constructor(maxPendingBytes: number) {
    this.#maxPending = maxPendingBytes;
  }

  get pendingFiles(): number {
    return this.#pendingFiles;
  }

  write(fd: number, chunk: Buffer, position: number, done: (err: unknown) => void): void | Promise<void> {
    this.#pendingBytes += chunk.length;
    fsWrite(fd, chunk, 0, chunk.length, position, (err, n) => {
      this.#pendingBytes -= chunk.length;
      if (!err && n !== chunk.length) {
        // short writes to regular files only happen on a full disk: write the rest
        this.write(fd, chunk.subarray(n), position + n, done);
      } else {
        done(err);
      }
      this.#wake();
    });
    if (this.#pendingBytes > this.#maxPending) return this.drain(this.#maxPending);
  }

  fileStarted(): void {
    this.#pendingFiles++;
  }

  fileDone(): void {
    this.#pendingFiles--;
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Waits until at most `bytes` are in flight (0: until every file is done). */
  async drain(bytes: number): Promise<void> {
    while (bytes === 0 ? this.#pendingFiles > 0 || this.#pendingBytes > 0 : this.#pendingBytes > bytes) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** On failure: close the files still open and wait for the writes in flight, so no fd outlives the unpack. */
  async abandon(): Promise<void> {
    for (const sink of [...this.open]) sink.abort();
    await this.drain(0);
  }
}

/** One regular file's body, written at increasing offsets; finished when the last write lands. */
export class FileSink implements TarSink {
  readonly #owner: FileOwner;
  readonly #content: ContentWriter;
  readonly #fd: number;
  readonly #e: TarEntry;
  readonly #rel: string;
  readonly #settle: () => Promise<void>;
  #position = 0;
  #inflight = 1; // the sink itself until end()
  #error: unknown;
  #settled = false;

  constructor(owner: FileOwner, content: ContentWriter, fd: number, e: TarEntry, rel: string, settle: () => Promise<void>) {
    this.#owner = owner;
    this.#content = content;
    this.#fd = fd;
    this.#e = e;
    this.#rel = rel;
    this.#settle = settle;
    content.fileStarted();
    content.open.add(this);
  }

  #done = (err: unknown): void => {
    if (err && this.#error === undefined) this.#error = err;
    if (--this.#inflight > 0) return;
    let error = this.#error;
    if (error === undefined) {
      try {
        this.#owner.finish(this.#fd, this.#e, this.#rel);
      } catch (err2) {
        error = err2;
      }
    } else {
      closeSync(this.#fd);
    }
    this.#settled = true;
    if (error !== undefined && !(error instanceof Abandoned)) this.#owner.failed(error, this.#e.path);
    this.#content.fileDone();
  };

  write(chunk: Buffer): void | Promise<void> {
    this.#inflight++;
    const at = this.#position;
    this.#position += chunk.length;
    return this.#content.write(this.#fd, chunk, at, this.#done);
  }

  abort(): void {
    this.#content.open.delete(this);
    this.#done(new Abandoned());
  }

  end(): void | Promise<void> {
    this.#content.open.delete(this);
    this.#done(undefined);
    // xattrs are set by path: finish this file before the next entry can replace that path
    if (this.#e.xattrs.size && !this.#settled) return this.#settle();
  }
}

/** The unpack failed elsewhere: this file is closed unfinished (not an error of its own). */
class Abandoned extends Error {
  constructor() {
    super('unpack abandoned');
  }
}
