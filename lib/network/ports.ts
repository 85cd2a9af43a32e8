/**
 * Published ports: each host port is held by a bound socket (never listening) for the container's
 * life, so nothing else can take it, and its DNAT is an element of the nft table. A port already
 * in use is a `PortInUseError` naming it and, where /proc tells, the process that has it.
 */
import { closeSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { native } from '../native.js';
import { NsboxError, isCode, reportCleanupError } from '../errors.js';
import { addPortRules, removePortRules, type PortRule } from './nft.js';
import type { BoundPort, PortBinding } from './schemas.js';

export class PortInUseError extends NsboxError {
  override name = 'PortInUseError';
  constructor(readonly binding: PortBinding, holder: string | undefined, cause: unknown) {
    const where = `${binding.hostIp || '0.0.0.0'}:${binding.hostPort}/${binding.protocol}`;
    super(`port ${where} is already in use${holder ? ` by ${holder}` : ''}: cannot publish container port ${binding.containerPort}/${binding.protocol}`, {
      code: 'EADDRINUSE',
      cause,
    });
  }
}

/** "pid 1234 (nginx)" for the process with a socket on that port, from /proc/net and /proc/PID/fd. */
export function portHolder(protocol: string, port: number): string | undefined {
  const inodes = new Set<string>();
  for (const table of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch (err) {
      // ENOENT: no such table (a kernel without IPv6 has no /proc/net/tcp6)
      if (isCode(err, 'ENOENT')) continue;
      throw err;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1]?.split(':')[1];
      if (local && parseInt(local, 16) === port && f[9]) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (err) {
      // the process is gone (ENOENT) or not ours to look into (EACCES)
      if (isCode(err, 'ENOENT', 'EACCES')) continue;
      throw err;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return `pid ${pid} (${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()})`;
      } catch (err) {
        // the fd or process is gone (ENOENT), or not ours to read (EACCES)
        if (!isCode(err, 'ENOENT', 'EACCES')) throw err;
      }
    }
  }
  return undefined;
}

export interface HeldPorts {
  ports: BoundPort[];
  /** The bound sockets: keep them open while the container lives (pass them to its shim). */
  fds: number[];
}

/** Binds every host port (0: the kernel picks one); all or nothing. */
export function holdPorts(bindings: readonly PortBinding[]): HeldPorts {
  const held: HeldPorts = { ports: [], fds: [] };
  try {
    for (const b of bindings) {
      let fd: number, port: number;
      try {
        [fd, port] = native.bindPort(b.protocol, b.hostIp, b.hostPort);
      } catch (err) {
        if (err instanceof NsboxError && err.code === 'EADDRINUSE') throw new PortInUseError(b, portHolder(b.protocol, b.hostPort), err);
        throw err;
      }
      held.fds.push(fd);
      held.ports.push({ ...b, hostPort: port });
    }
  } catch (err) {
    releasePorts(held.fds);
    throw err;
  }
  return held;
}

export function releasePorts(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch (err) {
      // EBADF: already closed; anything else (EIO) leaves the fd closed too, so it is reported, not thrown
      if (!isCode(err, 'EBADF')) reportCleanupError(`closing the socket of a published port (fd ${fd})`)(err);
    }
  }
}

/** The table is IPv4: '' and the wildcard addresses are every address; an IPv6 one has no rule yet. */
const anyAddress = (ip: string) => ip === '' || ip === '0.0.0.0' || ip === '::';
const rulesFor = (ports: readonly BoundPort[], containerIp: string): PortRule[] =>
  ports
    .filter((p) => anyAddress(p.hostIp) || !p.hostIp.includes(':'))
    .map((p) => ({ protocol: p.protocol, hostIp: anyAddress(p.hostIp) ? '' : p.hostIp, hostPort: p.hostPort, containerIp, containerPort: p.containerPort }));

/** The DNAT of the held ports to the container's address. */
export const publishPorts = (ports: readonly BoundPort[], containerIp: string): Promise<void> => addPortRules(rulesFor(ports, containerIp));
export const unpublishPorts = (ports: readonly BoundPort[], containerIp: string): Promise<void> => removePortRules(rulesFor(ports, containerIp));
