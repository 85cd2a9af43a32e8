import path from 'node:path';
import { NsboxError } from '../../errors.js';
import { parseFlatKeyed, parseLimit, parseNumber, readOptional, writeValue } from '../cgroupfs.js';
import type { MemoryStats } from '../driver.js';
import type { ParsedResources } from '../resources.js';

const isEinval = (err: unknown) => err instanceof NsboxError && err.code === 'EINVAL';

/**
 * memory.limit_in_bytes and memory.memsw.limit_in_bytes (memory plus swap, docker's own semantics).
 * The kernel keeps memsw ≥ memory at every step, so when the first write is refused the other goes
 * first (runc does the same).
 */
export async function setMemoryV1(dir: string, r: ParsedResources): Promise<void> {
  const mem = path.join(dir, 'memory.limit_in_bytes');
  const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
  const writeMem = () => (r.memory === undefined ? Promise.resolve() : writeValue(mem, r.memory));
  const writeSwap = async () => {
    if (r.memorySwap === undefined) return;
    if ((await readOptional(memsw)) === undefined) {
      if (r.memorySwap < 0) return;
      throw new NsboxError(`memorySwap: this kernel has no swap accounting (${memsw} is missing)`, { code: 'ENOTSUP', path: memsw });
    }
    await writeValue(memsw, r.memorySwap);
  };
  try {
    await writeMem();
    await writeSwap();
  } catch (err) {
    if (!isEinval(err)) throw err;
    await writeSwap();
    await writeMem();
  }
}

export async function memoryStatsV1(dir: string): Promise<MemoryStats> {
  const files = ['memory.usage_in_bytes', 'memory.max_usage_in_bytes', 'memory.limit_in_bytes', 'memory.memsw.usage_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.stat', 'memory.oom_control', 'memory.failcnt', 'memory.kmem.usage_in_bytes'];
  const [usage, maxUsage, limitText, swUsage, swLimit, stat, oom, failcnt, kmem] = await Promise.all(files.map((f) => readOptional(path.join(dir, f))));
  const s = parseFlatKeyed(stat);
  const current = parseNumber(usage) ?? 0;
  const limit = parseLimit(limitText) ?? null;
  const out: MemoryStats = { current, limit, oomKills: parseFlatKeyed(oom).oom_kill ?? 0, stat: s };
  const peak = parseNumber(maxUsage);
  if (peak !== undefined) out.peak = peak;
  const sw = parseNumber(swUsage);
  if (sw !== undefined) out.swapCurrent = Math.max(0, sw - current);
  const swl = parseLimit(swLimit);
  if (swl !== undefined) out.swapLimit = swl === null || limit === null ? null : Math.max(0, swl - limit);
  const hits = parseNumber(failcnt);
  if (hits !== undefined) out.limitHits = hits;
  // v1 names: rss is anonymous memory, cache is the page cache; total_* include sub-cgroups.
  const pick = (k: string) => s[`total_${k}`] ?? s[k];
  for (const [k, v] of [['anon', pick('rss')], ['file', pick('cache')], ['shmem', pick('shmem')], ['pgfault', pick('pgfault')], ['pgmajfault', pick('pgmajfault')], ['kernel', parseNumber(kmem)]] as const) {
    if (v !== undefined) out[k] = v;
  }
  return out;
}
