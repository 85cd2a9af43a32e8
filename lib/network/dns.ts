/**
 * Name resolution on user-defined networks: Debian's `aardvark-dns` (podman's DNS server), one
 * process for all networks, listening on each network's gateway at port 53. nsbox writes its
 * config (a file per network: the gateway, then one line per container with its address and its
 * names: name, aliases, short id) and sends SIGHUP; when no container is left on any network, the
 * server is stopped, and waited for under the lock, so that an entry added next starts a new one. The default `bridge` network has no name resolution, as docker's.
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { constants, native } from '../native.js';
import { NsboxError, isCode } from '../errors.js';
import type { NetworkRecord } from './schemas.js';

export const AARDVARK = process.env.NSBOX_AARDVARK ?? '/usr/lib/podman/aardvark-dns';
export const dnsDir = (runRoot: string): string => path.join(runRoot, 'aardvark');
const fileOf = (dir: string, net: Pick<NetworkRecord, 'name' | 'internal'>) => path.join(dir, `${net.name}${net.internal ? '%internal' : ''}`);

export interface DnsEntry {
  containerId: string;
  ipAddress: string;
  /** Its IPv6 address on an IPv6 network (AAAA answers). */
  ipv6Address?: string;
  names: string[];
}

/** The first line: the addresses the server listens on for the network (its gateways). */
const head = (net: Pick<NetworkRecord, 'gateway' | 'gateway6'>) => [net.gateway, ...(net.gateway6 ? [net.gateway6] : [])].join(',');

// aardvark-dns reads every file in its config dir as a network: the lock and temp files live beside
// it. Within this process, one change at a time per directory as well: the flock is per open file,
// and a second flock from this process while one is held across an await would block the event loop.
const queues = new Map<string, Promise<unknown>>();

/**
 * `fn` under the directory's lock, held until it settles: a server being stopped has exited and
 * its pid file is gone before anyone adds an entry (else the add's SIGHUP goes to a server on its
 * way out, and no server is left to answer).
 */
function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const go = async (): Promise<T> => {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const fd = openSync(`${dir}.lock`, 'a');
    try {
      native.flock(fd, constants.LOCK_EX);
      return await fn();
    } finally {
      closeSync(fd);
    }
  };
  const previous = queues.get(dir) ?? Promise.resolve();
  // The previous change's outcome is its caller's: this one only waits for it to settle.
  const next = previous.then(go, go);
  queues.set(dir, next);
  return next;
}

function readEntries(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(1).filter(Boolean);
  } catch (err) {
    // ENOENT: the network has no entries yet
    if (!isCode(err, 'ENOENT')) throw err;
    return [];
  }
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${path.dirname(file)}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

function serverPid(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dir, 'aardvark.pid'), 'utf8').trim());
    const stat = pid > 0 ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
    // comm in parentheses, then the state: an exited server nobody reaped yet (Z) is no server.
    if (/^\d+ \(aardvark[^)]*\) [^Z]/.test(stat)) return pid;
  } catch (err) {
    // ENOENT: no server was started here (no pid file), or it is gone (no /proc/PID)
    if (!isCode(err, 'ENOENT')) throw err;
  }
  return undefined;
}

/** SIGTERM to the server, and its exit awaited (a pidfd), then its pid file removed. */
async function stopServer(dir: string): Promise<void> {
  const pid = serverPid(dir);
  if (pid) {
    let fd: number | undefined;
    try {
      fd = native.pidfdOpen(pid);
    } catch (e) {
      // ESRCH: gone already
      if (!(e instanceof NsboxError && e.code === 'ESRCH')) throw e;
    }
    if (fd !== undefined) {
      const pidfd = fd;
      // Not our child: the callback comes (with ECHILD) once it has exited.
      const exited = new Promise<void>((resolve) => native.watchExit(pidfd, () => resolve()));
      native.sendSignal(pidfd, osConstants.signals.SIGTERM);
      await exited;
      closeSync(pidfd);
    }
  }
  rmSync(path.join(dir, 'aardvark.pid'), { force: true });
}

