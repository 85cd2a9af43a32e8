/**
 * Where a network's subnet comes from when none is asked for: docker's default pools (172.17.0.0/16
 * for the default `bridge` network, then 172.18.0.0/16 … 172.31.0.0/16, then 192.168.0.0/20 …
 * 192.168.240.0/20), skipping what overlaps another network or a route of the network namespace
 * nsbox runs in. The routes are read from procfs (`/proc/net/route`, `/proc/net/ipv6_route`), never
 * from a tool's output. IPv6 subnets are unique local /64s (fdxx:…) derived from the network id.
 */
import { readFile } from 'node:fs/promises';
import { isCode } from '../storage/errors.js';
import { formatCidr, overlaps, parseIp, type Cidr } from './cidr.js';

export const DEFAULT_BRIDGE_SUBNET = '172.17.0.0/16';

/** The IPv4 pools in docker's order, after 172.17.0.0/16 (which the default network takes first). */
export function* userPools(): Generator<Cidr> {
  for (let b = 18; b <= 31; b++) yield { family: 4, base: parseIp(`172.${b}.0.0`)!.value, prefix: 16 };
  for (let c = 0; c < 256; c += 16) yield { family: 4, base: parseIp(`192.168.${c}.0`)!.value, prefix: 20 };
}

/** The default network's candidates: 172.17.0.0/16 first, then the user pools. */
export function* defaultPools(): Generator<Cidr> {
  yield { family: 4, base: parseIp('172.17.0.0')!.value, prefix: 16 };
  yield* userPools();
}

async function readLines(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim() !== '');
  } catch (err) {
    // A namespace without IPv6 has no ipv6_route.
    if (isCode(err, 'ENOENT')) return [];
    throw err;
  }
}

/** /proc/net/route holds addresses as host-order (little-endian here) hex words. */
const le32 = (hex: string): bigint => {
  const n = BigInt(`0x${hex}`);
  return ((n & 0xffn) << 24n) | (((n >> 8n) & 0xffn) << 16n) | (((n >> 16n) & 0xffn) << 8n) | ((n >> 24n) & 0xffn);
};

const prefixOfMask = (mask: bigint): number => {
  let prefix = 0;
  for (let bit = 31n; bit >= 0n && (mask >> bit) & 1n; bit--) prefix++;
  return prefix;
};

/**
 * The routed prefixes of the namespace, default routes left out (they overlap everything, and
 * docker does not count them either).
 */
export async function readRoutes(procNet = '/proc/net'): Promise<Cidr[]> {
  const out: Cidr[] = [];
  const v4 = await readLines(`${procNet}/route`);
  for (const line of v4.slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const prefix = prefixOfMask(le32(f[7]!));
    if (prefix === 0) continue;
    out.push({ family: 4, base: le32(f[1]!), prefix });
  }
  for (const line of await readLines(`${procNet}/ipv6_route`)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const prefix = parseInt(f[1]!, 16);
    if (prefix === 0 || f[9] === 'lo') continue;
    out.push({ family: 6, base: BigInt(`0x${f[0]}`), prefix });
  }
  return out;
}

/** What a candidate subnet collides with, in words, or undefined. */
export function collision(candidate: Cidr, taken: readonly { cidr: Cidr; what: string }[]): string | undefined {
  return taken.find((t) => overlaps(candidate, t.cidr))?.what;
}

export const routeTaken = (routes: readonly Cidr[]): { cidr: Cidr; what: string }[] =>
  routes.map((cidr) => ({ cidr, what: `a route of the host (${formatCidr(cidr)})` }));

/** The first pool entry that collides with nothing taken. */
export function pickSubnet(pools: Iterable<Cidr>, taken: readonly { cidr: Cidr; what: string }[]): Cidr | undefined {
  for (const c of pools) if (!collision(c, taken)) return c;
  return undefined;
}

/** Unique local /64s for IPv6 networks, the first derived from the network id (fd + 40 bits), then its neighbours. */
export function* ipv6Pools(id: string): Generator<Cidr> {
  const global = BigInt(`0x${id.slice(0, 10)}`);
  for (let i = 0n; i < 256n; i++) {
    const base = ((0xfdn << 120n) | (((global + i) & 0xffffffffffn) << 80n)) & ~((1n << 64n) - 1n);
    yield { family: 6, base, prefix: 64 };
  }
}
