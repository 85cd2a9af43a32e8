/**
 * Detached containers under `nsbox-shim` (cpp/shim/): the shim reads `<bundle>/plan.bin`, detaches,
 * and supervises the container on its own, so that it outlives this process. The bundle directory
 * is the contract with it:
 *   plan.bin (ours) · shim.pid · state.json · exit.json · container.log · attach.sock (the shim's).
 */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { NsboxError } from '../errors.js';
import { packagePath } from '../package-root.js';
import type { SpawnPlan } from '../native.js';
import { encodePlanFile, type ShimSettings } from './plan-wire.js';

export { CONSOLE_PLACEHOLDER, type ShimSettings, type RestartPolicy } from './plan-wire.js';

/** exit.json: the container's last exit (exitCode null when a signal ended it). */
export interface ShimExit {
  exitCode: number | null;
  signal: string | null;
  finishedAt: string;
  /** Set when a restart could not start the container (then exitCode is 127). */
  error?: string;
}

/** state.json, rewritten by the shim at every change. */
export interface ShimState {
  status: 'running' | 'restarting' | 'exited' | 'stopped';
  /** The container's pid (0 when it is not running). */
  pid: number;
  shimPid: number;
  restartCount: number;
  startedAt: string | null;
}

/** One line of container.log (docker's json-file format). */
export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

/** The attach protocol's frame types (cpp/shim/attach.h). */
export const AttachFrame = { stdin: 0, stdout: 1, stderr: 2, closeStdin: 3, resize: 4, exit: 5 } as const;

/** build/Release/nsbox-shim, next to the addon. */
export function shimPath(): string {
  const candidates = [packagePath('build', 'Release', 'nsbox-shim'), packagePath('build', 'Debug', 'nsbox-shim')];
  const file = candidates.find((f) => existsSync(f));
  if (!file) throw new NsboxError(`nsbox: nsbox-shim is not built (looked for ${candidates[0]}); run npm install`, { code: 'ERR_SHIM_MISSING' });
  return file;
}

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

/**
 * Starts a container under a new nsbox-shim. Resolves once it runs (execve succeeded), with the
 * shim's pid and the container's; rejects with the spawn's NsboxError ("pivot_root /x: EINVAL").
 * The plan's stdio is replaced by the shim's pipes; `pdeathsig` defaults to false here, so that the
 * container outlives even its shim, as under conmon. A previous exit.json in the bundle is removed.
 */
export async function startDetached(plan: SpawnPlan, bundleDir: string, settings: ShimSettings = {}): Promise<{ shimPid: number; pid: number }> {
  const file = encodePlanFile({ ...plan, stdio: [-1, -1, -1], pdeathsig: plan.pdeathsig ?? false }, settings);
  const shim = shimPath();
  mkdirSync(bundleDir, { recursive: true, mode: 0o700 });
  rmSync(join(bundleDir, 'exit.json'), { force: true });
  const tmp = join(bundleDir, '.plan.bin.tmp');
  writeFileSync(tmp, file, { mode: 0o600 });
  renameSync(tmp, join(bundleDir, 'plan.bin'));
  const { code, stdout, stderr } = await run(shim, ['--bundle', bundleDir]);
  const line = stdout.trim().split('\n').pop() ?? '';
  let report: { shimPid?: number; pid?: number; error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string } };
  try {
    report = JSON.parse(line) as typeof report;
  } catch {
    throw new NsboxError(`nsbox-shim exited with ${code} without a report${stderr ? `: ${stderr.trim()}` : ''}`, { code: 'ERR_SHIM' });
  }
  if (report.error || code !== 0 || report.pid === undefined || report.shimPid === undefined) {
    const e = report.error ?? { message: `nsbox-shim exited with ${code}` };
    throw new NsboxError(e.message, {
      code: e.code ?? 'ERR_SHIM',
      ...(e.errno !== undefined ? { errno: e.errno } : {}),
      ...(e.syscall !== undefined ? { syscall: e.syscall } : {}),
      ...(e.path !== undefined ? { path: e.path } : {}),
    });
  }
  return { shimPid: report.shimPid, pid: report.pid };
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The last exit recorded in the bundle, or undefined while the container has not exited. */
export const readExit = (bundleDir: string) => readJson<ShimExit>(join(bundleDir, 'exit.json'));
export const readState = (bundleDir: string) => readJson<ShimState>(join(bundleDir, 'state.json'));

