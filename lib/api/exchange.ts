/**
 * `Exchange`: one API request and its answer, whether it came as a plain HTTP request or as an
 * `Upgrade: tcp` request that node:http hands over as a bare socket. Handlers see one interface and
 * never the difference, except in `hijack()`, which turns the connection into a byte pipe both ways.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { ApiError, messageOf, statusOf } from './api-error.js';

/** A taken-over connection: what the client sends, and where its output goes. */
export interface Hijacked {
  readonly input: Readable;
  readonly output: Writable;
  /** Ends the output, so the client sees EOF (attach and exec end this way), then the connection. */
  end(): void;
}

/** Bodies larger than this are refused: the API's JSON bodies are small. */
const BODY_LIMIT = 16 * 1024 * 1024;

const STATUS_TEXT: Record<number, string> = {
  101: 'UPGRADED', 200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request',
  404: 'Not Found', 409: 'Conflict', 500: 'Internal Server Error', 501: 'Not Implemented',
};

export abstract class Exchange {
  readonly method: string;
  /** The path without its `/v1.NN` prefix. */
  path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** Set by the router from the route's pattern. */
  params: Record<string, string> = {};
  /** The status sent, for the request log. */
  status = 0;
  readonly #abort = new AbortController();
  #bodyRead = false;

  /** Sent with every answer (docker's Api-Version, Server, Ostype). */
  protected readonly defaults: Record<string, string>;

  protected constructor(req: IncomingMessage, defaults: Record<string, string>) {
    this.defaults = defaults;
    this.method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://nsbox');
    this.path = url.pathname;
    this.query = url.searchParams;
    this.headers = req.headers;
  }

  /** Aborted when the client goes away before the answer is complete. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }
  protected gone(): void {
    this.#abort.abort();
  }

  /** Whether the answer has begun (after that an error can only end the connection). */
  abstract get started(): boolean;