async function reload(dir: string): Promise<void> {
  const pid = serverPid(dir);
  if (pid) {
    process.kill(pid, 'SIGHUP');
    return;
  }
  if (!existsSync(AARDVARK)) throw new NsboxError(`DNS on user networks needs aardvark-dns (${AARDVARK}; Debian: apt-get install aardvark-dns)`, { code: 'ENOENT', path: AARDVARK });
  // It daemonizes itself and writes aardvark.pid in the config dir.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(AARDVARK, ['--config', dir, '-p', '53', 'run'], { stdio: ['ignore', 'ignore', process.env.NSBOX_DNS_LOG ? openSync(process.env.NSBOX_DNS_LOG, 'a') : 'ignore'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new NsboxError(`aardvark-dns exited with ${code}`, { code: 'ERR_DNS' }))));
  });
}

/** Adds (or replaces) a container's entry on a network and has the server reload. */
export async function addDnsEntry(runRoot: string, net: NetworkRecord, e: DnsEntry): Promise<void> {
  const dir = dnsDir(runRoot);
  await withLock(dir, async () => {
    const file = fileOf(dir, net);
    const lines = readEntries(file).filter((l) => l.split(' ')[0] !== e.containerId);
    // id, IPv4 addresses, IPv6 addresses, names: fields split at single spaces, an empty list as ''
    lines.push(`${e.containerId} ${e.ipAddress} ${e.ipv6Address ?? ''} ${[...new Set(e.names.map((n) => n.toLowerCase()))].join(',')}`);
    writeAtomic(file, `${head(net)}\n${lines.join('\n')}\n`);
    await reload(dir);
  });
}

/** Removes a container's entry; stops the server when no entry is left on any network. */
export async function removeDnsEntry(runRoot: string, net: Pick<NetworkRecord, 'name' | 'internal' | 'gateway' | 'gateway6'>, containerId: string): Promise<void> {
  const dir = dnsDir(runRoot);
  if (!existsSync(dir)) return;
  await withLock(dir, async () => {
    const file = fileOf(dir, net);
    if (!existsSync(file)) return;
    const lines = readEntries(file).filter((l) => l.split(' ')[0] !== containerId);
    if (lines.length) writeAtomic(file, `${head(net)}\n${lines.join('\n')}\n`);
    else rmSync(file, { force: true });
    if (readdirSync(dir).every((f) => f === 'aardvark.pid')) return stopServer(dir);
    const pid = serverPid(dir);
    if (pid) process.kill(pid, 'SIGHUP');
  });
}

/** The container ids with an entry on any network (for repair). */
export function dnsContainers(runRoot: string): Array<{ file: string; containerId: string }> {
  const dir = dnsDir(runRoot);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f !== 'aardvark.pid')
    .flatMap((f) => readEntries(path.join(dir, f)).map((l) => ({ file: f, containerId: l.split(' ')[0]! })));
}

/** Stops the server (tests and repair). */
export function stopDns(runRoot: string): void {
  const pid = serverPid(dnsDir(runRoot));
  if (pid) process.kill(pid, 'SIGTERM');
}

/** Drops the entries of containers not in `live` (repair after a crash); stops the server when none is left. */
export async function pruneDns(runRoot: string, live: ReadonlySet<string>): Promise<number> {
  const dir = dnsDir(runRoot);
  if (!existsSync(dir)) return 0;
  return withLock(dir, async () => {
    let dropped = 0;
    for (const f of readdirSync(dir).filter((n) => n !== 'aardvark.pid')) {
      const file = path.join(dir, f);
      const [head, ...rest] = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      const kept = rest.filter((l) => live.has(l.split(' ')[0]!));
      dropped += rest.length - kept.length;
      if (kept.length) writeAtomic(file, `${head}\n${kept.join('\n')}\n`);
      else rmSync(file, { force: true });
    }
    if (readdirSync(dir).every((f) => f === 'aardvark.pid')) await stopServer(dir);
    else if (dropped) {
      const pid = serverPid(dir);
      if (pid) process.kill(pid, 'SIGHUP');
    }
    return dropped;
  });
}
