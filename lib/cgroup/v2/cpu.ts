import path from 'node:path';
import { parseFlatKeyed, readOptional, writeValue } from '../cgroupfs.js';
import type { CpuStats } from '../driver.js';
import type { ParsedResources } from '../resources.js';
import { cpusToQuota, sharesToWeight } from '../units.js';

export function needsCpu(r: ParsedResources): boolean {
  return r.cpus !== undefined || r.cpuWeight !== undefined || r.cpuShares !== undefined;
}

export async function setCpuV2(dir: string, r: ParsedResources): Promise<void> {
  if (r.cpus !== undefined) {
    const { quota, period } = cpusToQuota(r.cpus);
    await writeValue(path.join(dir, 'cpu.max'), `${quota ?? 'max'} ${period}`);
  }
  const weight = r.cpuWeight ?? (r.cpuShares === undefined ? undefined : sharesToWeight(r.cpuShares));
  if (weight !== undefined) await writeValue(path.join(dir, 'cpu.weight'), weight);
}

/** cpu.stat exists in every non-root cgroup2 directory, with the usage lines even without the cpu controller. */
export async function cpuStatsV2(dir: string): Promise<CpuStats | undefined> {
  const text = await readOptional(path.join(dir, 'cpu.stat'));
  if (text === undefined) return undefined;
  const s = parseFlatKeyed(text);
  const out: CpuStats = { usageUsec: s.usage_usec ?? 0, userUsec: s.user_usec ?? 0, systemUsec: s.system_usec ?? 0 };
  if (s.nr_periods !== undefined) out.nrPeriods = s.nr_periods;
  if (s.nr_throttled !== undefined) out.nrThrottled = s.nr_throttled;
  if (s.throttled_usec !== undefined) out.throttledUsec = s.throttled_usec;
  return out;
}
