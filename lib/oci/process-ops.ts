/**
 * A config's `process` as setup ops: rlimits, umask, oom_score_adj, the working directory, and the
 * ids and security in the order the kernel needs (runc's): the bounding set reduced while still
 * root, keepcaps when ambient or non-root effective sets are asked for, ids, the sets, then
 * no_new_privs and seccomp. Shared by create and exec.
 */
import { constants } from 'node:os';
import { ValidationError } from '../errors.js';
import type { SetupOp } from '../native.js';
import { CAPABILITIES, capabilityMask, type Capability } from '../runtime/capabilities.js';
import { compileSeccomp, hostSeccompArch, parseSeccompProfile, seccompFlags } from '../runtime/seccomp/index.js';
import type { OciProcess } from './config.js';

const PR_SET_KEEPCAPS = 8;
const PR_SET_NO_NEW_PRIVS = 38;

const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5, RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10, RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};
/** 2^64-1 and anything past 2^53 read from JSON: unlimited. */
const limit = (n: number) => (n >= 2 ** 53 ? -1 : n);

/** A list of capability names as a mask; names this kernel's table lacks are left out, as runc does. */
export function capMask(names: string[] | undefined): number {
  const set = new Set<Capability>();
  for (const n of names ?? []) {
    const c = n.toUpperCase().replace(/^CAP_/, '');
    if ((CAPABILITIES as readonly string[]).includes(c)) set.add(c as Capability);
  }
  return capabilityMask(set);
}

/** `linux.seccomp` compiled: the program, seccomp(2)'s flags, and the agent's socket when a rule notifies. */
export interface SeccompSetup {
  filter: Buffer;
  flags: number;
  listenerPath?: string;
  listenerMetadata?: string;
}

/** The compiled filter of `linux.seccomp`, for the capabilities the process has. */
export function seccompSetup(profile: unknown, bounding: string[] | undefined): SeccompSetup | undefined {
  if (profile === undefined || profile === null) return undefined;
  const p = parseSeccompProfile(profile);
  const arch = hostSeccompArch();
  if (!arch) throw new ValidationError(`invalid config.json: linux.seccomp: no syscall table for ${process.arch}`, 'linux.seccomp');
  return {
    filter: compileSeccomp(p, { arch, caps: (bounding ?? []).map((c) => c.toUpperCase()) }),
    flags: seccompFlags(p),
    ...(p.listenerPath !== undefined ? { listenerPath: p.listenerPath } : {}),
    ...(p.listenerMetadata !== undefined ? { listenerMetadata: p.listenerMetadata } : {}),
  };
}

export function seccompOp(s: SeccompSetup): SetupOp {
  return { op: 'seccomp', filter: s.filter, ...(s.flags ? { flags: s.flags } : {}) };
}

export interface ProcessOpsOptions {
  /** The container has a user namespace of its own (setgroups is only for a mapped root). */
  userns: boolean;
  seccomp: SeccompSetup | undefined;
  /**
   * Ops to run just before the ids change (create: wait for start). A filter with a listener goes
   * before them: the agent must have the listener before create returns (see cpp/spawn-core.cc).
   */
  beforeIds?: SetupOp[];
}

export function processSetupOps(p: OciProcess, o: ProcessOpsOptions): SetupOp[] {
  const ops: SetupOp[] = [];
  for (const r of p.rlimits ?? []) {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new ValidationError(`invalid config.json: process.rlimits: unknown ${r.type}`, 'process.rlimits');
    ops.push({ op: 'rlimit', resource, soft: limit(r.soft), hard: limit(r.hard) });
  }
  if (p.oomScoreAdj !== undefined) ops.push({ op: 'write', target: '/proc/self/oom_score_adj', data: String(p.oomScoreAdj) });
  if (p.user.umask !== undefined) ops.push({ op: 'umask', mode: p.user.umask });
  ops.push({ op: 'chdir', target: p.cwd });
  // Still root with every capability here: installing a filter needs no no_new_privs yet.
  const early = o.seccomp?.listenerPath !== undefined && (o.beforeIds?.length ?? 0) > 0;
  if (o.seccomp && early) ops.push(seccompOp(o.seccomp));
  ops.push(...(o.beforeIds ?? []));
  const caps = p.capabilities;
  const bounding = capMask(caps?.bounding);
  const effective = capMask(caps?.effective);
  const permitted = capMask(caps?.permitted);
  const inheritable = capMask(caps?.inheritable);
  // The kernel raises an ambient capability only when it is permitted and inheritable; runc warns
  // about the others and goes on (its own default spec lists ambient ones that are not inheritable).
  const ambient = Number(BigInt(capMask(caps?.ambient)) & BigInt(inheritable) & BigInt(permitted));
  const nnp = p.noNewPrivileges === true;
  // Without no_new_privs, installing a filter takes CAP_SYS_ADMIN: first, while still root.
  if (o.seccomp && !early && !nnp) ops.push(seccompOp(o.seccomp));
  if (caps) ops.push({ op: 'capbset', caps: bounding });
  const keep = caps !== undefined && p.user.uid !== 0;
  if (keep) ops.push({ op: 'prctl', option: PR_SET_KEEPCAPS, arg: 1 });
  ops.push({ op: 'setids', uid: p.user.uid, gid: p.user.gid, groups: p.user.additionalGids ?? [] });
  if (keep) ops.push({ op: 'prctl', option: PR_SET_KEEPCAPS, arg: 0 });
  if (caps) {
    ops.push({ op: 'capset', effective, permitted, inheritable });
    if (ambient) ops.push({ op: 'ambient', caps: ambient });
  }
  if (nnp) ops.push({ op: 'prctl', option: PR_SET_NO_NEW_PRIVS, arg: 1 });
  if (o.seccomp && !early && nnp) ops.push(seccompOp(o.seccomp));
  return ops;
}

/** A signal by number or name ('KILL', 'SIGKILL', '9'), as runc's kill reads it. */
export function parseSignal(s: string): number {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n > 0 && n < 65) return n;
  } else {
    const name = (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`) as keyof typeof constants.signals;
    const n = constants.signals[name];
    if (n !== undefined) return n;
  }
  throw new ValidationError(`unknown signal "${s}"`, 'signal');
}
