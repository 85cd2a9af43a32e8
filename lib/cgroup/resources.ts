import * as z from 'zod';
import { lazySchema } from '../lazy-schema.js';

export { blkioWeightToIoWeight, cpusToQuota, parseBytes, sharesToWeight, weightToShares } from './units.js';
import { parseBytes } from './units.js';

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
