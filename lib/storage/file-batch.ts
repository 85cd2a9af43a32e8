/**
 * Small regular files of a layer unpack, created and filled in batches by the addon: one thread-pool
 * hop for a few hundred files instead of six syscalls each from the event loop (open, write, fchown,
 * fchmod, futimes, close), which is what bound the unpack. The layer writer has checked each path
 * and created its directories before handing a file over, and it waits for the batches (`flush`)
 * before anything that could meet one of these paths: an entry replacing a path, a hard link, a
 * whiteout, the directories' final modes and times.
 */
import { native } from '../native.js';
import type { TarEntry, TarSink } from './tar-reader.js';

/** Files up to this size are batched; bigger ones are streamed through file-sink.ts. */
export const BATCH_MAX_FILE = 1 << 20;
const BATCH_BYTES = 4 << 20;
const BATCH_FILES = 256;
/** Batches on the thread pool at once: leaves the pool's other threads to the gunzip and big files. */
const MAX_INFLIGHT = 2;

export class FileBatcher {
  readonly #dirfd: number;
  readonly #fail: (rel: string, err: unknown) => unknown;
  #paths: string[] = [];
  #meta: number[] = [];
  #chunks: Buffer[] = [];
  #bytes = 0;
  readonly #inflight = new Set<Promise<void>>();
  #failure: unknown;

  /** `dirfd` is the layer root's, owned by the caller; `fail` turns a native error into the unpack's. */
  constructor(dirfd: number, fail: (rel: string, err: unknown) => unknown) {
    this.#dirfd = dirfd;
    this.#fail = fail;
  }

  /** True when no file is queued or being written. */
  get idle(): boolean {
    return this.#paths.length === 0 && this.#inflight.size === 0;
  }

  /** A sink collecting one file's body; the file joins the batch when it ends. uid/gid -1: no chown. */
  sink(rel: string, e: TarEntry, uid: number, gid: number): TarSink {
    const chunks: Buffer[] = [];
    return {
      write: (chunk) => {
        chunks.push(chunk);
      },
      end: () => this.#add(rel, e, uid, gid, chunks),
    };
  }

  #add(rel: string, e: TarEntry, uid: number, gid: number, chunks: Buffer[]): void | Promise<void> {
    this.#check();
    this.#paths.push(rel);
    this.#meta.push(e.mode, uid, gid, e.atime ?? e.mtime, e.mtime, chunks.length);
    for (const c of chunks) this.#chunks.push(c);
    this.#bytes += e.size;
    if (this.#bytes < BATCH_BYTES && this.#paths.length < BATCH_FILES) return;
    this.#dispatch();
    if (this.#inflight.size >= MAX_INFLIGHT) return Promise.race(this.#inflight).then(() => this.#check());
  }

  #dispatch(): void {
    if (this.#paths.length === 0) return;
    const paths = this.#paths;
    const meta = new Float64Array(this.#meta);
    const chunks = this.#chunks;
    this.#paths = [];
    this.#meta = [];
    this.#chunks = [];
    this.#bytes = 0;
    const p: Promise<void> = native.writeFiles(this.#dirfd, paths.join('\0'), meta, chunks).then(
      () => {
        this.#inflight.delete(p);
      },
      (err: unknown) => {
        this.#inflight.delete(p);
        if (this.#failure === undefined) this.#failure = this.#fail((err as { path?: string }).path ?? paths[0] ?? '', err);
      },
    );
    this.#inflight.add(p);
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Writes what is queued and waits until every file is complete; throws the first failure. */
  async flush(): Promise<void> {
    this.#dispatch();
    while (this.#inflight.size) await Promise.race(this.#inflight);
    this.#check();
  }

  /** On failure elsewhere: drops what is queued and waits for the batches in flight (errors ignored). */
  async abandon(): Promise<void> {
    this.#paths = [];
    this.#meta = [];
    this.#chunks = [];
    while (this.#inflight.size) await Promise.race(this.#inflight);
  }
}
