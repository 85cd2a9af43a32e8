/**
 * The plan cache of `create`: what this side compiled from a config.json, stored so that the C++
 * `nsbox-runc` (cpp/runc/create.cc) creates the next container of the same config without starting
 * Node (about 100 ms here, more than crun's whole create + start + delete). The translation stays
 * the one in spawn-plan.ts; the entry is its output: the spawn plan (seccomp filter included) with
 * holes for the fds the C++ side opens, the cgroup directories to make, the bind sources whose
 * type the plan depends on, and the state and calls files as templates.
 *
 * The C++ side makes the key (cpp/runc/plan-cache.cc: the config's bytes, the bundle path, the
 * runtime's build, the host facts) and, on a miss, hands it here through a memfd
 * (NSBOX_RUNC_PLAN_KEY_FD): "<kind> <file> <length>\n<key bytes>", for kind `exact` and, when the
 * container id appears in the bundle path or the config, `param`, the key with the id replaced by
 * \x02I. A `param` entry is stored only when a second compilation with another id gives the same
 * entry with the other id in the same places: then its holes can take any id (containerd writes a
 * bundle per container whose config differs from the last only by the id).
 *
 * The entry is a plan-wire tree: { key, plan, rootfs, checks: [{ path, dir }], nsfds: [{ type,
 * path, fd }], cgroups: [{ mountpoint, mountRoot, dir, cpuset, v2 }], writes: [{ file, value }]
 * (the limits, as the drivers wrote them; { dir, devices } a cgroup-v2 device program, the
 * compact form of lib/cgroup/devices.ts), v2controllers, state, calls },
 * written atomically, 0600, under <root>/.plans/ (at most MAX_ENTRIES, the oldest removed). The
 * text templates hold \x02P (pid), \x02T (start time), \x02C (created) and, in a `param` entry,
 * \x02I (the id) in the strings anywhere.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { RecordedWrite } from '../cgroup/cgroupfs.js';
import { V2_CONTROLLERS, type CgroupDriver, type CgroupLayout } from '../cgroup/index.js';
import { cgroupDirEntries, unifiedKillFile } from '../cgroup/native-ops.js';
import type { SpawnPlan } from '../native.js';
import { encodeWire, type WireValue } from '../runtime/plan-wire.js';
import { cgroupLayout } from '../runtime/run-root.js';
import { callFileText } from './call-file.js';
import { parseConfigText, type OciConfig } from './config.js';
import { isDirectory } from './mounts.js';
import { ociSpawnPlan, rootfsOf, type OciPlanContext } from './spawn-plan.js';
import type { StateFile } from './state.js';

export const PLAN_KEY_ENV = 'NSBOX_RUNC_PLAN_KEY_FD';
/** The fd number the plan holds for the exec fifo (cpp/runc/create.cc kFifoFdHole); namespaces below it. */
const FIFO_FD_HOLE = -1000;
const MAX_ENTRIES = 256;
const HOLE = '\x02';
const PID_MARK = 1999999991;
const START_MARK = 1999999992;

export interface PlanKey {
  file: string;
  key: Buffer;
}
export interface PlanKeys {
  exact: PlanKey;
  param?: PlanKey;
}

/** Reads and closes the key memfd the C++ side passed, if any. */
export function takePlanKeys(): PlanKeys | undefined {
  const env = process.env[PLAN_KEY_ENV];
  if (env === undefined) return undefined;
  delete process.env[PLAN_KEY_ENV];
  const fd = Number(env);
  if (!Number.isInteger(fd) || fd < 3) return undefined;
  let buf: Buffer;
  try {
    buf = readFileSync(`/proc/self/fd/${fd}`);
  } finally {
    closeSync(fd);
  }
  const out: Partial<PlanKeys> = {};
  for (let at = 0; at < buf.length; ) {
    const nl = buf.indexOf(10, at);
    if (nl < 0) return undefined;
    const [kind, file, len] = buf.subarray(at, nl).toString('utf8').split(' ');
    const n = Number(len);
    if ((kind !== 'exact' && kind !== 'param') || !file || !Number.isInteger(n) || nl + 1 + n > buf.length) return undefined;
    out[kind] = { file, key: buf.subarray(nl + 1, nl + 1 + n) };
    at = nl + 1 + n;
  }
  return out.exact ? (out as PlanKeys) : undefined;
}

export interface CompiledCreate {
  root: string;
  cfg: OciConfig;
  state: StateFile;
  cgroup: CgroupDriver;
  /** The writes of applying the limits (createCgroup's record), replayed in order. */
  cgroupWrites: RecordedWrite[];
  /** The plan's context as create used it, without the fds it opened. */
  planContext: OciPlanContext;
}

type Entry = { [key: string]: WireValue };

/** Every string in v with `from` replaced by `to` (Buffers kept). */
function subst<T>(v: T, from: string, to: string): T {
  if (typeof v === 'string') return v.replaceAll(from, to) as T;
  if (Buffer.isBuffer(v) || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => subst(x, from, to)) as T;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, subst(x, from, to)])) as T;
}

interface Compilation {
  cfg: OciConfig;
  state: StateFile;
  planContext: OciPlanContext;
  paths: Record<string, string>;
  cgroups: WireValue[];
  writes: WireValue[];
  killFile: boolean;
}

