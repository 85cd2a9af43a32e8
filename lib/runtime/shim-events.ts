/**
 * The client of a shim's events.sock (protocol in cpp/shim/attach.h, frames in bundle.ts'
 * ShimEventSchema): what happens to a detached container as it happens — starts, exits with their
 * status and oomKilled, OOM kills, state changes — so that an engine waits on the shim instead of
 * polling its files. It takes nothing from attach: no output, no early replay.
 *
 *   const events = await ShimEvents.connect(bundle);
 *   events.on('exit', (e) => …);               // or: for await (const e of events) …
 *   const last = await events.done;            // the last exit, once the shim is gone
 *
 * A shim that is gone already (or goes while connecting) is no error: the events then are what its
 * files say (state.json, exit.json), and the stream ends. A shim too old to have events.sock is
 * an NsboxError with code 'ERR_SHIM_NO_EVENTS' (its caller falls back to reading the files).
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { NsboxError } from '../errors.js';
import { readExit, readShimPid, readState, SHIM_EVENT_TYPES, ShimEventSchema, parseBundleJson, type ShimEvent, type ShimExit } from './bundle.js';
import { connectInBundle, isHangUp } from './shim-attach.js';
import { AttachFrame, FrameDecoder } from './shim-frames.js';

type Listener<T extends ShimEvent['type']> = (e: Extract<ShimEvent, { type: T }>) => void;

const isGone = (e: NodeJS.ErrnoException): boolean => e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || isHangUp(e);
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
/** A frame's event; undefined for a newer shim's kind of event, which is not ours to read. */
function parseEvent(text: string): ShimEvent | undefined {
  const type = (JSON.parse(text) as { type?: unknown }).type;
  return typeof type === 'string' && SHIM_EVENT_TYPES.has(type) ? parseBundleJson(ShimEventSchema, text, 'an events.sock frame') : undefined;
}
const isFinal = (e: ShimEvent): boolean => e.type === 'state' && (e.status === 'exited' || e.status === 'stopped');

/**
 * Emits 'event' with every ShimEvent, and each under its type ('state', 'start', 'exit', 'oom');
 * 'end' once the shim is gone. Listen (or iterate) at once after connect: events are not kept for
 * a listener that comes later. Errors other than the shim going away are emitted as 'error' to a
 * listener, else reported as a warning; the stream ends after one.
 */
export class ShimEvents extends EventEmitter {
  /** Resolves once the shim is gone, with the last exit it recorded (undefined when none). */
  readonly done: Promise<ShimExit | undefined>;
  #bundle: string;
  #socket: net.Socket | undefined;
  #frames = new FrameDecoder();
  #lastExit: ShimExit | undefined;
  #final = false;
  #ended = false;
  #resolve!: (e: ShimExit | undefined) => void;

  private constructor(bundle: string, socket: net.Socket | undefined) {
    super();
    this.#bundle = bundle;
    this.#socket = socket;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    if (!socket) {
      // Gone before we came: told from its files, after the caller had a chance to listen.
      setImmediate(() => this.#end());
      return;
    }
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (!isGone(e)) this.#report(e);
    });
    socket.on('close', () => this.#end());
  }

  /** Connects to the shim of `bundle`; a shim that is gone gives an events stream that ends at once. */
  static async connect(bundle: string): Promise<ShimEvents> {
    try {
      return new ShimEvents(bundle, await connectInBundle(bundle, 'events'));
    } catch (e) {
      if (!isGone(e as NodeJS.ErrnoException)) throw e;
      // No socket and yet a shim that says it runs its container: one from before events.sock.
      const pid = readShimPid(bundle);
      const status = readState(bundle)?.status;
      if (pid !== undefined && alive(pid) && (status === 'running' || status === 'restarting')) {
        throw new NsboxError(`nsbox-shim (pid ${pid}) in ${bundle} has no events socket: it was started by an older nsbox`, { code: 'ERR_SHIM_NO_EVENTS', cause: e });
      }
      return new ShimEvents(bundle, undefined);
    }
  }

  /** The last exit seen (from the shim, or from exit.json once it is gone). */
  get lastExit(): ShimExit | undefined {
    return this.#lastExit;
  }

  override on<T extends ShimEvent['type']>(event: T, listener: Listener<T>): this;
  override on(event: 'event', listener: (e: ShimEvent) => void): this;
  override on(event: 'end' | 'error', listener: (...args: unknown[]) => void): this;
  override on(event: string, listener: (...args: never[]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  /** Hangs up; 'end' follows (with what the files say by then). */
  close(): void {
    if (this.#socket) this.#socket.destroy();
    else if (!this.#ended) setImmediate(() => this.#end());
  }

  /** Every event until the shim is gone. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ShimEvent> {
    const queue: ShimEvent[] = [];
    let wake: (() => void) | undefined;
    let ended = this.#ended;
    let failure: unknown;
    const onEvent = (e: ShimEvent) => {
      queue.push(e);
      wake?.();
    };
    const onEnd = () => {
      ended = true;
      wake?.();
    };
    const onError = (e: unknown) => {
      failure = e;
      wake?.();
    };
    this.on('event', onEvent);
    this.on('end', onEnd);
    this.on('error', onError);
    try {
      for (;;) {
        if (failure !== undefined) throw failure;
        const next = queue.shift();
        if (next) yield next;
        else if (ended) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      this.off('event', onEvent);
      this.off('end', onEnd);
      this.off('error', onError);
    }
  }

  #emitEvent(e: ShimEvent): void {
    if (e.type === 'exit') {
      const { type: _, ...exit } = e;
      this.#lastExit = exit;
    }
    if (isFinal(e)) this.#final = true;
    this.emit('event', e);
    this.emit(e.type, e);
  }

  #onData(d: Buffer): void {
    for (const { type, payload } of this.#frames.push(d)) {
      if (type !== AttachFrame.event) continue;
      let event: ShimEvent | undefined;
      try {
        event = parseEvent(payload.toString('utf8'));
      } catch (e) {
        // Not a frame this reader can trust: say so, and end as if the shim had gone.
        this.#report(e);
        this.#socket?.destroy();
        return;
      }
      // A listener's own exception is its own: it is not caught here.
      if (event) this.#emitEvent(event);
    }
  }

  #report(e: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
    else process.emitWarning(`nsbox-shim events: ${(e as Error).message}`, { code: 'NSBOX_SHIM_EVENTS' });
  }

  /** The shim hung up (or was never there): what it did not get to say is in its files. */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.#final) {
      try {
        const exit = readExit(this.#bundle);
        if (exit && exit.finishedAt !== this.#lastExit?.finishedAt) this.#emitEvent({ type: 'exit', ...exit });
        const state = readState(this.#bundle);
        if (state && (state.status === 'exited' || state.status === 'stopped')) this.#emitEvent({ type: 'state', ...state });
      } catch (e) {
        this.#report(e);
      }
    }
    this.emit('end');
    this.#resolve(this.#lastExit);
  }
}
