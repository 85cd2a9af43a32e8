/**
 * The seccomp profile model. One zod schema reads both the OCI runtime-spec `linux.seccomp` object
 * and docker's profile JSON (a superset: `archMap`, `includes`/`excludes`, `comment`, the old
 * single `name`), and yields one internal shape. That shape is also accepted as input, so a parsed
 * profile (or `defaultProfile`) can be passed back wherever a profile is expected.
 */
import * as z from 'zod';
import { ValidationError } from '../../errors.js';
import { lazySchema } from '../../lazy-schema.js';

export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_LOG', 'SCMP_ACT_ALLOW', 'SCMP_ACT_NOTIFY',
] as const;
export type SeccompAction = (typeof SECCOMP_ACTIONS)[number];

export const SECCOMP_OPS = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
] as const;
export type SeccompOp = (typeof SECCOMP_OPS)[number];

const U64_MAX = (1n << 64n) - 1n;

/**
 * A u64 from JSON. Numbers above 2^53 have already lost precision in JSON.parse; the one such value
 * profiles use in practice is 2^64-1, which parses as 2^64, so values past the top are clamped.
 */
const U64 = lazySchema(() => z
  .union([z.number().nonnegative().refine(Number.isInteger, 'must be an integer'), z.bigint().nonnegative()])
  .transform((v) => {
    const b = typeof v === 'bigint' ? v : BigInt(v);
    return b > U64_MAX ? U64_MAX : b;
  }));

const Errno = lazySchema(() => z.number().int().min(0).max(0xffff));

const Action = lazySchema(() => z.string().transform((s, ctx) => {
  if ((SECCOMP_ACTIONS as readonly string[]).includes(s)) return s as SeccompAction;
  ctx.addIssue({ code: 'custom', message: `unknown action ${JSON.stringify(s)}` });
  return z.NEVER;
}));

const Arg = lazySchema(() => z.object({
  index: z.number().int().min(0).max(5),
  value: U64,
  valueTwo: U64.optional().default(0n),
  op: z.enum(SECCOMP_OPS),
}));
export type SeccompArg = z.output<typeof Arg>;

const Conditions = lazySchema(() => z
  .object({
    caps: z.array(z.string()).nullish(),
    arches: z.array(z.string()).nullish(),
    minKernel: z.string().regex(/^\d+\.\d+/, 'must look like 4.8').nullish(),
  })
  .transform((c) => ({
    caps: (c.caps ?? []).map(normalizeCap),
    arches: c.arches ?? [],
    ...(c.minKernel ? { minKernel: c.minKernel } : {}),
  })));
export type SeccompConditions = z.output<typeof Conditions>;

const noConditions = (): SeccompConditions => ({ caps: [], arches: [] });

const Rule = lazySchema(() => z
  .object({
    names: z.array(z.string().min(1)).nullish(),
    name: z.string().min(1).optional(),
    action: Action,
    errnoRet: Errno.optional(),
    args: z.array(Arg).nullish(),
    includes: Conditions.nullish(),
    excludes: Conditions.nullish(),
    comment: z.string().optional(),
  })
  .transform((r, ctx) => {
    const names = [...(r.names ?? []), ...(r.name ? [r.name] : [])];
    if (names.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'a rule needs names (or name)', path: ['names'] });
      return z.NEVER;
    }
    return {
      names,
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      args: r.args ?? [],
      includes: r.includes ?? noConditions(),
      excludes: r.excludes ?? noConditions(),
      ...(r.comment !== undefined ? { comment: r.comment } : {}),
    };
  }));
export type SeccompRule = z.output<typeof Rule>;

/** seccomp(2)'s filter flags that a profile may ask for (runtime-spec 1.1), with their values. */
export const SECCOMP_FLAGS = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
} as const;
export type SeccompFlag = keyof typeof SECCOMP_FLAGS;
const FLAGS = Object.keys(SECCOMP_FLAGS) as [SeccompFlag, ...SeccompFlag[]];

/**
 * Syscalls a notify rule may not name: the process makes them between installing the filter and
 * handing its listener out (sendmsg), when nobody could answer yet.
 */
const NOT_NOTIFIABLE = ['sendmsg'];