/** The entry of one compilation; undefined when this config's create needs Node. */
function compileEntry(c: Compilation, layout: CgroupLayout, isDir: (p: string, field: string) => boolean): Entry | undefined {
  const nsfds: WireValue[] = [];
  const nsFds: Record<string, number> = {};
  for (const n of c.cfg.linux.namespaces) {
    if (n.path === undefined || n.type === 'network' || n.type === 'pid') continue;
    nsFds[n.type] = FIFO_FD_HOLE - 1 - nsfds.length;
    nsfds.push({ type: n.type, path: n.path, fd: nsFds[n.type]! });
  }
  const checks: WireValue[] = [];
  const plan: SpawnPlan = ociSpawnPlan(c.cfg, {
    ...c.planContext,
    fifoFd: FIFO_FD_HOLE,
    nsFds,
    isDirectory: (p, field) => {
      const dir = isDir(p, field);
      checks.push({ path: p, dir });
      return dir;
    },
  });
  const marked: StateFile = { ...c.state, pid: PID_MARK, start: START_MARK, created: `${HOLE}C` };
  const unescape = (t: string) => t.replaceAll('\\u0002', HOLE);
  const state = unescape(JSON.stringify(marked)).replace(`"pid":${PID_MARK}`, `"pid":${HOLE}P`).replace(`"start":${START_MARK}`, `"start":${HOLE}T`);
  const callsText = callFileText(marked, c.paths, layout, c.killFile);
  const calls = callsText === undefined ? '' : unescape(callsText).replace(`\npid ${PID_MARK}\n`, `\npid ${HOLE}P\n`).replace(`\nstart ${START_MARK}\n`, `\nstart ${HOLE}T\n`);
  for (const t of [state, calls]) if (t.includes(String(PID_MARK)) || t.includes(String(START_MARK))) return undefined;
  return {
    plan: plan as unknown as WireValue,
    rootfs: c.state.rootfs,
    checks,
    nsfds,
    cgroups: c.cgroups,
    writes: c.writes,
    v2controllers: [...V2_CONTROLLERS],
    state,
    calls,
  };
}

/** The config bytes the C++ side read, from the end of its exact key ("config <n>\n<bytes>"). */
function configBytes(key: Buffer): Buffer | undefined {
  const text = key.toString('latin1');
  for (let at = text.lastIndexOf('\nconfig '); at >= 0; at = text.lastIndexOf('\nconfig ', at - 1)) {
    const nl = text.indexOf('\n', at + 1);
    const n = Number(text.slice(at + 8, nl));
    if (Number.isInteger(n) && nl + 1 + n === key.length) return key.subarray(nl + 1);
  }
  return undefined;
}

function writeEntry(root: string, file: string, entry: Entry): void {
  const dir = `${root}/.plans`;
  if (!file.startsWith(`${dir}/`) || file.slice(dir.length + 1).includes('/')) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, encodeWire(entry), { mode: 0o600 });
  renameSync(tmp, file);
  const names = readdirSync(dir).filter((n) => !n.includes('.tmp-'));
  if (names.length <= MAX_ENTRIES) return;
  const aged = names.map((n) => ({ n, t: statSync(`${dir}/${n}`, { throwIfNoEntry: false })?.mtimeMs ?? 0 })).sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, names.length - MAX_ENTRIES)) unlinkSync(`${dir}/${n}`);
}

/** Is this create one the C++ side can repeat from an entry? */
function cacheable(c: CompiledCreate): boolean {
  const hooks = c.cfg.hooks;
  if ((['prestart', 'createRuntime', 'createContainer'] as const).some((k) => (hooks?.[k] ?? []).length > 0)) return false;
  return !c.cfg.process?.terminal;
}

/**
 * Stores what this create compiled under the keys the C++ side gave: the exact entry, and the
 * parameterised one when a compilation for another id agrees. Never fails the create: a problem
 * only means the next create of this config starts Node again.
 */
export async function storePlanEntries(keys: PlanKeys, c: CompiledCreate): Promise<void> {
  try {
    if (!cacheable(c)) return;
    const bytes = configBytes(keys.exact.key);
    // The config this process read must be the one the key holds (not changed in between).
    if (!bytes || !isDeepStrictEqual(parseConfigText(bytes.toString('utf8')), c.cfg)) return;
    const layout = await cgroupLayout();
    const cgroups = cgroupDirEntries(c.cgroup, layout)?.map((e): WireValue => ({ ...e }));
    if (!cgroups) return;
    const one: Compilation = { cfg: c.cfg, state: c.state, planContext: c.planContext, paths: c.cgroup.paths, cgroups, writes: c.cgroupWrites.map(([file, value]) => (typeof value === 'string' ? { file, value } : { dir: file, devices: value })), killFile: unifiedKillFile(c.cgroup.paths) };
    const entry = compileEntry(one, layout, isDirectory);
    if (!entry) return;
    writeEntry(c.root, keys.exact.file, { key: keys.exact.key, ...entry });
    if (!keys.param) return;
    const id = c.state.id;
    const other = `nsboxplan${randomBytes(8).toString('hex')}`;
    const o = (v: string) => v.replaceAll(id, other);
    const cfg2 = parseConfigText(o(bytes.toString('utf8')));
    const state2: StateFile = { ...subst(c.state, id, other), config: cfg2, rootfs: rootfsOf(cfg2, o(c.state.bundle)) };
    // The cgroup directories follow cgroupsPath textually (the C++ side gives no param key when
    // the id is also in our own cgroup or the mounts): the same with the other id.
    const two: Compilation = { ...subst({ ...one, cfg: undefined }, id, other), cfg: cfg2, state: state2, killFile: one.killFile };
    const entry2 = compileEntry(two, layout, (p, field) => isDirectory(p.replaceAll(other, id), field));
    const a = subst(entry, id, `${HOLE}I`);
    if (!entry2 || !isDeepStrictEqual(a, subst(entry2, other, `${HOLE}I`))) return;
    writeEntry(c.root, keys.param.file, { key: keys.param.key, ...a });
  } catch (e) {
    process.emitWarning(`nsbox-runc: plan cache: ${(e as Error).message}`);
  }
}
