/**
 * `/containers/{id}/stats` documents: docker's shape over the cgroup's stats. CPU times are in
 * nanoseconds as docker has them; `system_cpu_usage` is the host's total from /proc/stat, which the
 * docker CLI needs to turn two samples into a CPU percentage.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import type { CgroupStats } from '../cgroup/driver.js';
import type { InterfaceStats } from '../network/interface-stats.js';

/** USER_HZ: the clock ticks /proc/stat counts in (100 on every Linux architecture nsbox runs on). */
const TICK_NS = 1e7;

export interface StatsSample {
  read: string;
  cgroup: CgroupStats;
  systemNs: number;
  /** Per interface of the container's own network namespace (none for host mode). */
  networks?: Record<string, InterfaceStats>;
}

export function systemCpuNs(procStat = '/proc/stat'): number {
  const line = readFileSync(procStat, 'utf8').split('\n', 1)[0] ?? '';
  return line.split(/\s+/).slice(1, 8).reduce((n, v) => n + (Number(v) || 0), 0) * TICK_NS;
}

function cpuStats(s: StatsSample | undefined) {
  const cpu = s?.cgroup.cpu;
  return {
    cpu_usage: {
      total_usage: (cpu?.usageUsec ?? 0) * 1000,
      usage_in_kernelmode: (cpu?.systemUsec ?? 0) * 1000,
      usage_in_usermode: (cpu?.userUsec ?? 0) * 1000,
    },
    ...(s ? { system_cpu_usage: s.systemNs, online_cpus: availableParallelism() } : {}),
    throttling_data: { periods: cpu?.nrPeriods ?? 0, throttled_periods: cpu?.nrThrottled ?? 0, throttled_time: (cpu?.throttledUsec ?? 0) * 1000 },
  };
}

export function statsJson(id: string, name: string, now: StatsSample, pre: StatsSample | undefined) {
  const m = now.cgroup.memory;
  const io = now.cgroup.io;
  return {
    read: now.read,
    preread: pre?.read ?? '0001-01-01T00:00:00Z',
    pids_stats: now.cgroup.pids ? { current: now.cgroup.pids.current, ...(now.cgroup.pids.limit !== null ? { limit: now.cgroup.pids.limit } : {}) } : {},
    blkio_stats: {
      io_service_bytes_recursive: io ? [{ major: 0, minor: 0, op: 'read', value: io.readBytes }, { major: 0, minor: 0, op: 'write', value: io.writeBytes }] : null,
      io_serviced_recursive: io ? [{ major: 0, minor: 0, op: 'read', value: io.readOps }, { major: 0, minor: 0, op: 'write', value: io.writeOps }] : null,
      io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuStats(now),
    precpu_stats: cpuStats(pre),
    memory_stats: m
      ? { usage: m.current, ...(m.peak !== undefined ? { max_usage: m.peak } : {}), stats: m.stat, ...(m.limitHits !== undefined ? { failcnt: m.limitHits } : {}), limit: m.limit ?? totalmem() }
      : {},
    ...(now.networks && Object.keys(now.networks).length ? { networks: now.networks } : {}),
    name: `/${name}`,
    id,
  };
}
