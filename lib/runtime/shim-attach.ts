/** The client of a shim's attach socket (cpp/shim/attach.h). */
import { EventEmitter } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { BundleFile, parseBundleJson, ShimExitSchema, type ShimExit } from './bundle.js';
import { AttachFrame, encodeFrame, FrameDecoder } from './shim-frames.js';

/** Connects to one of the bundle's sockets ('attach' or 'events'). */
export function connectInBundle(bundleDir: string, socket: 'attach' | 'events'): Promise<net.Socket> {
  // sun_path holds 108 bytes, a bundle path may not fit: reach the socket through an fd of its
  // directory, whose /proc/self/fd path is short whatever the bundle's is.
  const dirFd = openSync(bundleDir, 'r');
  return new Promise<net.Socket>((resolve, reject) => {
    const s = net.createConnection(`/proc/self/fd/${dirFd}/${BundleFile[socket]}`);
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  }).finally(() => closeSync(dirFd));
}

/** A shim that goes away mid-write: the connection ends, and 'close' says so. */
export const isHangUp = (e: NodeJS.ErrnoException): boolean => e.code === 'EPIPE' || e.code === 'ECONNRESET';

/**
 * A connection to a shim's attach socket: live stdout/stderr, stdin (when the container was started
 * with `openStdin`), resize, and an 'exit' event (a ShimExit) each time the container exits.
 * Errors other than a hang-up are emitted as 'error' to a listener, else reported as a warning.
 */
export class AttachConnection extends EventEmitter {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  #socket: net.Socket;
  #frames = new FrameDecoder();

  private constructor(socket: net.Socket) {
    super();
    this.#socket = socket;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('close', () => {
      this.stdout.end();
      this.stderr.end();
      this.emit('close');
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (!isHangUp(e)) this.#report(e);
    });
  }

  #report(e: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
    else process.emitWarning(`nsbox-shim attach: ${(e as Error).message}`, { code: 'NSBOX_ATTACH' });
  }

  static async connect(bundleDir: string): Promise<AttachConnection> {
    return new AttachConnection(await connectInBundle(bundleDir, 'attach'));
  }

  #onData(d: Buffer): void {
    for (const { type, payload } of this.#frames.push(d)) {
      if (type === AttachFrame.stdout) this.stdout.write(payload);
      else if (type === AttachFrame.stderr) this.stderr.write(payload);
      else if (type === AttachFrame.exit) this.#onExit(payload);
    }
  }

  /** An exit frame that is not a ShimExit is reported, and the output goes on: it is not the container's fault. */
  #onExit(payload: Buffer): void {
    let exit: ShimExit;
    try {
      exit = parseBundleJson(ShimExitSchema, payload.toString('utf8'), 'the exit frame');
    } catch (e) {
      this.#report(e);
      return;
    }
    this.emit('exit', exit);
  }

  /** Writes to the container's stdin. */
  write(data: string | Buffer): void {
    this.#socket.write(encodeFrame(AttachFrame.stdin, Buffer.isBuffer(data) ? data : Buffer.from(data)));
  }

  /** EOF on the container's stdin. */
  closeStdin(): void {
    this.#socket.write(encodeFrame(AttachFrame.closeStdin, Buffer.alloc(0)));
  }

  /** Sets the terminal's size (the container gets SIGWINCH); ignored for a container without one. */
  resize(cols: number, rows: number): void {
    const p = Buffer.alloc(4);
    p.writeUInt16BE(cols, 0);
    p.writeUInt16BE(rows, 2);
    this.#socket.write(encodeFrame(AttachFrame.resize, p));
  }

  close(): void {
    this.#socket.destroy();
  }

  /** Hangs up once what was written (a resize, stdin) has been sent. */
  end(): void {
    this.#socket.end();
  }
}
