/**
 * The run plan of the quick `nsbox run --rm` (lib/cli/quick/run.ts): what a foreground `run --rm`
 * of the full CLI compiled for one request (its record as created, the spawn plan of its init with
 * the seccomp program in it, its cgroup's paths and how to make and remove it, the image it resolved), kept in
 * `<root>/run-plans/<hash>.json` so that the next run of the same request starts it without the
 * options' schema, the engine, the image store's reads or the seccomp compiler (issue 14: run
 * within 40 ms of `node -e 0`).
 *
 * A plan is used only for exactly the request it was made for: its key (kept whole in the file and
 * compared, the file name is only a hash of it) holds the request (image reference, command, env,
 * workdir, user, network, -i) and everything else the full path reads to compile it: this build of
 * nsbox (a new build compiles anew), the user, the store's root, the NSBOX_ variables, this
 * process's cgroups and the host's cgroup mounts. What can change under a key (the image a tag
 * names, its layers) is checked by the quick run before it uses the plan. The container's own id
 * (and its short form, the hostname) are placeholders in the file.
 *
 * Written without fsync, as exec.json: a plan that does not read sends the run to the full CLI,
 * which writes it again.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupDirEntry, CgroupRemoval } from '../cgroup/native-ops.js';
import type { SpawnPlan } from '../native.js';
import { bufferReplacer, reviveBuffers } from '../runtime/exec-template.js';
import { debug } from '../debug.js';

const VERSION = 2;
const ID = '@@NSBOX_ID@@';
const SHORT_ID = '@@NSBOX_SHORT_ID@@';

// Replaced by tools/bundle-cli.mjs with the build's id (the same in the main and the quick bundles).
declare const __NSBOX_BUILD_ID__: string | undefined;
/** Undefined outside the bundles (dist/ run directly): no plan is written or read then. */
export const buildId: string | undefined = typeof __NSBOX_BUILD_ID__ === 'string' ? __NSBOX_BUILD_ID__ : undefined;

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    // a host file this system lacks: its absence is part of the key
    return fallback;
  }
}

/** The key's text: the request (what the CLI parsed of it, the name aside) and what the compile read. */
export function runPlanKey(request: object, root: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!buildId) return undefined;
  const vars = Object.keys(env)
    .filter((k) => (k.startsWith('NSBOX_') && k !== 'NSBOX_DEBUG') || k.startsWith('XDG_'))
    .sort()
    .map((k) => `${k}=${env[k]}`);
  // The host's cgroup mounts (the container's /sys/fs/cgroup views come from them), not the rest of
  // mountinfo, which other mounts change all the time.
  const cgroupMounts = readOr('/proc/self/mountinfo', '')
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(' ').slice(3).join(' '));
  return JSON.stringify({ v: VERSION, build: buildId, euid: process.geteuid?.() ?? 0, root, vars, cgroup: readOr('/proc/self/cgroup', ''), cgroupMounts, request });
}

