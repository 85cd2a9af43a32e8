import type { ParsedResources } from './resources.js';

/** What a spawner needs to put a child into the cgroup before the child's first instruction. */
export interface CgroupPlacement {
  /**
   * A cgroup2 directory to open and pass to clone3 with CLONE_INTO_CGROUP. On v2 hosts this is the
   * cgroup itself; on hybrid hosts it is the cgroup's twin in the unified (controller-less) hierarchy.
   */
  v2Path?: string;
  /** cgroup v1 `tasks` files the child joins by writing "0" (itself) into them (cpp/plan.h's cgroup_tasks). */
  tasksFiles: string[];
}

export interface MemoryStats {
  /** Bytes in use now (v2 memory.current, v1 memory.usage_in_bytes). */
  current: number;
  /** High-water mark, where the kernel keeps one (v2 memory.peak ≥ 5.19, v1 max_usage_in_bytes). */
  peak?: number;
  /** The limit in bytes; null when unlimited. */
  limit: number | null;
  swapCurrent?: number;
  swapLimit?: number | null;
  anon?: number;
  file?: number;
  kernel?: number;
  shmem?: number;
  pgfault?: number;
  pgmajfault?: number;
  /** Processes the kernel's OOM killer ended in this cgroup. */
  oomKills: number;
  /** Times the limit was hit (v2 memory.events max, v1 memory.failcnt). */
  limitHits?: number;
  /** The whole memory.stat, as the kernel names its keys. */
  stat: Record<string, number>;
}

export interface CpuStats {
  usageUsec: number;
  userUsec: number;
  systemUsec: number;
  nrPeriods?: number;
  nrThrottled?: number;
  throttledUsec?: number;
}

export interface PidsStats {
  current: number;
  /** null when unlimited. */
  limit: number | null;
}

export interface IoStats {
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

/** A controller's section is missing when that controller is not available to the cgroup. */
export interface CgroupStats {
  memory?: MemoryStats;
  cpu?: CpuStats;
  pids?: PidsStats;
  io?: IoStats;
}

export type CgroupEvent = { type: 'oom'; oomKills: number } | { type: 'empty' };

export interface WatchOptions {
  /** Poll interval where the kernel gives no notification (v1), and safety-net poll on v2. */
  intervalMs?: number;
  /** Failures to read the watched files (other than the cgroup going away). */
  onError?: (err: unknown) => void;
}

export interface KillOptions {
  /** How long to wait for the last process to leave (default 10 s). */
  timeoutMs?: number;
}

/**
 * One cgroup, as one back end drives it. The v2 driver uses one directory of the unified hierarchy;
 * the v1 driver one directory per v1 hierarchy (plus, on hybrid hosts, the unified twin).
 */
export interface CgroupDriver {
  readonly version: 1 | 2;
  /** Absolute directory per hierarchy: controller name (or 'unified') → directory. */
  readonly paths: Readonly<Record<string, string>>;
  /** Creates the directories (and initialises new ancestors); fails if the cgroup already exists. */
  create(): Promise<void>;
  /** Whether any of the directories exists. */
  exists(): Promise<boolean>;
  set(resources: ParsedResources): Promise<void>;
  stats(): Promise<CgroupStats>;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Frozen or freezing (a process placed in it now would not run); false without a freezer. */
  frozen(): Promise<boolean>;
  /** SIGKILLs every process, then waits until none is left. */
  kill(options?: KillOptions): Promise<void>;
  /** Pids (thread-group ids) in the cgroup, sorted. */
  procs(): Promise<number[]>;
  addProcess(pid: number): Promise<void>;
  /** rmdir of every directory, sub-cgroups first; already-gone directories are fine. */
  remove(): Promise<void>;
  /** Starts watching; returns the function that stops. */
  events(listener: (event: CgroupEvent) => void, options?: WatchOptions): () => void;
  placement(): CgroupPlacement;
}

/** A stats record with only the sections the cgroup has. */
export function statsOf(parts: { memory?: MemoryStats | undefined; cpu?: CpuStats | undefined; pids?: PidsStats | undefined; io?: IoStats | undefined }): CgroupStats {
  const out: CgroupStats = {};
  if (parts.memory) out.memory = parts.memory;
  if (parts.cpu) out.cpu = parts.cpu;
  if (parts.pids) out.pids = parts.pids;
  if (parts.io) out.io = parts.io;
  return out;
}
