/**
 * Compiles a seccomp profile to the classic-BPF program that `seccomp(SECCOMP_SET_MODE_FILTER)`
 * installs. Shape:
 *
 *   arch != native → KILL_PROCESS;  (x86_64) nr has the x32 bit → ERRNO(EPERM);
 *   binary search over the sorted syscall numbers that have a rule (JGE splits, JA where a branch is
 *   longer than a conditional jump reaches), leaves of a few `JEQ nr` each, every leaf and every
 *   argument block ending in RET; anything else → the default action.
 *
 * A syscall's conditional rules are tried in profile order, then its unconditional rule (or the
 * default). Capability, arch and kernel conditions are settled here, at compile time.
 */
import os from 'node:os';
import { ValidationError } from '../../errors.js';
import { AUDIT_ARCH, ARCH_NAMES, SYSCALLS, type SeccompArch } from './arch.js';
import { BPF, BPF_MAXINSNS, SECCOMP_DATA, SECCOMP_RET, and, encodeProgram, ja, jump, ld, ret, type Insn } from './bpf.js';
import { SECCOMP_FLAGS, normalizeCap, type SeccompAction, type SeccompArg, type SeccompConditions, type SeccompProfile, type SeccompRule } from './profile.js';

export interface CompileSeccompOptions {
  arch: SeccompArch;
  /** The container's capabilities ('CAP_SYS_ADMIN' or 'SYS_ADMIN'); rules' `includes.caps` / `excludes.caps` are checked against them. */
  caps: Iterable<string>;
  /** Kernel release for `minKernel` conditions; defaults to the running kernel's. */
  kernel?: string;
}

const EPERM = 1;
const X32_SYSCALL_BIT = 0x40000000;
/** Entries per leaf of the search tree: few enough for short jumps, enough to keep the tree shallow. */
const LEAF = 6;

interface CondRule {
  args: readonly SeccompArg[];
  ret: number;
}
interface Handler {
  nr: number;
  conditional: CondRule[];
  fallback: number;
}