/** FNV-1a, twice with different seeds: a file name for the key (which is compared whole). */
function hash(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

export const runPlanFile = (root: string, key: string): string => join(root, 'run-plans', `${hash(key)}.json`);

export interface RunPlan {
  key: string;
  image: {
    /** The images.json `refs` entry the reference resolved through, and the manifest digest it named. */
    refsKey: string;
    digest: string;
    /** The layers' directories (each checked for its completion marker, layer.json, beside diff/). */
    layers: string[];
  };
  /** The record as the store created it (id, name, created are set per run). */
  record: Record<string, unknown>;
  /** What the start sets in it besides its state, times and supervisor. */
  command: string[];
  /** The init's spawn plan; stdio is set per run. */
  plan: SpawnPlan;
  /** The container's cgroup, by hierarchy. */
  cgroup: Record<string, string>;
  /** How the C++ side makes it and removes it (lib/cgroup/native-ops.ts), with the v2 controllers enabled above it. */
  cgroupOps: { make: CgroupDirEntry[]; controllers: string[]; removal: CgroupRemoval };
}

/** Whether `name` is one of the string values in `v` (Buffers, the seccomp program, aside). */
function holdsValue(v: unknown, name: string): boolean {
  if (typeof v === 'string') return v === name;
  if (typeof v !== 'object' || v === null || Buffer.isBuffer(v)) return false;
  return Object.values(v).some((x) => holdsValue(x, name));
}

/**
 * Writes the plan of container `id`; only the id is a placeholder. False (nothing written) when it
 * cannot be made a template: the container's name is one of the record's or the spawn plan's values
 * (a hostname or an alias made from it would be wrong for the next container), or the text holds a
 * placeholder already. The name is compared with whole values, not searched in the text: a name
 * is often part of a path or of the image's reference (`--name busybox busybox`, a store under
 * /tmp/nsbox-cli-XqrY9 for `--name qr`), which the next container shares.
 */
export function writeRunPlan(root: string, id: string, p: RunPlan): boolean {
  const name = String(p.record.name ?? '');
  const { name: _n, created: _c, ...record } = p.record;
  void _n;
  void _c;
  if (!name || holdsValue(record, name) || holdsValue(p.plan, name) || holdsValue(p.command, name)) {
    debug('run-plan', `not kept: the name ${JSON.stringify(name)} is one of its values`);
    return false;
  }
  const text = JSON.stringify({ v: VERSION, ...p, record }, bufferReplacer);
  if (text.includes(ID) || text.includes(SHORT_ID)) {
    debug('run-plan', 'not kept: a placeholder is in it');
    return false;
  }
  const templated = text.split(id).join(ID).split(id.slice(0, 12)).join(SHORT_ID);
  const file = runPlanFile(root, p.key);
  mkdirSync(join(root, 'run-plans'), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, templated, { mode: 0o600 });
  renameSync(tmp, file);
  prunePlans(join(root, 'run-plans'), file);
  return true;
}

/** Plans of other requests and of earlier builds pile up: past MAX_PLANS, all but the newest go (they are only a cache). */
const MAX_PLANS = 256;
function prunePlans(dir: string, keep: string): void {
  const files = readdirSync(dir);
  if (files.length <= MAX_PLANS) return;
  for (const f of files) if (join(dir, f) !== keep) rmSync(join(dir, f), { force: true });
}

/** The plan for `key`, for container `id`; undefined when there is none, or not one for this key and version. */
export function readRunPlan(root: string, key: string, id: string): RunPlan | undefined {
  let v: unknown;
  try {
    const text = readFileSync(runPlanFile(root, key), 'utf8');
    v = reviveBuffers(JSON.parse(text.split(ID).join(id).split(SHORT_ID).join(id.slice(0, 12))));
  } catch {
    // no plan, or one cut short: a miss, compiled again by the full command
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const p = v as Partial<RunPlan> & { v?: unknown };
  if (p.v !== VERSION || p.key !== key) return undefined;
  const ok =
    typeof p.image === 'object' && p.image !== null && typeof p.image.refsKey === 'string' && typeof p.image.digest === 'string' && Array.isArray(p.image.layers) &&
    typeof p.record === 'object' && p.record !== null && Array.isArray(p.command) &&
    typeof p.plan === 'object' && p.plan !== null && Array.isArray(p.plan.ops) && Array.isArray(p.plan.argv) && Array.isArray(p.plan.env) &&
    typeof p.cgroup === 'object' && p.cgroup !== null &&
    typeof p.cgroupOps === 'object' && p.cgroupOps !== null && Array.isArray(p.cgroupOps.make) && Array.isArray(p.cgroupOps.controllers) &&
    typeof p.cgroupOps.removal === 'object' && p.cgroupOps.removal !== null && Array.isArray(p.cgroupOps.removal.procs) && Array.isArray(p.cgroupOps.removal.rmdirs);
  return ok ? (p as RunPlan) : undefined;
}
