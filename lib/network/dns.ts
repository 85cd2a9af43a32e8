/**
 * Name resolution on user-defined networks: Debian's `aardvark-dns` (podman's DNS server), one
 * process for all networks, listening on each network's gateway at port 53. nsbox writes its
 * config (a file per network: the gateway, then one line per container with its address and its
 * names: name, aliases, short id) and sends SIGHUP; when no container is left on any network, the
 * server is stopped. The default `bridge` network has no name resolution, as docker's.
 */
import { spawn } from 'node:child_process';
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
  names: string[];
}

// aardvark-dns reads every file in its config dir as a network: the lock and temp files live beside it.
function withLock<T>(dir: string, fn: () => T): T {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const fd = openSync(`${dir}.lock`, 'a');
  try {
    native.flock(fd, constants.LOCK_EX);
    return fn();
  } finally {
    closeSync(fd);
  }
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
    if (pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('aardvark')) return pid;
  } catch (err) {
    // ENOENT: no server was started here (no pid file), or it is gone (no /proc/PID)
    if (!isCode(err, 'ENOENT')) throw err;
  }
  return undefined;
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
  withLock(dir, () => {
    const file = fileOf(dir, net);
    const lines = readEntries(file).filter((l) => l.split(' ')[0] !== e.containerId);
    lines.push(`${e.containerId} ${e.ipAddress}  ${[...new Set(e.names.map((n) => n.toLowerCase()))].join(',')}`);
    writeAtomic(file, `${net.gateway}\n${lines.join('\n')}\n`);
  });
  await reload(dir);
}

/** Removes a container's entry; stops the server when no entry is left on any network. */
export async function removeDnsEntry(runRoot: string, net: Pick<NetworkRecord, 'name' | 'internal' | 'gateway'>, containerId: string): Promise<void> {
  const dir = dnsDir(runRoot);
  if (!existsSync(dir)) return;
  const empty = withLock(dir, () => {
    const file = fileOf(dir, net);
    if (!existsSync(file)) return false;
    const lines = readEntries(file).filter((l) => l.split(' ')[0] !== containerId);
    if (lines.length) writeAtomic(file, `${net.gateway}\n${lines.join('\n')}\n`);
    else rmSync(file, { force: true });
    return readdirSync(dir).every((f) => f === 'aardvark.pid');
  });
  const pid = serverPid(dir);
  if (pid && empty) process.kill(pid, 'SIGTERM');
  else if (pid) process.kill(pid, 'SIGHUP');
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
export function pruneDns(runRoot: string, live: ReadonlySet<string>): number {
  const dir = dnsDir(runRoot);
  if (!existsSync(dir)) return 0;
  let dropped = 0;
  const empty = withLock(dir, () => {
    for (const f of readdirSync(dir).filter((n) => n !== 'aardvark.pid')) {
      const file = path.join(dir, f);
      const [head, ...rest] = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      const kept = rest.filter((l) => live.has(l.split(' ')[0]!));
      dropped += rest.length - kept.length;
      if (kept.length) writeAtomic(file, `${head}\n${kept.join('\n')}\n`);
      else rmSync(file, { force: true });
    }
    return readdirSync(dir).every((f) => f === 'aardvark.pid');
  });
  const pid = serverPid(dir);
  if (pid && empty) process.kill(pid, 'SIGTERM');
  else if (pid && dropped) process.kill(pid, 'SIGHUP');
  return dropped;
}
