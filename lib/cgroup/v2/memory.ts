import path from 'node:path';
import { ValidationError } from '../../errors.js';
import { parseFlatKeyed, parseLimit, parseNumber, readOptional, readText, writeValue } from '../cgroupfs.js';
import type { MemoryStats } from '../driver.js';
import type { ParsedResources } from '../resources.js';

const limit = (n: number) => (n < 0 ? 'max' : String(n));

export async function setMemoryV2(dir: string, r: ParsedResources): Promise<void> {
  if (r.memory !== undefined) await writeValue(path.join(dir, 'memory.max'), limit(r.memory));
  if (r.memorySwap === undefined) return;
  // Docker's memorySwap is memory plus swap; cgroup v2 limits swap alone.
  let swap = 'max';
  if (r.memorySwap >= 0) {
    const memory = r.memory ?? parseLimit(await readText(path.join(dir, 'memory.max')));
    if (memory === null || memory === undefined || memory < 0) throw new ValidationError('memorySwap needs a memory limit', 'memorySwap');
    swap = String(r.memorySwap - memory);
  }
  const file = path.join(dir, 'memory.swap.max');
  if ((await readOptional(file)) === undefined) {
    if (swap === 'max') return;
    throw new ValidationError(`memorySwap: this kernel has no swap accounting (${file} is missing)`, 'memorySwap');
  }
  await writeValue(file, swap);
}

export async function memoryStatsV2(dir: string): Promise<MemoryStats> {
  const read = (f: string) => readOptional(path.join(dir, f));
  const [current, peak, max, swapCurrent, swapMax, stat, events] = await Promise.all(
    ['memory.current', 'memory.peak', 'memory.max', 'memory.swap.current', 'memory.swap.max', 'memory.stat', 'memory.events'].map(read),
  );
  const s = parseFlatKeyed(stat);
  const ev = parseFlatKeyed(events);
  const out: MemoryStats = { current: parseNumber(current) ?? 0, limit: parseLimit(max) ?? null, oomKills: ev.oom_kill ?? 0, stat: s };
  const p = parseNumber(peak);
  if (p !== undefined) out.peak = p;
  const sc = parseNumber(swapCurrent);
  if (sc !== undefined) out.swapCurrent = sc;
  const sm = parseLimit(swapMax);
  if (sm !== undefined) out.swapLimit = sm;
  if (ev.max !== undefined) out.limitHits = ev.max;
  // Kernels before 5.18 have no "kernel" line: add up its parts.
  const kernel = s.kernel ?? (s.kernel_stack !== undefined ? (s.kernel_stack ?? 0) + (s.slab ?? 0) + (s.pagetables ?? 0) + (s.sock ?? 0) + (s.percpu ?? 0) : undefined);
  for (const [k, v] of [['anon', s.anon], ['file', s.file], ['kernel', kernel], ['shmem', s.shmem], ['pgfault', s.pgfault], ['pgmajfault', s.pgmajfault]] as const) {
    if (v !== undefined) out[k] = v;
  }
  return out;
}
