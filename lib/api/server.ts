/**
 * `ApiServer`: the Docker Engine API over node:http, on unix sockets and loopback TCP. Requests
 * and `Upgrade: tcp` connections go through one router; errors become docker's `{"message"}`
 * answers, never a crash. The server holds no container state of its own beyond exec instances and
 * the event log: stopping it leaves every container running under its shim.
 */
import { EventEmitter } from 'node:events';
import { chmod, chown, unlink } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import type { Engine, EngineEvent } from '../engine/engine.js';
import { messageOf, statusOf } from './api-error.js';
import type { ApiContext } from './api-context.js';
import { EventLog } from './event-log.js';
import { HttpExchange, UpgradeExchange, type Exchange } from './exchange.js';
import { API_VERSION, Router, stripVersion } from './router.js';
import { containerStreamRoutes } from './routes/container-streams.js';
import { containerRoutes } from './routes/containers.js';
import { eventRoutes } from './routes/events.js';
import { execRoutes } from './routes/exec.js';
import { imageRoutes } from './routes/images.js';
import { imagePushRoutes } from './routes/image-push.js';
import { authRoutes } from './routes/auth.js';
import { commitRoutes } from './routes/commit.js';
import { buildRoutes } from './routes/build.js';
import { systemRoutes } from './routes/system.js';
import { networkRoutes } from './routes/networks.js';
import { volumeRoutes } from './routes/volumes.js';
import { archiveRoutes } from './routes/archive.js';

export interface ApiServerOptions {
  /** nsbox's version, for /version, /info and the Server header. */
  version: string;
  /** One JSON line per request (level debug), and errors (level error). */
  log?: (entry: Record<string, unknown>) => void;
  debug?: boolean;
}

/** unix:///path or tcp://host:port (loopback only: the API has no authentication). */
export type ListenAddress = { kind: 'unix'; path: string; mode?: number; gid?: number } | { kind: 'tcp'; host: string; port: number };

