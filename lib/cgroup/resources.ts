import * as z from 'zod';
import { lazySchema } from '../lazy-schema.js';

const UNIT: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/**
 * Parses a byte count the way docker's `--memory` does: a plain number of bytes, or a number with a
 * binary unit (`512k`, `256m`, `1.5g`, `1GiB`, `64MB`: all powers of 1024). Returns whole bytes.
 */
export function parseBytes(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`invalid byte count ${value}: expected a whole number ≥ 0`);
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?\s*$/i.exec(value);
  if (!m) throw new RangeError(`invalid byte count '${value}': expected e.g. 1048576, '512k', '256m', '1g'`);
  const bytes = Math.floor(Number(m[1]) * UNIT[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`byte count '${value}' is too large`);
  return bytes;
}

/** cgroup v1 `cpu.shares` (2..262144) → cgroup v2 `cpu.weight` (1..10000), as runc and crun convert. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/**
 * cgroup v2 `cpu.weight` (1..10000) → cgroup v1 `cpu.shares` (2..262144): the inverse of
 * {@link sharesToWeight}, rounded up so that converting back gives the same weight.
 */
export function weightToShares(weight: number): number {
  if (weight === 0) return 0;
  return 2 + Math.ceil(((weight - 1) * 262142) / 9999);
}

/** blkio weight (10..1000, v1 and BFQ) → cgroup v2 `io.weight` (1..10000), as runc converts. */
export function blkioWeightToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** cpus (fractional CPUs) → CFS quota and period in microseconds; 0 means no quota. */
export function cpusToQuota(cpus: number, period = 100_000): { quota: number | null; period: number } {
  return { quota: cpus > 0 ? Math.max(1000, Math.round(cpus * period)) : null, period };
}

// The schemas are built on first use (lib/lazy-schema.ts): most containers have no limits to parse.
const bytes = lazySchema(() =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    try {
      return parseBytes(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  }),
);

/** A byte count, or -1 for "no limit". */
const bytesOrUnlimited = lazySchema(() => z.union([z.literal(-1), bytes]));

const cpuList = lazySchema(() => z.string().regex(/^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$/, "expected a list like '0-3,5'"));

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const BlkioDeviceSchema = lazySchema(() => z
  .object({
    path: z.string().startsWith('/').optional(),
    major: z.number().int().nonnegative().optional(),
    minor: z.number().int().nonnegative().optional(),
    readBps: bytes.optional(),
    writeBps: bytes.optional(),
    readIops: z.number().int().nonnegative().optional(),
    writeIops: z.number().int().nonnegative().optional(),
  })
  .strict()
  .refine((d) => (d.path !== undefined) !== (d.major !== undefined && d.minor !== undefined), {
    message: 'a blkio device needs either path or both major and minor',
  }));

export const ResourcesSchema = lazySchema(() =>
  z
  .object({
    /** Memory limit in bytes or with a unit ('256m'); -1 removes the limit. */
    memory: bytesOrUnlimited.optional(),
    /** Memory plus swap (docker semantics); -1 means unlimited swap. */
    memorySwap: bytesOrUnlimited.optional(),
    /** Fractional CPUs: 0.5 → quota 50000 µs per 100000 µs period; 0 removes the quota. */
    cpus: z.number().nonnegative().max(1e6).optional(),
    /** cgroup v2 cpu.weight; converted to shares on v1. */
    cpuWeight: int(1, 10000).optional(),
    /** cgroup v1 cpu.shares; converted to a weight on v2. */
    cpuShares: int(2, 262144).optional(),
    /** Maximum number of tasks; -1 removes the limit. */
    pids: z.union([z.literal(-1), z.number().int().positive()]).optional(),
    cpuset: z.object({ cpus: cpuList.optional(), mems: cpuList.optional() }).strict().optional(),
    blkio: z
      .object({ weight: int(10, 1000).optional(), devices: z.array(BlkioDeviceSchema).optional() })
      .strict()
      .optional(),
    /** Huge page limits in bytes by page size ('2MB', '1GB'); -1 removes a limit. */
    hugetlb: z.record(z.string().regex(/^\d+[KMG]B$/, "expected a huge page size like '2MB' or '1GB'"), bytesOrUnlimited).optional(),
  })
  .strict()
  .refine((r) => !(typeof r.memory === 'number' && r.memory >= 0 && typeof r.memorySwap === 'number' && r.memorySwap >= 0 && r.memorySwap < r.memory), {
    message: 'memorySwap (memory plus swap) must be at least memory',
    path: ['memorySwap'],
  }),
);

/** Resource limits as a caller writes them ('256m' allowed). */
export type Resources = z.input<typeof ResourcesSchema>;
/** Resource limits after validation: every size in bytes. */
export type ParsedResources = z.output<typeof ResourcesSchema>;
export type BlkioDevice = z.output<typeof BlkioDeviceSchema>;
