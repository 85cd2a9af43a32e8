/**
 * `nsbox serve` for the API tests: the real binary (bin/nsbox.js over dist/) as a child process on
 * a temp socket with its own temp NSBOX_ROOT, a raw HTTP client over that socket, the docker CLI
 * pointed at it, and a teardown that removes every container of the root through the engine.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../lib/engine/engine.js';
import { isRoot } from './_helpers.js';
import { registryUnavailable } from '../fixtures/registry.js';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
export const bin = fileURLToPath(new URL('../../bin/nsbox.js', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/cli/commands/serve.js', import.meta.url));

function hasDocker(): boolean {
  return spawnSync('docker', ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Why these tests cannot run here, or undefined. */
export function apiUnavailable({ docker = false } = {}): string | undefined {
  if (!isRoot) return 'needs root';
  if (!existsSync(dist)) return 'dist/ is not built (tsc -p tsconfig.json builds it)';
  if (docker && !hasDocker()) return 'no docker CLI installed';
  return registryUnavailable();
}

export interface Serve {
  root: string;
  socket: string;
  dir: string;
  child: ChildProcess;
  /** What the server wrote to stderr (its JSON log). */
  log(): string;
  /**
   * True once the log has a JSON line that `match` accepts: at once, or when the server writes one
   * (its stderr reaches the log file on this process's event loop, after whatever else is ready);
   * false after `ms`.
   */
  logged(match: (line: Record<string, unknown>) => boolean, ms?: number): Promise<boolean>;
  /** SIGTERM, and its exit code. */
  stop(): Promise<number | null>;
}

/** Starts `nsbox serve --debug` on `socket` (default: a new temp one) over `root`; resolves once /_ping answers. */
export async function startServe(opts: { root?: string; dir?: string; args?: string[] } = {}): Promise<Serve> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'nsbox-api-'));
  const root = opts.root ?? join(dir, 'root');
  const socket = join(dir, 'nsbox.sock');
  const logFile = join(dir, `serve-${Date.now()}.log`);
  const fd = openSync(logFile, 'a');
  // A test process that dies (or times out) must not leave its server behind: setpriv's pdeathsig
  // asks the server to shut down with its parent.
  const argv = [...(SETPRIV ? [SETPRIV, '--pdeathsig', 'TERM', '--'] : []), process.execPath, bin, 'serve', '--socket', socket, '--debug', ...(opts.args ?? [])];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, 'pipe'], env: { ...process.env, NSBOX_ROOT: root } });
  closeSync(fd);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const waiters = new Set<() => void>();
  const hasLine = (match: (line: Record<string, unknown>) => boolean) =>
    readFileSync(logFile, 'utf8').split('\n').some((l) => {
      try {
        return match(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not a whole JSON line (the last one while it is written, a warning Node printed)
        return false;
      }
    });
  const serve: Serve = {
    root,
    socket,
    dir,
    child,
    log: () => readFileSync(logFile, 'utf8'),
    logged: (match, ms = 30_000) =>
      new Promise<boolean>((resolve) => {
        const check = () => {
          if (!hasLine(match)) return;
          done(true);
        };
        const done = (found: boolean) => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => done(false), ms);
        waiters.add(check);
        check();
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  // Ready when the server logs "listening": it does so once every address (the socket and each
  // --host) is bound, so a test may connect to any of them (waiting on the socket alone raced TCP).
  const ready = await new Promise<boolean>((resolve) => {
    let seen: string | undefined = '';
    const timer = setTimeout(() => resolve(false), 30_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      appendFileSync(logFile, chunk);
      for (const w of [...waiters]) w();
      if (seen === undefined) return;
      seen += chunk.toString('utf8');
      if (/"msg":"listening"/.test(seen)) {
        clearTimeout(timer);
        seen = undefined;
        resolve(true);
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (ready && (await request(socket, 'GET', '/_ping').then((r) => r.status === 200, () => false))) return serve;
  if (child.exitCode !== null) throw new Error(`nsbox serve exited with ${child.exitCode}: ${serve.log()}`);
  await serve.stop();
  throw new Error(`nsbox serve did not answer on ${socket}: ${serve.log()}`);
}

/** Removes every container of the root (through the engine, as `nsbox rm -f` would), then the temp dir. */
export async function cleanup(serve: Serve | undefined): Promise<void> {
  if (!serve) return;
  await serve.stop();
  const engine = await Engine.open({ root: serve.root });
  for (const r of await engine.list({ all: true })) await engine.remove(r.id, { force: true }).catch(() => {});
  rmSync(serve.dir, { recursive: true, force: true });
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The body as JSON, when it is (typed loosely: the tests read docker's many shapes). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** One request over the socket; `body` is sent as given (a string) or as JSON. */
export function request(socket: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request(
      { socketPath: socket, method, path, headers: { ...(data !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** The docker CLI against the server, with a config dir of its own (nothing read from ~/.docker). */
export function docker(serve: Serve, args: string[], opts: { input?: string; timeout?: number } = {}): SpawnSyncReturns<string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DOCKER_')));
  return spawnSync('docker', ['-H', `unix://${serve.socket}`, ...args], {
    encoding: 'utf8',
    input: opts.input ?? '',
    timeout: opts.timeout ?? 30_000,
    // docker run passes SIGTERM on to its container and goes on waiting: a hung CLI needs SIGKILL.
    killSignal: 'SIGKILL',
    env: { ...env, DOCKER_CONFIG: join(serve.dir, 'docker-config') },
  });
}

/** A shell command line through a real pty (script(1)), as a terminal user would type it. */
export function throughPty(serve: Serve, line: string, input = '', timeout = 30_000): SpawnSyncReturns<string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DOCKER_')));
  return spawnSync('script', ['-qfec', line, '/dev/null'], {
    encoding: 'utf8',
    input,
    timeout,
    killSignal: 'SIGKILL',
    env: { ...env, DOCKER_HOST: `unix://${serve.socket}`, DOCKER_CONFIG: join(serve.dir, 'docker-config') },
  });
}

/**
 * The docker CLI, without blocking this process (for a command that runs while others do);
 * `progress` sees its stdout as it grows.
 */
export function dockerAsync(serve: Serve, args: string[], timeout = 60_000, progress?: (stdout: string) => void): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DOCKER_')));
  return new Promise((resolve) => {
    const child = spawn('docker', ['-H', `unix://${serve.socket}`, ...args], { env: { ...env, DOCKER_CONFIG: join(serve.dir, 'docker-config') }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      progress?.(stdout);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
