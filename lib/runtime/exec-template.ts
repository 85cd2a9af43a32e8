/**
 * exec.json: the spawn plan of a plain exec into a detached container (no user, workdir, env or
 * privilege of its own: the container's), compiled by execPlan at each start as the HEALTHCHECK's
 * probe is (health-plan.ts). The quick `nsbox exec` (lib/cli/quick/exec.ts) fills in only the
 * command, its stdio and the container's pidfd, so that it loads neither the engine nor the
 * options' schema nor the seccomp compiler (issue 14: exec within 25 ms of `node -e 0`).
 *
 * Written without fsync, as health.json: it describes processes that a reboot ends anyway, and a
 * file that does not read (torn by a crash, or written by another version: `v`) sends the exec
 * through the engine, which compiles the plan itself.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SetupOp, SpawnPlan } from '../native.js';
import { bundlePath, BundleFile } from './bundle-files.js';
import { pathFromEnv } from './env-path.js';

const VERSION = 1;

export interface ExecTemplate {
  /** argv, stdio and the pidfds (enterPidfd, the setns ops' fd) are placeholders: [], -1. */
  plan: SpawnPlan;
  /** The cgroup file that says the container is paused (exec into a frozen cgroup would hang). */
  freezeFile?: string;
}

/** Buffers (the seccomp filter) as base64: JSON would spell each byte out. */
export function bufferReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return Buffer.isBuffer(raw) ? { base64: raw.toString('base64') } : value;
}
/**
 * What bufferReplacer wrote read back: each `{ base64 }` object of a parsed value made a Buffer
 * again, in place. (Not a JSON.parse reviver: one is called back for every value of the text,
 * which took a quick command ~1 ms for a run plan.)
 */
export function reviveBuffers(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = reviveBuffers(v[i]);
    return v;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === 'base64') return Buffer.from(String(o.base64), 'base64');
  for (const k of keys) o[k] = reviveBuffers(o[k]);
  return o;
}

export function writeExecTemplate(bundle: string, t: ExecTemplate): void {
  const tmp = join(bundle, `.${BundleFile.exec}.tmp`);
  writeFileSync(tmp, JSON.stringify({ v: VERSION, ...t }, bufferReplacer), { mode: 0o600 });
  renameSync(tmp, bundlePath(bundle, 'exec'));
}

/** The bundle's template, or undefined when there is none or it is not one this version wrote. */
export function readExecTemplate(bundle: string): ExecTemplate | undefined {
  let v: unknown;
  try {
    v = reviveBuffers(JSON.parse(readFileSync(bundlePath(bundle, 'exec'), 'utf8')));
  } catch {
    // Absent (a container started before exec.json existed), torn or unreadable: the engine's exec compiles the plan.
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const t = v as { v?: unknown; plan?: Partial<SpawnPlan>; freezeFile?: unknown };
  const plan = t.plan;
  if (t.v !== VERSION || typeof plan !== 'object' || plan === null || !Array.isArray(plan.ops) || !Array.isArray(plan.env) || typeof plan.path !== 'string') return undefined;
  if (t.freezeFile !== undefined && typeof t.freezeFile !== 'string') return undefined;
  return { plan: plan as SpawnPlan, ...(t.freezeFile === undefined ? {} : { freezeFile: t.freezeFile }) };
}

/** What an exec may set over the container's own (checked: `NAME=value` strings, an absolute path, `uid[:gid]`). */
export interface TemplateOptions {
  env?: string[];
  cwd?: string;
  user?: string;
}

/**
 * The template's process ops with the user `uid[:gid]` (as parseUser reads it: gid 0 when absent,
 * no supplementary groups), as processOps builds them for an exec with a user of its own: the ids
 * set, and the capabilities of that user (all of the container's for uid 0, else its ambient ones).
 * Undefined when the template's ops are not of that shape.
 */
export function opsWithUser(ops: SetupOp[], user: string): SetupOp[] | undefined {
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  const bset = ops.find((op) => op.op === 'capbset');
  const capset = ops.findIndex((op) => op.op === 'capset');
  if (!m || !bset || capset < 0) return undefined;
  const uid = Number(m[1]);
  const gid = m[2] === undefined ? 0 : Number(m[2]);
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || uid > 0xffffffff || gid > 0xffffffff) return undefined;
  const old = ops.findIndex((op) => op.op === 'setids');
  // processOps gives groups when privileged or without a user namespace: the container's own ids
  // op says which; without one, the container has no user namespace (userns always sets ids).
  const groups = old < 0 || 'groups' in ops[old]! ? { groups: [] } : {};
  const sets = uid === 0 ? bset.caps : (ops.find((op) => op.op === 'ambient') as { caps: number } | undefined)?.caps;
  const out = ops.map((op, i): SetupOp => (i === old ? { op: 'setids', uid, gid, ...groups } : i === capset ? { op: 'capset', effective: sets!, permitted: sets!, inheritable: sets! } : op));
  if (old < 0) out.splice(capset, 0, { op: 'setids', uid, gid, ...groups });
  return out;
}

/**
 * The template's plan for `argv` in the container whose init `pidfd` names, with these stdio fds;
 * `opts` as execPlan applies them: the variables over the container's (its PATH too), the directory.
 */
export function planFromTemplate(t: ExecTemplate, argv: string[], pidfd: number, stdio: [number, number, number], opts: TemplateOptions = {}): SpawnPlan {
  const ops = opts.user === undefined ? t.plan.ops : opsWithUser(t.plan.ops, opts.user);
  if (!ops) throw new Error(`exec.json: its ops do not take a user of the exec's own (${opts.user})`);
  let env = t.plan.env;
  if (opts.env?.length) {
    const merged = new Map(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    for (const kv of opts.env) merged.set(kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1));
    env = [...merged].map(([k, v]) => `${k}=${v}`);
  }
  return {
    ...t.plan,
    argv,
    env,
    path: env === t.plan.env ? t.plan.path : pathFromEnv(env),
    stdio,
    enterPidfd: pidfd,
    ops: ops.map((op) => (op.op === 'setns' && op.fd === -1 ? { ...op, fd: pidfd } : op.op === 'chdir' && opts.cwd !== undefined ? { ...op, target: opts.cwd } : op)),
  };
}
