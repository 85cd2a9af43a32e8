/** `state`, `list`, `ps`, `update`, `events --stats`: reading (and for update, changing) a container. */
import { readFileSync } from 'node:fs';
import { InvalidStateError, NotFoundError } from '../errors.js';
import { childProcess } from './builtin.js';
import { applyResources, openCgroup } from './cgroup.js';
import { LinuxResourcesSchema, parseWith, type OciResources } from './config.js';
import { listIds, loadState } from './state.js';
import { ociState, statusOf } from './status.js';

export async function stateJson(root: string, id: string): Promise<string> {
  const s = loadState(root, id);
  return JSON.stringify(ociState(s, await statusOf(root, s)), null, '  ');
}

export async function listContainers(root: string, format: 'table' | 'json', quiet: boolean): Promise<string> {
  const rows = [];
  for (const id of listIds(root)) {
    const s = loadState(root, id);
    rows.push(ociState(s, await statusOf(root, s)));
  }
  if (quiet) return rows.map((r) => r.id).join('\n');
  if (format === 'json') return JSON.stringify(rows);
  const lines = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...rows.map((r) => [r.id, String(r.pid), r.status, r.bundle, r.created ?? '', r.owner ?? ''])];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd()).join('\n');
}

async function pidsOf(root: string, id: string): Promise<number[]> {
  const s = loadState(root, id);
  const cg = await openCgroup(s.cgroupPaths);
  if (!cg) return (await statusOf(root, s)) === 'stopped' ? [] : [s.pid];
  return cg.procs().catch((e: unknown) => (e instanceof NotFoundError ? [] : Promise.reject(e)));
}

/** runc's ps: the pids as JSON, or `ps`'s table (with `psArgs`, default -ef) cut to the container's processes. */
export async function psContainer(root: string, id: string, format: 'table' | 'json', psArgs: string[]): Promise<string> {
  const pids = await pidsOf(root, id);
  if (format === 'json') return JSON.stringify(pids);
  const out = childProcess().execFileSync('ps', psArgs.length ? psArgs : ['-ef'], { encoding: 'utf8' }).split('\n');
  const header = out[0] ?? '';
  const col = header.trim().split(/\s+/).indexOf('PID');
  if (col < 0) throw new InvalidStateError(`ps: no PID column in "${header}"`);
  const set = new Set(pids);
  return [header, ...out.slice(1).filter((l) => set.has(Number(l.trim().split(/\s+/)[col])))].join('\n');
}

export interface UpdateFlags {
  resources?: string;
  memory?: string;
  memorySwap?: string;
  cpuQuota?: string;
  cpuPeriod?: string;
  cpuShares?: string;
  pidsLimit?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  blkioWeight?: string;
}

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

export async function updateContainer(root: string, id: string, f: UpdateFlags): Promise<void> {
  const s = loadState(root, id);
  if ((await statusOf(root, s)) === 'stopped') throw new InvalidStateError('container not running');
  let r: OciResources = {};
  if (f.resources !== undefined) r = parseWith(LinuxResourcesSchema, JSON.parse(readFileSync(f.resources === '-' ? 0 : f.resources, 'utf8')), 'invalid resources');
  const mem = num(f.memory), swap = num(f.memorySwap), quota = num(f.cpuQuota), period = num(f.cpuPeriod), shares = num(f.cpuShares), pids = num(f.pidsLimit), weight = num(f.blkioWeight);
  if (mem !== undefined || swap !== undefined) r.memory = { ...r.memory, ...(mem !== undefined ? { limit: mem } : {}), ...(swap !== undefined ? { swap } : {}) };
  if (quota !== undefined || period !== undefined || shares !== undefined || f.cpusetCpus || f.cpusetMems) {
    r.cpu = { ...r.cpu, ...(quota !== undefined ? { quota } : {}), ...(period !== undefined ? { period } : {}), ...(shares !== undefined ? { shares } : {}), ...(f.cpusetCpus ? { cpus: f.cpusetCpus } : {}), ...(f.cpusetMems ? { mems: f.cpusetMems } : {}) };
  }
  if (pids !== undefined) r.pids = { limit: pids };
  if (weight !== undefined) r.blockIO = { weight };
  const cg = await openCgroup(s.cgroupPaths);
  if (!cg) return;
  // Device rules given replace the container's (runc's update leaves them; crun's applies them):
  // then the defaults and the config's device nodes stay allowed, as at create.
  await applyResources(cg, r, s.config.linux?.devices ?? []);
}

/** One `events --stats` record, runc's shape reduced to what the drivers measure. */
export async function statsEvent(root: string, id: string): Promise<string> {
  const s = loadState(root, id);
  const cg = await openCgroup(s.cgroupPaths);
  const st = cg ? await cg.stats() : {};
  const data = {
    cpu: { usage: { total: (st.cpu?.usageUsec ?? 0) * 1000, user: (st.cpu?.userUsec ?? 0) * 1000, kernel: (st.cpu?.systemUsec ?? 0) * 1000 } },
    memory: { usage: { usage: st.memory?.current ?? 0, max: st.memory?.peak ?? 0, limit: st.memory?.limit ?? 0 }, raw: st.memory?.stat ?? {} },
    pids: { current: st.pids?.current ?? 0, limit: st.pids?.limit ?? 0 },
  };
  return JSON.stringify({ type: 'stats', id, data });
}
