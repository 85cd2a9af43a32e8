/**
 * Linux capabilities by name, docker's default set, and the sets a container's process gets:
 * the bounding set reduced to what it may ever have, and for root inside the effective,
 * permitted and inheritable sets equal to it (a non-root user gets none unless asked: ambient).
 */
import { readFileSync } from 'node:fs';
import { ValidationError, isCode } from '../errors.js';

/** capability(7) numbers, as the kernel headers define them. */
export const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** docker's default capabilities (moby oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES: readonly Capability[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP',
  'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

/** 'SYS_ADMIN', 'CAP_SYS_ADMIN', 'sys_admin' → 'SYS_ADMIN'; 'ALL' stays 'ALL'. */
export function capabilityName(name: string, field: string): Capability | 'ALL' {
  const n = name.toUpperCase().replace(/^CAP_/, '');
  if (n === 'ALL') return 'ALL';
  if (!(CAPABILITIES as readonly string[]).includes(n)) throw new ValidationError(`invalid container options: ${field}: unknown capability ${name}`, field);
  return n as Capability;
}

/** The container's capability set: docker's defaults, then capDrop, then capAdd ('ALL' allowed in both). */
export function capabilitySet(
  options: { capAdd?: string[] | undefined; capDrop?: string[] | undefined; privileged?: boolean | undefined },
  userns = false,
): Set<Capability> {
  // 'all' means all that this process has (a caller without some capability, CAP_SYS_RESOURCE in
  // some VMs, cannot give it away); in a user namespace of its own, the process has every one there.
  const all = userns ? [...CAPABILITIES] : CAPABILITIES.filter((c) => ownCapabilities().has(c));
  if (options.privileged) return new Set(all);
  const set = new Set<Capability>(DEFAULT_CAPABILITIES);
  for (const c of options.capDrop ?? []) {
    const n = capabilityName(c, 'capDrop');
    if (n === 'ALL') set.clear();
    else set.delete(n);
  }
  for (const c of options.capAdd ?? []) {
    const n = capabilityName(c, 'capAdd');
    if (n === 'ALL') for (const c of all) set.add(c);
    else set.add(n);
  }
  return set;
}

let own: Set<Capability> | undefined;
/** The capabilities in this process's permitted set (/proc/self/status CapPrm). */
export function ownCapabilities(): Set<Capability> {
  if (own) return own;
  let mask = 0n;
  try {
    const m = /^CapPrm:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) mask = BigInt(`0x${m[1]}`);
  } catch (err) {
    // ENOENT: no /proc here; assume every capability and let the kernel refuse what it refuses
    if (!isCode(err, 'ENOENT')) throw err;
    mask = (1n << BigInt(CAPABILITIES.length)) - 1n;
  }
  own = new Set(CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n));
  return own;
}

/** A set as the kernel's bit mask (bit n = capability n); below 2^53, so a JS number holds it. */
export function capabilityMask(set: Iterable<Capability>): number {
  let mask = 0;
  for (const c of set) mask += 2 ** CAPABILITIES.indexOf(c);
  return mask;
}