  /** The request body (the whole of it; Content-Length bytes on an upgraded connection). */
  async body(): Promise<Buffer> {
    if (this.#bodyRead) throw new Error('the request body was read already');
    this.#bodyRead = true;
    return this.readBody();
  }
  /** The request body as a stream, for one too large to hold (the tar of an import). */
  bodyStream(): Readable {
    if (this.#bodyRead) throw new Error('the request body was read already');
    this.#bodyRead = true;
    return this.readBodyStream();
  }
  protected get bodyRead(): boolean {
    return this.#bodyRead;
  }
  protected abstract readBody(): Promise<Buffer>;
  protected abstract readBodyStream(): Readable;

  /** A complete answer: JSON when `value` is given (text/plain for a string), else empty. */
  abstract send(status: number, value?: unknown, headers?: Record<string, string>): void;
  /** A streamed answer, its headers sent at once (the Go client waits for them, see /wait). */
  abstract stream(status: number, contentType: string, headers?: Record<string, string>): Writable;
  /** The connection as a byte pipe: 101 UPGRADED on an upgrade, else a 200 streamed answer. */
  abstract hijack(contentType: string): Promise<Hijacked>;
  /** Ends the connection at once (an error after the answer began). */
  abstract destroy(): void;

  /** Answers with `err` as docker does (`{"message": ...}`), or cuts the connection if too late. */
  fail(err: unknown): void {
    if (this.started) {
      this.destroy();
      return;
    }
    const status = statusOf(err);
    if (status === 304) this.send(304);
    else this.send(status, { message: messageOf(err) });
  }
}

export class HttpExchange extends Exchange {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;

  constructor(req: IncomingMessage, res: ServerResponse, defaults: Record<string, string> = {}) {
    super(req, defaults);
    for (const [k, v] of Object.entries(defaults)) res.setHeader(k, v);
    this.#req = req;
    this.#res = res;
    res.on('close', () => {
      if (!res.writableFinished) this.gone();
    });
  }

  get started(): boolean {
    return this.#res.headersSent;
  }

  protected readBody(): Promise<Buffer> {
    return readAll(this.#req);
  }

  protected readBodyStream(): Readable {
    return this.#req;
  }

  send(status: number, value?: unknown, headers: Record<string, string> = {}): void {
    this.status = status;
    if (value === undefined) {
      this.#res.writeHead(status, headers).end();
      return;
    }
    const { body, type } = encode(value);
    this.#res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(body.length), ...headers }).end(body);
  }

  stream(status: number, contentType: string, headers: Record<string, string> = {}): Writable {
    this.status = status;
    this.#res.writeHead(status, { 'Content-Type': contentType, ...headers });
    this.#res.flushHeaders();
    return this.#res;
  }

  async hijack(contentType: string): Promise<Hijacked> {
    // Without an upgrade the request body (if any is left: dockerode streams stdin as a chunked
    // body) is the input and the streamed answer the output.
    const output = this.stream(200, contentType);
    const input = this.bodyRead ? Readable.from([]) : this.#req;
    return { input, output, end: () => this.#res.end() };
  }

  destroy(): void {
    this.#res.destroy();
  }
}

export class UpgradeExchange extends Exchange {
  readonly #socket: Socket;
  #head: Buffer;
  readonly #length: number;
  #started = false;

  constructor(req: IncomingMessage, socket: Socket, head: Buffer, defaults: Record<string, string> = {}) {
    super(req, defaults);
    this.#socket = socket;
    this.#head = head;
    this.#length = Number(req.headers['content-length'] ?? 0) || 0;
    socket.on('close', () => this.gone());
    socket.on('error', () => {});
  }

  get started(): boolean {
    return this.#started;
  }

  /**
   * node:http stops parsing at the end of an upgrade request's headers, so its body (exec start's
   * JSON, dockerode's attach options) is the first Content-Length bytes of the raw connection; what
   * follows is the client's stdin.
   */
  protected readBody(): Promise<Buffer> {
    const want = this.#length;
    if (want > BODY_LIMIT) return Promise.reject(new ApiError(400, `request body too large (${want} bytes)`));
    return new Promise((resolve, reject) => {
      const take = () => {
        if (this.#head.length < want) return false;
        const body = this.#head.subarray(0, want);
        this.#head = this.#head.subarray(want);
        resolve(body);
        return true;
      };
      if (take()) return;
      const onData = (d: Buffer) => {
        this.#head = Buffer.concat([this.#head, d]);
        if (take()) cleanup();
      };
      const onEnd = () => {
        cleanup();
        reject(new ApiError(400, 'the connection ended inside the request body'));
      };
      const cleanup = () => {
        this.#socket.off('data', onData);
        this.#socket.off('end', onEnd);
        this.#socket.pause();
      };
      this.#socket.on('data', onData);
      this.#socket.on('end', onEnd);
      this.#socket.resume();
    });
  }

  /** An upgrade request's body is held whole (it is small there: exec and attach options). */
  protected readBodyStream(): Readable {
    const body = this.readBody();
    return Readable.from((async function* () {
      yield await body;
    })());
  }

  #writeHead(status: number, headers: Record<string, string>): void {
    this.status = status;
    this.#started = true;
    const all = { ...this.defaults, ...headers };
    const lines = [`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Status'}`, ...Object.entries(all).map(([k, v]) => `${k}: ${v}`)];
    this.#socket.write(lines.join('\r\n') + '\r\n\r\n');
  }

  send(status: number, value?: unknown, headers: Record<string, string> = {}): void {
    const { body, type } = value === undefined ? { body: Buffer.alloc(0), type: undefined } : encode(value);
    this.#writeHead(status, {
      ...(type ? { 'Content-Type': type } : {}),
      'Content-Length': String(body.length),
      Connection: 'close',
      ...headers,
    });
    this.#socket.end(body);
  }

  stream(status: number, contentType: string, headers: Record<string, string> = {}): Writable {
    // No chunked encoding here: the answer ends when the connection does.
    this.#writeHead(status, { 'Content-Type': contentType, Connection: 'close', ...headers });
    return this.#socket;
  }

  async hijack(contentType: string): Promise<Hijacked> {
    if (!this.bodyRead) await this.body();
    this.#writeHead(101, { 'Content-Type': contentType, Connection: 'Upgrade', Upgrade: 'tcp' });
    const input = new PassThrough();
    if (this.#head.length) input.write(this.#head);
    this.#head = Buffer.alloc(0);
    this.#socket.pipe(input);
    this.#socket.resume();
    const socket = this.#socket;
    return {
      input,
      output: socket,
      end: () => {
        // A half-close is what the Go client waits for; the client closes its side in turn, and a
        // client that does not is cut after a grace period.
        socket.end();
        setTimeout(() => socket.destroy(), 2000).unref();
      },
    };
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

function encode(value: unknown): { body: Buffer; type: string } {
  if (typeof value === 'string') return { body: Buffer.from(value), type: 'text/plain; charset=utf-8' };
  return { body: Buffer.from(JSON.stringify(value) + '\n'), type: 'application/json' };
}

function readAll(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (d: Buffer) => {
      size += d.length;
      if (size > BODY_LIMIT) {
        stream.destroy();
        reject(new ApiError(400, `request body too large (over ${BODY_LIMIT} bytes)`));
        return;
      }
      chunks.push(d);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
