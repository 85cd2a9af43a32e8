import path from 'node:path';
import { parseFlatKeyed, parseNumber, readOptional, writeValue } from '../cgroupfs.js';
import type { CpuStats } from '../driver.js';
import type { ParsedResources } from '../resources.js';
import { cpusToQuota, weightToShares } from '../units.js';

export async function setCpuV1(dir: string, r: ParsedResources): Promise<void> {
  if (r.cpus !== undefined) {
    const { quota, period } = cpusToQuota(r.cpus);
    await writeValue(path.join(dir, 'cpu.cfs_period_us'), period);
    await writeValue(path.join(dir, 'cpu.cfs_quota_us'), quota ?? -1);
  }
  const shares = r.cpuShares ?? (r.cpuWeight === undefined ? undefined : weightToShares(r.cpuWeight));
  if (shares !== undefined) await writeValue(path.join(dir, 'cpu.shares'), shares);
}

const USER_HZ_USEC = 10_000; // cpuacct.stat counts USER_HZ (100 Hz) ticks

/** Usage from the cpuacct hierarchy, throttling from the cpu hierarchy (they may be mounted apart). */
export async function cpuStatsV1(cpuacctDir: string | undefined, cpuDir: string | undefined): Promise<CpuStats | undefined> {
  const read = (dir: string | undefined, f: string) => (dir === undefined ? Promise.resolve(undefined) : readOptional(path.join(dir, f)));
  const [usage, user, sys, stat, throttle] = await Promise.all([
    read(cpuacctDir, 'cpuacct.usage'),
    read(cpuacctDir, 'cpuacct.usage_user'),
    read(cpuacctDir, 'cpuacct.usage_sys'),
    read(cpuacctDir, 'cpuacct.stat'),
    read(cpuDir, 'cpu.stat'),
  ]);
  const usageNs = parseNumber(usage);
  const t = parseFlatKeyed(throttle);
  if (usageNs === undefined && throttle === undefined) return undefined;
  const ticks = parseFlatKeyed(stat);
  const out: CpuStats = {
    usageUsec: Math.round((usageNs ?? 0) / 1000),
    userUsec: user !== undefined ? Math.round((parseNumber(user) ?? 0) / 1000) : (ticks.user ?? 0) * USER_HZ_USEC,
    systemUsec: sys !== undefined ? Math.round((parseNumber(sys) ?? 0) / 1000) : (ticks.system ?? 0) * USER_HZ_USEC,
  };
  if (t.nr_periods !== undefined) out.nrPeriods = t.nr_periods;
  if (t.nr_throttled !== undefined) out.nrThrottled = t.nr_throttled;
  if (t.throttled_usec !== undefined) out.throttledUsec = t.throttled_usec;
  else if (t.throttled_time !== undefined) out.throttledUsec = Math.round(t.throttled_time / 1000);
  return out;
}
