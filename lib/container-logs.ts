/**
 * `OutputLog`: what an in-process container printed since its start, kept as it comes (docker's
 * log, without a file), so that `container.logs()` and log waits see all of it whoever else reads
 * the container's stdout and stderr. The container's pipes are read as they fill (it never blocks
 * on a full pipe); the `stdout`/`stderr` the caller gets are copies that start at the first byte.
 * Bounded: past MAX_BYTES the oldest output is dropped from what is kept.
 */
import { EventEmitter, on } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

const MAX_BYTES = 16 << 20;
const MAX_LINES = 100_000;
const MAX_LINE = 64 << 10;

export type OutputKind = 'stdout' | 'stderr';

export class OutputLog {
  /** Complete lines, both streams in arrival order; `#first` is the number of the first kept. */
  readonly #lines: string[] = [];
  #first = 0;
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  readonly #partial = new Map<OutputKind, string>();
  readonly #decoders = new Map<OutputKind, StringDecoder>();
  readonly #copies = new Map<OutputKind, PassThrough>();
  readonly #sources = new Map<OutputKind, Readable>();
  /** Each stream's own bytes, for a copy made after it began (bounded as the whole). */
  readonly #perKind = new Map<OutputKind, { chunks: Buffer[]; bytes: number }>();
  readonly #events = new EventEmitter();
  #open = 0;

  /** Starts reading `stream` (the container's stdout or stderr). */
  attach(kind: OutputKind, stream: Readable | null): void {
    if (!stream) return;
    this.#open++;
    this.#sources.set(kind, stream);
    stream.on('data', (chunk: Buffer) => this.#add(kind, chunk));
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const rest = this.#partial.get(kind);
      if (rest) this.#line(rest);
      this.#partial.delete(kind);
      this.#copies.get(kind)?.end();
      if (--this.#open === 0) this.#events.emit('end');
    };
    stream.once('end', end);
    stream.once('close', end);
  }

  get ended(): boolean {
    return this.#open === 0;
  }

  #add(kind: OutputKind, chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (this.#bytes > MAX_BYTES && this.#chunks.length > 1) this.#bytes -= this.#chunks.shift()!.length;
    const own = this.#perKind.get(kind) ?? { chunks: [], bytes: 0 };
    this.#perKind.set(kind, own);
    own.chunks.push(chunk);
    own.bytes += chunk.length;
    while (own.bytes > MAX_BYTES && own.chunks.length > 1) own.bytes -= own.chunks.shift()!.length;
    this.#copies.get(kind)?.write(chunk);
    let dec = this.#decoders.get(kind);
    if (!dec) this.#decoders.set(kind, (dec = new StringDecoder('utf8')));
    const text = dec.write(chunk);
    const nl = text.lastIndexOf('\n');
    let partial = this.#partial.get(kind) ?? '';
    if (nl === -1) {
      // Only the unfinished line grows (no split of all of it again per chunk); a very long one is cut.
      partial += text;
      if (partial.length > MAX_LINE) {
        this.#line(partial);
        partial = '';
      }
      this.#partial.set(kind, partial);
    } else {
      for (const l of (partial + text.slice(0, nl)).split('\n')) this.#line(l.replace(/\r$/, ''));
      this.#partial.set(kind, text.slice(nl + 1));
    }
    this.#events.emit('chunk', chunk);
  }

  #line(l: string): void {
    this.#lines.push(l);
    // Dropped in halves, not one at a time: a shift per line is quadratic on a chatty container.
    if (this.#lines.length > 2 * MAX_LINES) {
      this.#lines.splice(0, MAX_LINES);
      this.#first += MAX_LINES;
    }
    this.#events.emit('line');
  }

  /** A copy of the stream for the caller, from its first byte kept, then live. */
  copy(kind: OutputKind): Readable | null {
    const source = this.#sources.get(kind);
    if (!source) return null;
    let c = this.#copies.get(kind);
    if (!c) {
      c = new PassThrough();
      for (const b of this.#perKind.get(kind)?.chunks ?? []) c.write(b);
      if (source.readableEnded || source.destroyed) c.end();
      this.#copies.set(kind, c);
    }
    return c;
  }

  /** Everything kept, both streams, as text. */
  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }

  /** The last `n` lines (an unfinished last line included). */
  tail(n: number): string[] {
    const partial = [...this.#partial.values()].filter((p) => p !== '');
    return [...this.#lines, ...partial].slice(-n);
  }

  /** Every line from the first kept, then live ones as they come, until the output ends or `signal` aborts. */
  async *lines(signal: AbortSignal): AsyncGenerator<string> {
    const next = this.#first;
    const events = on(this.#events, 'line', { signal });
    const ended = new Promise<void>((resolve) => (this.ended ? resolve() : this.#events.once('end', resolve)));
    try {
      yield* this.#linesFrom(next, events, ended);
    } finally {
      await events.return?.();
    }
  }

  async *#linesFrom(next: number, events: AsyncIterableIterator<unknown>, ended: Promise<void>): AsyncGenerator<string> {
    for (;;) {
      next = Math.max(next, this.#first);
      while (next < this.#first + this.#lines.length) yield this.#lines[next++ - this.#first]!;
      if (this.ended) return;
      const r = await Promise.race([events.next(), ended.then(() => ({ done: true as const, value: undefined }))]);
      if (r.done && this.ended) {
        while (next < this.#first + this.#lines.length) yield this.#lines[next++ - this.#first]!;
        return;
      }
    }
  }

  /** The output so far, then live, as one stream (both streams' bytes, in arrival order). */
  follow(): Readable {
    const out = new PassThrough();
    for (const b of this.#chunks) out.write(b);
    if (this.ended) return out.end(), out;
    const onChunk = (b: Buffer) => out.write(b);
    this.#events.on('chunk', onChunk);
    this.#events.once('end', () => {
      this.#events.off('chunk', onChunk);
      out.end();
    });
    out.once('close', () => this.#events.off('chunk', onChunk));
    return out;
  }
}