export function actionValue(action: SeccompAction, errnoRet: number | undefined): number {
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return SECCOMP_RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return SECCOMP_RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return SECCOMP_RET.TRAP;
    case 'SCMP_ACT_ERRNO':
      return (SECCOMP_RET.ERRNO | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRACE':
      return (SECCOMP_RET.TRACE | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_LOG':
      return SECCOMP_RET.LOG;
    case 'SCMP_ACT_ALLOW':
      return SECCOMP_RET.ALLOW;
    case 'SCMP_ACT_NOTIFY':
      return SECCOMP_RET.USER_NOTIF;
  }
}

/** seccomp(2)'s NEW_LISTENER: the filter's notifications go to the fd the call returns. */
export const SECCOMP_FILTER_FLAG_NEW_LISTENER = 8;
const SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 16;

/**
 * The flags to install `profile`'s filter with. A notify rule asks for a listener; the kernel takes
 * TSYNC with a listener only with TSYNC_ESRCH, and WAIT_KILLABLE_RECV only with a listener (it
 * changes nothing without one, so it is dropped then).
 */
export function seccompFlags(profile: SeccompProfile): number {
  const listener = profile.listenerPath !== undefined;
  let flags = 0;
  for (const f of profile.flags) {
    if (f === 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV' && !listener) continue;
    flags |= SECCOMP_FLAGS[f];
  }
  if (listener) flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  if (listener && flags & SECCOMP_FLAGS.SECCOMP_FILTER_FLAG_TSYNC) flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  return flags;
}

function kernelAtLeast(release: string, min: string): boolean {
  const parse = (s: string) => (s.match(/^(\d+)\.(\d+)/) ?? ['', '0', '0']).slice(1).map(Number) as [number, number];
  const [a, b] = parse(release);
  const [c, d] = parse(min);
  return a > c || (a === c && b >= d);
}

function applies(rule: SeccompRule, arch: SeccompArch, caps: ReadonlySet<string>, kernel: string): boolean {
  const archIn = (c: SeccompConditions) => c.arches.some((a) => ARCH_NAMES[arch].includes(a));
  const { includes: inc, excludes: exc } = rule;
  if (inc.caps.some((c) => !caps.has(c))) return false;
  if (inc.arches.length > 0 && !archIn(inc)) return false;
  if (inc.minKernel !== undefined && !kernelAtLeast(kernel, inc.minKernel)) return false;
  if (exc.caps.some((c) => caps.has(c))) return false;
  if (exc.arches.length > 0 && archIn(exc)) return false;
  if (exc.minKernel !== undefined && kernelAtLeast(kernel, exc.minKernel)) return false;
  return true;
}

/** The rules that apply to this container, per syscall number. Names the arch lacks are skipped, as libseccomp does. */
function resolve(profile: SeccompProfile, opts: CompileSeccompOptions, defaultRet: number): Handler[] {
  const caps = new Set([...opts.caps].map(normalizeCap));
  const kernel = opts.kernel ?? os.release();
  const table = SYSCALLS[opts.arch];
  const byNr = new Map<number, { conditional: CondRule[]; fallback?: { ret: number; name: string } }>();
  for (const rule of profile.syscalls) {
    if (!applies(rule, opts.arch, caps, kernel)) continue;
    const r = actionValue(rule.action, rule.errnoRet);
    for (const name of rule.names) {
      const nr = table[name];
      if (nr === undefined) continue;
      let h = byNr.get(nr);
      if (!h) byNr.set(nr, (h = { conditional: [] }));
      if (rule.args.length > 0) h.conditional.push({ args: rule.args, ret: r });
      else if (h.fallback === undefined) h.fallback = { ret: r, name };
      else if (h.fallback.ret !== r) {
        throw new ValidationError(`seccomp profile: ${name} has two unconditional rules with different actions`, 'seccomp.syscalls');
      }
    }
  }
  const handlers: Handler[] = [];
  for (const [nr, h] of byNr) {
    const fallback = h.fallback?.ret ?? defaultRet;
    // Conditional rules that end where the fallback would are no-ops.
    const conditional = h.conditional.filter((c) => c.ret !== fallback);
    if (conditional.length === 0 && fallback === defaultRet) continue;
    handlers.push({ nr, conditional, fallback });
  }
  return handlers.sort((a, b) => a.nr - b.nr);
}

const hi = (v: bigint) => Number((v >> 32n) & 0xffffffffn);
const lo = (v: bigint) => Number(v & 0xffffffffn);

/**
 * One 64-bit argument comparison, as a block that falls through when it holds and otherwise jumps
 * `failSkip` instructions past its own end.
 */
function argCheck(a: SeccompArg, failSkip: number): Insn[] {
  const block: Array<Insn | ((pos: number, len: number) => Insn)> = [];
  // Jump targets relative to the instruction after `pos` in a block of `len`.
  const pass = (pos: number, len: number) => len - pos - 1;
  const fail = (pos: number, len: number) => len - pos - 1 + failSkip;
  const j = (code: number, k: number, t: 'next' | 'pass' | 'fail', f: 'next' | 'pass' | 'fail') => (pos: number, len: number) => {
    const to = (w: 'next' | 'pass' | 'fail') => (w === 'next' ? 0 : w === 'pass' ? pass(pos, len) : fail(pos, len));
    return jump(code, k, to(t), to(f));
  };
  const H = ld(SECCOMP_DATA.argHigh(a.index));
  const L = ld(SECCOMP_DATA.argLow(a.index));
  const [vh, vl] = [hi(a.value), lo(a.value)];
  switch (a.op) {
    case 'SCMP_CMP_EQ':
      block.push(H, j(BPF.JEQ_K, vh, 'next', 'fail'), L, j(BPF.JEQ_K, vl, 'next', 'fail'));
      break;
    case 'SCMP_CMP_NE':
      block.push(H, j(BPF.JEQ_K, vh, 'next', 'pass'), L, j(BPF.JEQ_K, vl, 'fail', 'next'));
      break;
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
      block.push(H, j(BPF.JGT_K, vh, 'pass', 'next'), j(BPF.JEQ_K, vh, 'next', 'fail'), L,
        j(a.op === 'SCMP_CMP_GT' ? BPF.JGT_K : BPF.JGE_K, vl, 'next', 'fail'));
      break;
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE':
      block.push(H, j(BPF.JGT_K, vh, 'fail', 'next'), j(BPF.JEQ_K, vh, 'next', 'pass'), L,
        j(a.op === 'SCMP_CMP_LT' ? BPF.JGE_K : BPF.JGT_K, vl, 'fail', 'next'));
      break;
    case 'SCMP_CMP_MASKED_EQ': {
      // libseccomp and the OCI spec: (arg & value) == valueTwo, value being the mask.
      const [dh, dl] = [hi(a.valueTwo), lo(a.valueTwo)];
      block.push(H, and(vh), j(BPF.JEQ_K, dh, 'next', 'fail'), L, and(vl), j(BPF.JEQ_K, dl, 'next', 'fail'));
      break;
    }
  }
  return block.map((b, pos) => (typeof b === 'function' ? b(pos, block.length) : b));
}

/** A syscall's own code, entered with A = nr; every path ends in RET. */
function handlerBlock(h: Handler): Insn[] {
  const out: Insn[] = [];
  for (const rule of h.conditional) {
    // Build the conjunction back to front: each check skips the rest of the rule when it fails.
    let body: Insn[] = [ret(rule.ret)];
    for (const a of [...rule.args].reverse()) body = [...argCheck(a, body.length), ...body];
    out.push(...body);
  }
  out.push(ret(h.fallback));
  return out;
}

function leaf(entries: readonly Handler[], defaultRet: number): Insn[] {
  const out: Insn[] = [];
  const complex = entries.filter((e) => e.conditional.length > 0);
  const simple = entries.filter((e) => e.conditional.length === 0);
  for (const e of complex) {
    const block = handlerBlock(e);
    if (block.length <= 255) out.push(jump(BPF.JEQ_K, e.nr, 0, block.length), ...block);
    else out.push(jump(BPF.JEQ_K, e.nr, 1, 0), ja(block.length), ...block);
  }
  // Plain verdicts share one RET per distinct action after the leaf's default.
  const rets = [...new Set(simple.map((e) => e.fallback))];
  simple.forEach((e, i) => {
    const after = simple.length - i - 1; // JEQs left after this one, then RET default
    out.push(jump(BPF.JEQ_K, e.nr, after + 1 + rets.indexOf(e.fallback), 0));
  });
  out.push(ret(defaultRet), ...rets.map(ret));
  return out;
}

function searchTree(entries: readonly Handler[], defaultRet: number): Insn[] {
  if (entries.length <= LEAF) return leaf(entries, defaultRet);
  const mid = entries.length >> 1;
  const left = searchTree(entries.slice(0, mid), defaultRet);
  const right = searchTree(entries.slice(mid), defaultRet);
  const k = entries[mid]!.nr;
  if (left.length <= 255) return [jump(BPF.JGE_K, k, left.length, 0), ...left, ...right];
  return [jump(BPF.JGE_K, k, 0, 1), ja(left.length), ...left, ...right];
}

/** The filter program for `profile` on `arch`, as `struct sock_filter[]` bytes. */
export function compileSeccomp(profile: SeccompProfile, opts: CompileSeccompOptions): Buffer {
  const defaultRet = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  const handlers = resolve(profile, opts, defaultRet);
  const prog: Insn[] = [
    ld(SECCOMP_DATA.arch),
    jump(BPF.JEQ_K, AUDIT_ARCH[opts.arch], 1, 0),
    ret(SECCOMP_RET.KILL_PROCESS),
    ld(SECCOMP_DATA.nr),
  ];
  if (opts.arch === 'x86_64') {
    // x32 syscalls share the arch id; deny them whatever the default, or a denylist could be bypassed.
    prog.push(jump(BPF.JSET_K, X32_SYSCALL_BIT, 0, 1), ret(SECCOMP_RET.ERRNO | EPERM));
  }
  prog.push(...(handlers.length > 0 ? searchTree(handlers, defaultRet) : [ret(defaultRet)]));
  if (prog.length > BPF_MAXINSNS) {
    throw new ValidationError(`seccomp profile compiles to ${prog.length} BPF instructions; the kernel accepts at most ${BPF_MAXINSNS}`, 'seccomp');
  }
  return encodeProgram(prog);
}
