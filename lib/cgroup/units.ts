/** Conversions between docker's and the cgroup files' units, apart from the resources' schema (the drivers need them without zod). */
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
