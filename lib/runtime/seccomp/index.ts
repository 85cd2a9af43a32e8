export { compileSeccomp, actionValue, seccompFlags, SECCOMP_FILTER_FLAG_NEW_LISTENER, type CompileSeccompOptions } from './compile.js';
export { compileSeccompCached, seccompCacheKey, type CachedSeccompOptions } from './cache.js';
export { defaultProfile, CLONE_NAMESPACE_FLAGS } from './default-profile.js';
export {
  SeccompOption, SeccompProfileSchema, parseSeccompProfile, normalizeCap, SECCOMP_ACTIONS, SECCOMP_OPS, SECCOMP_FLAGS,
  type SeccompProfile, type SeccompProfileInput, type SeccompRule, type SeccompArg, type SeccompConditions,
  type SeccompAction, type SeccompOp, type SeccompFlag,
} from './profile.js';
export { hostSeccompArch, AUDIT_ARCH, SYSCALLS, type SeccompArch } from './arch.js';
export { BPF_MAXINSNS, SECCOMP_RET, decodeProgram, type Insn } from './bpf.js';
