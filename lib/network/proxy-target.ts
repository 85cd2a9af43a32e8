/**
 * Where the [::1] relays of a container's published ports lead (ports.ts, port-proxy.ts and the
 * shim's cpp/shim/port-proxy.cc): a one-line file in the container's network directory holding its
 * address on its primary network (IPv6 when it has one), read by the relay at each connection. A
 * connect or disconnect that moves the published ports (container-network.ts) rewrites it, so the
 * relay follows the container whichever process runs the relay (a shim, the SDK, a foreground
 * CLI) and whichever process connects it. Empty: no network left, connections are refused.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isCode } from '../errors.js';
import type { PortTarget } from './ports.js';

export const proxyTargetFile = (dir: string): string => resolve(join(dir, 'proxy-target'));

/** The address a relay connects to: `to`'s IPv6 address, else its IPv4 one; none: nowhere. */
export const relayAddress = (to: PortTarget | undefined): string => (to ? (to.ipv6Address ?? to.ipAddress) : '');

/** Points the relays at `to` (renamed into place: a relay never reads half a line). */
export function writeProxyTarget(dir: string, to: PortTarget | undefined): void {
  const file = proxyTargetFile(dir);
  writeFileSync(`${file}.tmp`, `${relayAddress(to)}\n`, { mode: 0o644 });
  renameSync(`${file}.tmp`, file);
}

/** The address in `file` ('' for none); `fallback` when there is no file (a relay set up without one). */
export function readProxyTarget(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    // ENOENT: the network directory is gone (the container is being removed) or was never written
    if (isCode(err, 'ENOENT')) return fallback;
    throw err;
  }
}