// Built on first use (lib/lazy-schema.ts): most containers use docker's profile, which needs no parsing.
export const SeccompProfileSchema = lazySchema(() =>
  z
  .object({
    defaultAction: Action,
    defaultErrnoRet: Errno.optional(),
    architectures: z.array(z.string()).nullish(),
    archMap: z.array(z.object({ architecture: z.string(), subArchitectures: z.array(z.string()).nullish() })).nullish(),
    flags: z.array(z.enum(FLAGS)).nullish(),
    listenerPath: z.string().optional(),
    listenerMetadata: z.string().optional(),
    syscalls: z.array(Rule).nullish(),
  })
  .transform((p, ctx) => {
    const syscalls = p.syscalls ?? [];
    // runtime-spec: listenerPath is ignored without a notify action, and metadata needs a path.
    const notify = syscalls.some((r) => r.action === 'SCMP_ACT_NOTIFY');
    const fail = (message: string, path: string[]) => {
      ctx.addIssue({ code: 'custom', message, path });
      return z.NEVER;
    };
    // Every syscall after the filter, the hand-off of the listener included, would wait on an agent that has no listener yet.
    if (p.defaultAction === 'SCMP_ACT_NOTIFY') return fail('SCMP_ACT_NOTIFY cannot be the default action', ['defaultAction']);
    if (notify && !p.listenerPath) return fail('SCMP_ACT_NOTIFY needs listenerPath, the seccomp agent\'s socket', ['listenerPath']);
    if (p.listenerMetadata !== undefined && !p.listenerPath) return fail('listenerMetadata needs listenerPath', ['listenerMetadata']);
    // runtime-spec: an errno for an action that returns none is an error.
    const takesErrno = (a: SeccompAction) => a === 'SCMP_ACT_ERRNO' || a === 'SCMP_ACT_TRACE';
    if (p.defaultErrnoRet !== undefined && !takesErrno(p.defaultAction)) return fail(`${p.defaultAction} takes no errno`, ['defaultErrnoRet']);
    const e = syscalls.findIndex((r) => r.errnoRet !== undefined && !takesErrno(r.action));
    if (e >= 0) return fail(`${syscalls[e]!.action} takes no errno`, ['syscalls', String(e), 'errnoRet']);
    const i = syscalls.findIndex((r) => r.action === 'SCMP_ACT_NOTIFY' && r.names.some((n) => NOT_NOTIFIABLE.includes(n)));
    if (i >= 0) return fail(`SCMP_ACT_NOTIFY cannot be used for ${NOT_NOTIFIABLE.join(', ')}: the process hands its listener out with it`, ['syscalls', String(i)]);
    // OCI lists every architecture; docker maps each main one to its sub-architectures.
    const architectures = p.architectures ?? (p.archMap ?? []).flatMap((m) => [m.architecture, ...(m.subArchitectures ?? [])]);
    return {
      defaultAction: p.defaultAction,
      ...(p.defaultErrnoRet !== undefined ? { defaultErrnoRet: p.defaultErrnoRet } : {}),
      architectures: [...new Set(architectures)],
      flags: p.flags ?? [],
      ...(notify ? { listenerPath: p.listenerPath!, ...(p.listenerMetadata !== undefined ? { listenerMetadata: p.listenerMetadata } : {}) } : {}),
      syscalls,
    };
  }),
);
export type SeccompProfile = z.output<typeof SeccompProfileSchema>;
export type SeccompProfileInput = z.input<typeof SeccompProfileSchema>;

/** The container option: docker's default profile, no filter at all, or a profile of one's own. */
export const SeccompOption = z.union([z.literal('default'), z.literal('unconfined'), z.lazy(() => SeccompProfileSchema)]);
export type SeccompOption = z.output<typeof SeccompOption>;

/** Reads a docker or OCI seccomp profile (a JSON string or an already parsed object). */
export function parseSeccompProfile(json: unknown): SeccompProfile {
  let input = json;
  if (typeof json === 'string') {
    try {
      input = JSON.parse(json);
    } catch (err) {
      throw new ValidationError(`invalid seccomp profile: ${(err as Error).message}`, 'seccomp', err);
    }
  }
  const r = SeccompProfileSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = ['seccomp', ...issue.path.map(String)].join('.');
  throw new ValidationError(`invalid seccomp profile: ${field}: ${issue.message}`, field, r.error);
}

/** 'sys_admin', 'SYS_ADMIN' and 'CAP_SYS_ADMIN' all name the same capability. */
export function normalizeCap(cap: string): string {
  const up = cap.toUpperCase();
  return up.startsWith('CAP_') ? up : `CAP_${up}`;
}
