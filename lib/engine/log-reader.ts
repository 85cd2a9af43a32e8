/**
 * The json-file log that nsbox-shim writes (`container.log`, one `{log, stream, time}` a line), read
 * once for every client (the CLI's `logs`, the API's logs and attach logs=1). Following it waits on
 * inotify (the shim appends) and on the container's exit (ContainerWatch), never on a timer.
 */
import { open, stat } from 'node:fs/promises';
import { NotFoundError } from '../errors.js';
import { LogEntrySchema, parseBundleJson, type LogEntry } from '../runtime/bundle.js';
import { isCode } from '../storage/errors.js';
import { ContainerWatch, logFileOf } from './container-watch.js';
import { isRunning } from './container-status.js';
import type { EngineContext } from './engine-context.js';

export interface LogOptions {
  follow?: boolean;
  /** The last `tail` entries (all when absent). */
  tail?: number;
  /** Unix seconds. */
  since?: number;
  until?: number;
  signal?: AbortSignal;
}

/** Reads the entries appended to `file` since the last call (a line cut short waits for its end). */
class LogTail {
  #offset = 0;
  #partial = '';
  constructor(readonly file: string) {}

  async read(): Promise<LogEntry[]> {
    let size: number;
    try {
      size = (await stat(this.file)).size;
    } catch (e) {
      if (isCode(e, 'ENOENT')) return [];
      throw e;
    }
    // A new start truncated it: from the top again.
    if (size < this.#offset) this.#offset = 0;
    if (size === this.#offset) return [];
    const fh = await open(this.file, 'r');
    try {
      const buf = Buffer.alloc(size - this.#offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.#offset);
      this.#offset += bytesRead;
      const lines = (this.#partial + buf.subarray(0, bytesRead).toString('utf8')).split('\n');
      this.#partial = lines.pop() ?? '';
      return lines.filter((l) => l !== '').map((l) => parseBundleJson(LogEntrySchema, l, this.file));
    } finally {
      await fh.close();
    }
  }
}

export async function* readLogs(ctx: EngineContext, ref: string, opts: LogOptions = {}): AsyncGenerator<LogEntry> {
  const r = await ctx.store.get(ref);
  const tail = new LogTail(logFileOf(ctx, r));
  const keep = (e: LogEntry) => {
    const t = Date.parse(e.time) / 1000;
    return (opts.since === undefined || t >= opts.since) && (opts.until === undefined || t <= opts.until);
  };
  let first = (await tail.read()).filter(keep);
  if (opts.tail !== undefined && opts.tail >= 0) first = opts.tail === 0 ? [] : first.slice(-opts.tail);
  yield* first;
  if (!opts.follow) return;
  let woken = true;
  let resolveWake: (() => void) | undefined;
  const wake = () => {
    woken = true;
    resolveWake?.();
  };
  const watch = new ContainerWatch(ctx, r.id, wake, { log: true });
  opts.signal?.addEventListener('abort', wake, { once: true });
  try {
    for (;;) {
      if (opts.signal?.aborted) return;
      woken = false;
      const now = await ctx.store.get(r.id).catch((e: unknown) => {
        // Removed while followed: what the log had is all there is.
        if (e instanceof NotFoundError) return undefined;
        throw e;
      });
      watch.arm(now);
      yield* (await tail.read()).filter(keep);
      if (!now || !isRunning(now)) return;
      if (!woken) await new Promise<void>((resolve) => (resolveWake = resolve));
      resolveWake = undefined;
    }
  } finally {
    watch.close();
    opts.signal?.removeEventListener('abort', wake);
  }
}