export function parseListenAddress(text: string): ListenAddress {
  if (text.startsWith('unix://')) return { kind: 'unix', path: text.slice('unix://'.length) };
  if (text.startsWith('/')) return { kind: 'unix', path: text };
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(text);
  if (!m) throw new Error(`invalid listen address ${JSON.stringify(text)}: use unix:///path or tcp://127.0.0.1:PORT`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  if (!net.isIP(host) || !/^(127\.|::1$)/.test(host)) {
    if (host !== 'localhost') throw new Error(`tcp://${host}: nsbox serve listens on loopback only (the API has no authentication)`);
  }
  return { kind: 'tcp', host, port: Number(m[2]) };
}

export class ApiServer {
  readonly #router = new Router();
  readonly #ctx: ApiContext;
  readonly #servers: http.Server[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #unixPaths: string[] = [];
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #debug: boolean;
  readonly #defaults: Record<string, string>;
  readonly #onEvent: (e: EngineEvent) => void;
  readonly #onWarning: (message: string) => void;
  readonly #stopWatch: () => void;
  readonly #stopSpares: () => Promise<void>;
  readonly #stopPrepared: () => Promise<void>;
  readonly #engine: Engine;

  constructor(engine: Engine, opts: ApiServerOptions) {
    this.#engine = engine;
    this.#ctx = { engine, execs: engine.execs, events: new EventLog(), attachWaiters: new Map(), shimStarts: new EventEmitter().setMaxListeners(0), version: opts.version };
    this.#log = opts.log ?? ((e) => process.stderr.write(JSON.stringify(e) + '\n'));
    this.#debug = opts.debug ?? false;
    this.#defaults = {
      'Api-Version': API_VERSION,
      Server: `nsbox/${opts.version} (linux)`,
      'Docker-Experimental': 'false',
      Ostype: 'linux',
    };
    this.#onEvent = (e) => this.#ctx.events.add(e);
    // What the engine could not do off a request's path (a --rm removal after the exit).
    this.#onWarning = (message) => this.#log({ time: new Date().toISOString(), level: 'warn', msg: message });
    engine.on('event', this.#onEvent);
    engine.on('warning', this.#onWarning);
    // Containers that exit on their own (not through a stop of ours) are told to /events as 'die',
    // and --rm containers this server started are removed by it the moment they exit.
    this.#stopWatch = engine.watchExits();
    // A shim started ahead of each start (spare-shims.ts): a start does not wait for its exec.
    this.#stopSpares = engine.keepSpareShims();
    // Each created container's cgroup made before its start is asked for (prepared-cgroups.ts).
    this.#stopPrepared = engine.keepCgroupsAhead();
    for (const add of [systemRoutes, authRoutes, commitRoutes, imagePushRoutes, imageRoutes, buildRoutes, containerRoutes, containerStreamRoutes, execRoutes, eventRoutes, volumeRoutes, networkRoutes, archiveRoutes]) add(this.#router, this.#ctx);
  }

  #server(): http.Server {
    const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => void this.#handle(new HttpExchange(req, res, this.#defaults), req));
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => void this.#handle(new UpgradeExchange(req, socket, head, this.#defaults), req));
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
    // A request node cannot parse: answer 400 as docker does, without a crash.
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') {
        const body = JSON.stringify({ message: `bad request: ${err.message}` });
        socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      } else socket.destroy();
    });
    this.#servers.push(server);
    return server;
  }

  async #handle(ex: Exchange, req: IncomingMessage): Promise<void> {
    const started = Date.now();
    let pattern = '';
    try {
      ex.path = stripVersion(ex.path).path;
      const route = this.#router.match(ex.method, ex.path);
      pattern = route.pattern;
      ex.params = route.params;
      await route.handler(ex);
    } catch (err) {
      const status = statusOf(err);
      if (status >= 500) this.#log({ time: new Date().toISOString(), level: 'error', msg: messageOf(err), method: ex.method, path: ex.path, ...(err instanceof Error && err.stack ? { stack: err.stack } : {}) });
      try {
        ex.fail(err);
      } catch (failed) {
        // The answer could not be sent (the connection broke meanwhile): logged, and the connection dropped.
        this.#log({ time: new Date().toISOString(), level: 'warn', msg: `answering ${ex.method} ${ex.path} with an error: ${messageOf(failed)}` });
        ex.destroy();
      }
    }
    if (this.#debug) {
      this.#log({
        time: new Date().toISOString(), level: 'debug', msg: 'request', method: ex.method, url: req.url, route: pattern,
        status: ex.status, ms: Date.now() - started, ...(ex instanceof UpgradeExchange ? { upgrade: true } : {}),
      });
    }
  }

  /** Starts listening; a unix socket gets `mode` (default 0660) and, when given, the group `gid`. */
  async listen(address: ListenAddress): Promise<void> {
    const server = this.#server();
    if (address.kind === 'tcp') {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(address.port, address.host, () => resolve());
      });
      return;
    }
    await removeStaleSocket(address.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address.path, () => resolve());
    });
    this.#unixPaths.push(address.path);
    await chmod(address.path, address.mode ?? 0o660);
    if (address.gid !== undefined) await chown(address.path, process.getuid?.() ?? 0, address.gid);
  }

  /** Where the TCP listeners are (their ports, when 0 was asked for). */
  tcpAddresses(): Array<{ host: string; port: number }> {
    return this.#servers.flatMap((s) => {
      const a = s.address();
      return a && typeof a === 'object' ? [{ host: a.address, port: a.port }] : [];
    });
  }

  /** Stops listening and ends every connection, hijacked ones too; containers are not touched. */
  async close(): Promise<void> {
    this.#engine.off('event', this.#onEvent);
    this.#engine.off('warning', this.#onWarning);
    this.#stopWatch();
    const spares = this.#stopSpares();
    const prepared = this.#stopPrepared();
    await Promise.all(
      this.#servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    for (const s of this.#sockets) s.destroy();
    for (const p of this.#unixPaths) {
      await unlink(p).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    }
    // Removed containers' directories, deleted after their DELETE was answered.
    await this.#engine.store.settled();
    await spares;
    await prepared;
  }
}

/** A socket file left by a server that is gone is removed; one that still answers is refused. */
async function removeStaleSocket(path: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`${path}: another server is listening there`);
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}