/** The shim's pid while it runs (it removes shim.pid when it exits). */
export function readShimPid(bundleDir: string): number | undefined {
  try {
    return Number(readFileSync(join(bundleDir, 'shim.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** container.log's entries, oldest first. */
export function readLog(bundleDir: string): LogEntry[] {
  let text: string;
  try {
    text = readFileSync(join(bundleDir, 'container.log'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogEntry);
}

/**
 * Tells the shim to stop its container for good (SIGTERM to the shim: the container gets its stop
 * signal, then SIGKILL after the stop timeout; no restart). False when no shim runs.
 */
export function stopDetached(bundleDir: string): boolean {
  const pid = readShimPid(bundleDir);
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 'SIGTERM');
    return true;
  } catch {
    return false;
  }
}

function frame(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/**
 * A connection to a shim's attach socket: live stdout/stderr, stdin (when the container was started
 * with `openStdin`), resize, and an 'exit' event (a ShimExit) each time the container exits.
 */
export class AttachConnection extends EventEmitter {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  #socket: net.Socket;
  #buf: Buffer = Buffer.alloc(0);

  private constructor(socket: net.Socket) {
    super();
    this.#socket = socket;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('close', () => {
      this.stdout.end();
      this.stderr.end();
      this.emit('close');
    });
    socket.on('error', () => {});
  }

  static connect(bundleDir: string): Promise<AttachConnection> {
    // sun_path holds 108 bytes, a bundle path may not fit: reach the socket through an fd of its
    // directory, whose /proc/self/fd path is short whatever the bundle's is.
    const dirFd = openSync(bundleDir, 'r');
    return new Promise<AttachConnection>((resolve, reject) => {
      const s = net.createConnection(`/proc/self/fd/${dirFd}/attach.sock`);
      s.once('connect', () => {
        s.removeListener('error', reject);
        resolve(new AttachConnection(s));
      });
      s.once('error', reject);
    }).finally(() => closeSync(dirFd));
  }

  #onData(d: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
    while (this.#buf.length >= 5) {
      const len = this.#buf.readUInt32BE(1);
      if (this.#buf.length < 5 + len) break;
      const type = this.#buf[0];
      const payload = this.#buf.subarray(5, 5 + len);
      this.#buf = this.#buf.subarray(5 + len);
      if (type === AttachFrame.stdout) this.stdout.write(payload);
      else if (type === AttachFrame.stderr) this.stderr.write(payload);
      else if (type === AttachFrame.exit) this.emit('exit', JSON.parse(payload.toString('utf8')) as ShimExit);
    }
  }

  /** Writes to the container's stdin. */
  write(data: string | Buffer): void {
    this.#socket.write(frame(AttachFrame.stdin, Buffer.isBuffer(data) ? data : Buffer.from(data)));
  }

  /** EOF on the container's stdin. */
  closeStdin(): void {
    this.#socket.write(frame(AttachFrame.closeStdin, Buffer.alloc(0)));
  }

  /** Sets the terminal's size (the container gets SIGWINCH); ignored for a container without one. */
  resize(cols: number, rows: number): void {
    const p = Buffer.alloc(4);
    p.writeUInt16BE(cols, 0);
    p.writeUInt16BE(rows, 2);
    this.#socket.write(frame(AttachFrame.resize, p));
  }

  close(): void {
    this.#socket.destroy();
  }

  /** Hangs up once what was written (a resize, stdin) has been sent. */
  end(): void {
    this.#socket.end();
  }
}
