/**
 * The build's progress events as BuildKit's progress shows them: a list of vertices (FROM, RUN,
 * COPY, ADD, WORKDIR, and the export of the image), each numbered in the order it started, with
 * its start and end times, whether it was cached, its output lines, and how it ended. Stages
 * that run at once each have their own current vertex (events carry their stage). What the
 * plain and the TTY views print is drawn from this.
 */
import type { BuildProgress } from './stage-state.js';

export interface Vertex {
  /** BuildKit's `#N`: 1-based, in the order the vertices started. */
  id: number;
  /** `[stage-1 2/3] RUN make` */
  name: string;
  started: number;
  finished?: number;
  cached: boolean;
  /** Set when the vertex failed (the build's error) or was stopped by another stage's failure. */
  error?: string;
  canceled?: boolean;
  /** Complete output lines, with the time (ms since the vertex started) each was seen. */
  lines: Array<{ at: number; text: string }>;
  /** Output after the last newline. */
  partial: string;
}

export interface VertexListener {
  started?(v: Vertex): void;
  line?(v: Vertex, line: { at: number; text: string }): void;
  cached?(v: Vertex): void;
  finished?(v: Vertex): void;
  warning?(message: string): void;
}

/** An instruction on one line: continuation lines and heredoc bodies as BuildKit names the step. */
const oneLine = (instruction: string) => instruction.split('\n')[0]!.replace(/\s+/g, ' ').trim();

export class VertexList {
  readonly vertices: Vertex[] = [];
  /** Each stage's current vertex (null while the stage is on a step that is not one). */
  readonly #current = new Map<number | undefined, Vertex | null>();
  readonly started: number;

  constructor(
    private readonly listener: VertexListener = {},
    private readonly clock: () => number = Date.now,
  ) {
    this.started = clock();
  }

  /** The handler to give the build as its onProgress. */
  readonly onProgress = (e: BuildProgress): void => {
    const now = this.clock();
    const cur = this.#current.get(e.stage);
    switch (e.type) {
      case 'step': {
        if (cur) this.#finish(cur, now);
        if (!e.vertex) {
          this.#current.set(e.stage, null);
          break;
        }
        const label = `${e.vertex.stage === undefined ? '' : `${e.vertex.stage} `}${e.vertex.n}/${e.vertex.of}`;
        this.#current.set(e.stage, this.#start(`[${label}] ${oneLine(e.instruction)}`, now));
        break;
      }
      case 'exporting':
        for (const [stage, v] of this.#current) if (v) this.#finish(v, now), this.#current.set(stage, null);
        this.#current.set(undefined, this.#start('exporting to image', now));
        break;
      case 'cached':
        if (cur && !cur.cached) {
          cur.cached = true;
          this.listener.cached?.(cur);
        }
        break;
      case 'output':
        if (cur) this.#output(cur, e.data.toString('utf8'), now);
        break;
      case 'stepDone':
        if (cur) this.#finish(cur, now);
        this.#current.set(e.stage, null);
        break;
      case 'failed':
        if (cur) {
          cur.error = e.message;
          this.#finish(cur, now);
        }
        this.#current.set(e.stage, null);
        break;
      case 'warning':
        this.listener.warning?.(e.message);
        break;
      default:
        break;
    }
  };

  /**
   * The build has ended: what is still open is done, or with `error`, canceled (a failed stage's
   * vertex got its error from the 'failed' event; with none, as when the failure came before any
   * stage ran, the last vertex still open takes it).
   */
  end(error?: Error): void {
    const now = this.clock();
    const open = this.vertices.filter((v) => v.finished === undefined);
    if (error && !this.vertices.some((v) => v.error) && open.length) open.at(-1)!.error = error.message;
    for (const v of open) {
      if (error && !v.error) v.canceled = true;
      this.#finish(v, now);
    }
    this.#current.clear();
  }

  /** The vertex that failed, if one did. */
  get failed(): Vertex | undefined {
    return this.vertices.find((v) => v.error !== undefined);
  }

  /** A vertex the caller adds (the export's naming of the image), already done. */
  note(name: string): Vertex {
    const v = this.#start(name, this.clock());
    this.#finish(v, v.started);
    return v;
  }

  #start(name: string, now: number): Vertex {
    const v: Vertex = { id: this.vertices.length + 1, name, started: now, cached: false, lines: [], partial: '' };
    this.vertices.push(v);
    this.listener.started?.(v);
    return v;
  }

  #output(v: Vertex, text: string, now: number): void {
    const parts = (v.partial + text).split(/\r?\n/);
    v.partial = parts.pop()!;
    for (const p of parts) {
      const line = { at: now - v.started, text: p };
      v.lines.push(line);
      this.listener.line?.(v, line);
    }
  }

  #finish(v: Vertex, now: number): void {
    if (v.finished !== undefined) return;
    v.finished = now;
    if (v.partial) {
      const line = { at: now - v.started, text: v.partial };
      v.partial = '';
      v.lines.push(line);
      this.listener.line?.(v, line);
    }
    this.listener.finished?.(v);
  }
}
