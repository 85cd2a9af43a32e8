/**
 * Detached containers under `nsbox-shim` (cpp/shim/): the shim reads its plan (plan.bin's bytes)
 * on its stdin, detaches, and supervises the container on its own, so that it outlives this process. The bundle directory
 * is the contract with it: its files and their schemas are in bundle.ts, its sockets' clients in
 * shim-attach.ts (attach.sock) and shim-events.ts (events.sock).
 */
import { closeSync, existsSync, mkdirSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import { NsboxError } from '../errors.js';
import { packagePath } from '../package-root.js';
import { isPrivileged } from '../privilege.js';
import { native, type ExitInfo, type SpawnPlan } from '../native.js';
import { bundlePath, parseBundleJson, readShimPid, ShimReportSchema, type ShimReport } from './bundle.js';
import { encodePlanFile, type ShimSettings } from './plan-wire.js';
import type { SpareShim, SpareShims } from './spare-shims.js';

export { CONSOLE_PLACEHOLDER, type ShimSettings, type RestartPolicy } from './plan-wire.js';
export { readExit, readLog, readShimPid, readState, type LogEntry, type ShimEvent, type ShimExit, type ShimState } from './bundle.js';
export { AttachConnection } from './shim-attach.js';
export { ShimEvents } from './shim-events.js';
export { AttachFrame } from './shim-frames.js';

/** build/Release/nsbox-shim, next to the addon. */
export function shimPath(): string {
  const candidates = [packagePath('build', 'Release', 'nsbox-shim'), packagePath('build', 'Debug', 'nsbox-shim')];
  const file = candidates.find((f) => existsSync(f));
  if (!file) throw new NsboxError(`nsbox: nsbox-shim is not built (looked for ${candidates[0]}); run npm install`, { code: 'ERR_SHIM_MISSING' });
  return file;
}

/** All of a pipe's output (its read end `fd`, which this closes), until its writers are gone. */
function readAll(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const pipe = new net.Socket({ fd, readable: true, writable: false });
    pipe.on('data', (c: Buffer) => chunks.push(c));
    pipe.on('error', reject);
    pipe.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/**
 * Starts the shim (`file`), `input` on its stdin, in a session of its own (`--spawned`: it detaches
 * without forking), and reads its output up to EOF: the shim ends its stdout with its report and
 * lives on. Spawned by the addon (posix_spawn, no fork of this process), its pipes read on the
 * event loop. It is this process's child until this process exits: a watch on its pidfd reaps it
 * whenever it ends, without keeping the event loop alive. A report of a failure (or none) waits
 * for its exit, for the code.
 */
async function run(file: string, args: string[], input: Buffer, keepFds: number[], onSpawned?: (pid: number) => void, spares?: SpareShims): Promise<{ code: number; stdout: string; stderr: string }> {
  // A spare (spare-shims.ts) when one is ready and nothing is to be held (fds are given at a spawn).
  const bundle = args[args.indexOf('--bundle') + 1]!;
  const child = (keepFds.length === 0 && handOver(spares?.take(file), bundle, input)) || (await spawnShim(file, args, input, keepFds));
  onSpawned?.(child.pid);
  let exited: (info: ExitInfo) => void = () => undefined;
  const exit = new Promise<ExitInfo>((resolve) => (exited = resolve));
  const onExit = (info: ExitInfo) => {
    closeSync(child.pidfd);
    exited(info);
  };
  native.watchExit(child.pidfd, onExit, { unref: true });
  const [stdout, stderr] = await Promise.all([readAll(child.stdout), readAll(child.stderr)]);
  if (/^\{"shimPid":/.test(stdout)) return { code: 0, stdout, stderr };
  // Waited for from here: watched again, keeping the event loop alive (unless it has called back).
  if (native.unwatchExit(child.pidfd)) native.watchExit(child.pidfd, onExit);
  const info = await exit;
  if (info.exitCode === undefined) {
    const how = info.signal !== undefined ? `was killed by signal ${info.signal}` : `could not be waited for (${info.error})`;
    throw new NsboxError(`nsbox-shim ${how}${stderr ? `: ${stderr.trim()}` : ''}`, { code: 'ERR_SHIM' });
  }
  return { code: info.exitCode, stdout, stderr };
}

function spawnShim(file: string, args: string[], input: Buffer, keepFds: number[]) {
  const envp = Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
  return native.spawnProcess(file, [file, ...args], envp, input, keepFds, { setsid: true });
}

/**
 * Gives the spare its bundle directory and plan (then EOF): from then on it is this start's shim,
 * as one spawned with `--bundle DIR --plan-stdin` would be. Undefined (the spare closed) when it is
 * gone already: the start spawns its own.
 */
function handOver(spare: SpareShim | undefined, bundle: string, input: Buffer): { pid: number; pidfd: number; stdout: number; stderr: number } | undefined {
  if (!spare) return undefined;
  try {
    const data = Buffer.concat([Buffer.from(`${bundle}\n`), input]);
    for (let off = 0; off < data.length; ) off += writeSync(spare.stdin, data, off);
    return spare;
  } catch {
    closeSync(spare.stdout);
    closeSync(spare.stderr);
    // Its exit was unwatched (take): reaped now by a watch that does only that.
    native.watchExit(spare.pidfd, () => closeSync(spare.pidfd), { unref: true });
    return undefined;
  } finally {
    closeSync(spare.stdin);
  }
}

/**
 * A held TCP socket the shim listens on, each connection forwarded to `address`:`port` (or a held
 * UDP socket whose datagrams it relays, one upstream socket per client; the shim tells them apart
 * by the socket's type); with
 * `targetFile`, to the address that file holds at the connection's time (the container's address
 * follows its networks: lib/network/proxy-target.ts), `address` only when it cannot be read.
 */
export interface ShimProxy {
  fd: number;
  address: string;
  port: number;
  protocol?: 'tcp' | 'udp';
  targetFile?: string;
}

/**
 * Starts a container under a new nsbox-shim. Resolves once it runs (execve succeeded), with the
 * shim's pid and the container's; rejects with the spawn's NsboxError ("pivot_root /x: EINVAL").
 * The plan's stdio is replaced by the shim's pipes; `pdeathsig` defaults to false here, so that the
 * container outlives even its shim, as under conmon (the engine then ends it through its cgroup).
 * Without root it defaults to true: there is no cgroup to end it by, and a container left behind
 * by a killed shim would run on without its networking (pasta goes with the shim). A previous exit.json in the bundle is removed.
 * `holdFds` (the bound sockets of published host ports) are held by the shim for its life; the
 * caller may close its own once this resolves. `proxies`: the held TCP sockets (among `holdFds`)
 * the shim listens on and forwards to the container (what DNAT cannot serve: IPv6 loopback).
 */
export async function startDetached(plan: SpawnPlan, bundleDir: string, settings: ShimSettings = {}, holdFds: readonly number[] = [], proxies: readonly ShimProxy[] = [], onSpawned?: (shimPid: number) => void, spares?: SpareShims): Promise<{ shimPid: number; pid: number; shimStartTime?: number; startedAt?: string }> {
  const file = encodePlanFile({ ...plan, stdio: [-1, -1, -1], pdeathsig: plan.pdeathsig ?? !isPrivileged() }, settings);
  const shim = shimPath();
  mkdirSync(bundleDir, { recursive: true, mode: 0o700 });
  rmSync(bundlePath(bundleDir, 'exit'), { force: true });
  // On its stdin: the shim reads it once, at start, so no file (and no fsync) is needed for it.
  const hold = holdFds.length ? ['--hold-fds', String(holdFds.length)] : [];
  // The shim's fd of a held socket is 3 + its index (spawnProcess's keepFds).
  for (const p of proxies) {
    const i = holdFds.indexOf(p.fd);
    if (i >= 0) hold.push('--proxy', String(3 + i), p.address, String(p.port));
  }
  const target = proxies.find((p) => p.targetFile)?.targetFile;
  if (target) hold.push('--proxy-target', target);
  const { code, stdout, stderr } = await run(shim, ['--bundle', bundleDir, '--plan-stdin', '--spawned', ...hold], file, [...holdFds], onSpawned, spares);
  const line = stdout.trim().split('\n').pop() ?? '';
  let report: ShimReport;
  try {
    report = parseBundleJson(ShimReportSchema, line, "nsbox-shim's report");
  } catch (e) {
    throw new NsboxError(`nsbox-shim exited with ${code} without a report${stderr ? `: ${stderr.trim()}` : ''}`, { code: 'ERR_SHIM', cause: e });
  }
  if ('error' in report || code !== 0) {
    const e: { message: string; code?: string; errno?: number; syscall?: string; path?: string } =
      'error' in report ? report.error : { message: `nsbox-shim exited with ${code}` };
    throw new NsboxError(e.message, {
      code: e.code ?? 'ERR_SHIM',
      ...(e.errno !== undefined ? { errno: e.errno } : {}),
      ...(e.syscall !== undefined ? { syscall: e.syscall } : {}),
      ...(e.path !== undefined ? { path: e.path } : {}),
    });
  }
  return report;
}

/**
 * Tells the shim to stop its container for good (SIGTERM to the shim: the container gets its stop
 * signal, then SIGKILL after the stop timeout; no restart). False when no shim runs.
 */
export function stopDetached(bundleDir: string): boolean {
  const pid = readShimPid(bundleDir);
  if (pid === undefined) return false;
  try {
    process.kill(pid, 'SIGTERM');
    return true;
  } catch (e) {
    // Gone since it wrote its pid file (it removes the file as it exits).
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}
