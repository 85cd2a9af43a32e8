/** The architectures nsbox filters for, their audit ids and syscall tables. */
import { syscallsX8664 } from './syscalls-x86_64.js';
import { syscallsAarch64 } from './syscalls-aarch64.js';

export type SeccompArch = 'x86_64' | 'aarch64';

export const AUDIT_ARCH: Readonly<Record<SeccompArch, number>> = { x86_64: 0xc000003e, aarch64: 0xc00000b7 };

export const SYSCALLS: Readonly<Record<SeccompArch, Readonly<Record<string, number>>>> = { x86_64: syscallsX8664, aarch64: syscallsAarch64 };

/** Names a profile may use for each arch in `includes.arches` / `excludes.arches` (docker's are Go's). */
export const ARCH_NAMES: Readonly<Record<SeccompArch, readonly string[]>> = {
  x86_64: ['x86_64', 'amd64', 'SCMP_ARCH_X86_64'],
  aarch64: ['aarch64', 'arm64', 'SCMP_ARCH_AARCH64'],
};

/** The seccomp arch of this Node process, from `process.arch`; undefined where nsbox has no tables. */
export function hostSeccompArch(nodeArch: string = process.arch): SeccompArch | undefined {
  if (nodeArch === 'x64') return 'x86_64';
  if (nodeArch === 'arm64') return 'aarch64';
  return undefined;
}
