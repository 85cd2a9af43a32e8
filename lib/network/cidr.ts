/**
 * IPv4 and IPv6 addresses and prefixes as numbers (bigint), for IPAM and overlap checks: parse,
 * print (IPv6 in RFC 5952's short form), contain, overlap.
 */
import { isIP } from 'node:net';
import { ValidationError } from '../errors.js';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** The network address (host bits zero). */
  base: bigint;
  prefix: number;
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

export function parseIp(text: string): { family: Family; value: bigint } | undefined {
  const family = isIP(text);
  if (family === 4) {
    return { family, value: text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n) };
  }
  if (family !== 6) return undefined;
  let head = text;
  let tail4: bigint | undefined;
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail4 = parseIp(text.slice(lastColon + 1))!.value;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const l = left ? left.split(':') : [];
  const r = right ? right.split(':') : [];
  const groups = right === undefined ? l : [...l, ...Array<string>(8 - l.length - r.length).fill('0'), ...r];
  let value = groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
  if (tail4 !== undefined) value = (value & ~0xffffffffn) | tail4;
  return { family, value };
}

export function formatIp(family: Family, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - i * 16)) & 0xffffn));
  // The longest run of two or more zero groups (the first of equals) becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

const maskOf = (family: Family, prefix: number): bigint => {
  const bits = BigInt(bitsOf(family));
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
};

/** `172.18.0.0/16`; host bits set is an error naming the network meant, as docker's. */
export function parseCidr(text: string, field = 'subnet'): Cidr {
  const slash = text.indexOf('/');
  const ip = slash < 0 ? undefined : parseIp(text.slice(0, slash));
  const prefixText = slash < 0 ? '' : text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!ip || !(prefix >= 0 && prefix <= bitsOf(ip.family))) {
    throw new ValidationError(`invalid subnet "${text}": an address and prefix length such as 172.20.0.0/16 or fd00:1::/64`, field);
  }
  const base = ip.value & maskOf(ip.family, prefix);
  if (base !== ip.value) {
    const meant = formatCidr({ family: ip.family, base, prefix });
    throw new ValidationError(`invalid subnet ${text}: it should be ${meant}`, field);
  }
  return { family: ip.family, base, prefix };
}

export const formatCidr = (c: Cidr): string => `${formatIp(c.family, c.base)}/${c.prefix}`;

/** How many addresses the prefix spans. */
export const sizeOf = (c: Cidr): bigint => 1n << BigInt(bitsOf(c.family) - c.prefix);

export const contains = (c: Cidr, family: Family, value: bigint): boolean =>
  family === c.family && (value & maskOf(c.family, c.prefix)) === c.base;

/** Two prefixes overlap when the shorter one holds the other's network address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const prefix = Math.min(a.prefix, b.prefix);
  const mask = maskOf(a.family, prefix);
  return (a.base & mask) === (b.base & mask);
}

/** The broadcast address of an IPv4 prefix (IPv6 has none: the last address is a host). */
export const lastAddress = (c: Cidr): bigint => c.base + sizeOf(c) - 1n;
