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
import type { ShimProxy } from '../runtime/shim.js';
import { relayAddress } from './proxy-target.js';

export class PortInUseError extends NsboxError {
  override name = 'PortInUseError';
  constructor(readonly binding: PortBinding, holder: string | undefined, cause: unknown) {
    const ip = binding.hostIp || '0.0.0.0';
    const where = `${ip.includes(':') ? `[${ip}]` : ip}:${binding.hostPort}/${binding.protocol}`;
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

/**
 * A held IPv6 socket ([::] or [::1]) that a proxy listens on (TCP) or reads (UDP) and forwards to
 * the container: what ip6 DNAT cannot take (::1, see nft.ts) reaches it.
 */
export type PortProxy = ShimProxy;

export interface HeldPorts {
  ports: BoundPort[];
  /** The bound sockets: keep them open while the container lives (pass them to its shim). */
  fds: number[];
  /** The IPv6 sockets among them, for the proxy (their target filled in by `proxiesFor`). */
  v6: Array<{ fd: number; containerPort: number; protocol: 'tcp' | 'udp' }>;
}

const isV6Any = (ip: string) => ip === '' || ip === '::';
/** A random port taken on IPv6 by something else: another port from the kernel, this many times. */
const RANDOM_TRIES = 8;

/** IPv6 TCP and UDP sockets are served by a proxy (PortProxy): ::1 reaches only them. */
const proxied = (b: PortBinding, ip: string) => (b.protocol === 'tcp' || b.protocol === 'udp') && ip.includes(':');
/** The TCP ones listen: SO_REUSEADDR, as listeners have (not UDP, where it would let another bind share the port). */
const listens = (b: PortBinding, ip: string) => b.protocol === 'tcp' && ip.includes(':');

function bindOne(b: PortBinding, ip: string, port: number, reuse: boolean): [number, number] {
  try {
    return native.bindPort(b.protocol, ip, port, reuse || listens(b, ip));
  } catch (err) {
    if (err instanceof NsboxError && err.code === 'EADDRINUSE') throw new PortInUseError({ ...b, hostIp: ip, hostPort: port }, portHolder(b.protocol, port), err);
    throw err;
  }
}

/**
 * A port on every address of a container without IPv6 is also held on [::1] and relayed (to its
 * IPv4 address), so that `localhost` reaches it whichever address a client tries first, as
 * docker's proxy does; not listed as a binding of its own (docker shows 0.0.0.0 alone for these).
 * undefined where the host has no IPv6 loopback (IPv6 off); a [::1] port someone else holds is
 * the port in use.
 */
function loopback6(b: PortBinding, port: number): number | undefined {
  if (b.protocol !== 'tcp' && b.protocol !== 'udp') return undefined;
  try {
    return bindOne(b, '::1', port, false)[0];
  } catch (err) {
    if (err instanceof NsboxError && (err.code === 'EADDRNOTAVAIL' || err.code === 'EAFNOSUPPORT')) return undefined;
    throw err;
  }
}

/**
 * Binds every host port (0: the kernel picks one); all or nothing. `dual` (the container has an
 * IPv6 address): a port on every address ('') is held on [::] too, as docker binds both. `reuse`
 * (SO_REUSEADDR): as a listener binds, so connections of an earlier listener in TIME_WAIT do not
 * count (a probe for pasta, which listens).
 */
export function holdPorts(bindings: readonly PortBinding[], dual = false, reuse = false): HeldPorts {
  const held: HeldPorts = { ports: [], fds: [], v6: [] };
  try {
    for (const b of bindings) {
      for (let tries = 0; ; tries++) {
        const [fd, port] = bindOne(b, b.hostIp, b.hostPort, reuse);
        if (!(dual && b.hostIp === '')) {
          let fd6: number | undefined;
          try {
            fd6 = b.hostIp === '' ? loopback6(b, port) : undefined;
          } catch (err) {
            releasePorts([fd]);
            if (b.hostPort === 0 && err instanceof PortInUseError && tries < RANDOM_TRIES) continue;
            throw err;
          }
          held.fds.push(fd);
          held.ports.push({ ...b, hostPort: port });
          if (proxied(b, b.hostIp)) held.v6.push({ fd, containerPort: b.containerPort, protocol: b.protocol as 'tcp' | 'udp' });
          if (fd6 !== undefined) {
            held.fds.push(fd6);
            held.v6.push({ fd: fd6, containerPort: b.containerPort, protocol: b.protocol as 'tcp' | 'udp' });
          }
          break;
        }
        let fd6: number;
        try {
          [fd6] = bindOne(b, '::', port, reuse);
        } catch (err) {
          releasePorts([fd]);
          if (b.hostPort === 0 && err instanceof PortInUseError && tries < RANDOM_TRIES) continue;
          throw err;
        }
        held.fds.push(fd, fd6);
        held.ports.push({ ...b, hostPort: port });
        if (proxied(b, '::')) held.v6.push({ fd: fd6, containerPort: b.containerPort, protocol: b.protocol as 'tcp' | 'udp' });
        break;
      }
    }
  } catch (err) {
    releasePorts(held.fds);
    throw err;
  }
  return held;
}

/**
 * The proxies of the held IPv6 sockets, to the container's IPv6 address (else its IPv4 one), or
 * to the address `targetFile` holds when it exists (proxy-target.ts: the address follows connect
 * and disconnect).
 */
export const proxiesFor = (held: Pick<HeldPorts, 'v6'>, target: PortTarget, targetFile?: string): PortProxy[] =>
  held.v6.map((s) => ({ fd: s.fd, address: relayAddress(target), port: s.containerPort, protocol: s.protocol, ...(targetFile ? { targetFile } : {}) }));

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

/** Where published ports lead: the container's address on its primary network (and its IPv6 one). */
export interface PortTarget {
  ipAddress: string;
  ipv6Address?: string;
}

/**
 * The DNAT elements of the ports: IPv4 host addresses (and every address: '' or 0.0.0.0) to the
 * container's IPv4 address; with an IPv6 address, '' and [::] also on every IPv6 address, and an
 * IPv6 host address to it. ::1 has no element (the proxy answers it). Without an IPv6 address,
 * [::] keeps meaning every IPv4 address.
 */
function rulesFor(ports: readonly BoundPort[], t: PortTarget): PortRule[] {
  const out: PortRule[] = [];
  for (const p of ports) {
    const rule = (hostIp: string, containerIp: string): PortRule => ({ protocol: p.protocol, hostIp, hostPort: p.hostPort, containerIp, containerPort: p.containerPort });
    const v6 = p.hostIp.includes(':');
    if (!v6 || (p.hostIp === '::' && !t.ipv6Address)) out.push(rule(p.hostIp === '0.0.0.0' || p.hostIp === '::' ? '' : p.hostIp, t.ipAddress));
    if (!t.ipv6Address || p.hostIp === '::1' || (!v6 && p.hostIp !== '')) continue;
    out.push(rule(isV6Any(p.hostIp) ? '' : p.hostIp, t.ipv6Address));
  }
  return out;
}

/** The DNAT of the held ports to the container's addresses. */
export const publishPorts = (ports: readonly BoundPort[], target: PortTarget): Promise<void> => addPortRules(rulesFor(ports, target));
export const unpublishPorts = (ports: readonly BoundPort[], target: PortTarget): Promise<void> => removePortRules(rulesFor(ports, target));
