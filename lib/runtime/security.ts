/** A container's capabilities, no_new_privs and seccomp filter, from its options. */
import { join } from 'node:path';
import { ValidationError } from '../errors.js';
import { capabilityMask, capabilityName, capabilitySet, type Capability } from './capabilities.js';
import type { ContainerConfig } from './options.js';
import type { ProcessSecurity } from './plan.js';
import { compileSeccomp, compileSeccompCached, defaultProfile, hostSeccompArch } from './seccomp/index.js';

/** Capabilities, no_new_privs and seccomp from the options (docker's defaults unless relaxed). */
export function securityOf(config: ContainerConfig): ProcessSecurity {
  const caps = capabilitySet(config, config.namespaces.user !== false);
  const ambient = new Set<Capability>();
  for (const name of config.ambientCapabilities ?? []) {
    const n = capabilityName(name, 'ambientCapabilities');
    for (const c of n === 'ALL' ? caps : [n]) {
      if (!caps.has(c)) throw new ValidationError(`invalid container options: ambientCapabilities: ${c} is not in the container's capabilities (add it with capAdd)`, 'ambientCapabilities');
      ambient.add(c);
    }
  }
  const seccomp = config.privileged || config.seccomp === 'unconfined' ? undefined : seccompFilter(config.seccomp, caps, config.imageRoot);
  return {
    caps: capabilityMask(caps),
    ambient: capabilityMask(ambient),
    noNewPrivileges: !config.privileged && config.noNewPrivileges,
    privileged: config.privileged,
    ...(seccomp ? { seccomp } : {}),
  };
}

const defaultFilters = new Map<number, Buffer>();
/**
 * The compiled filter; docker's default profile is compiled once per capability set, and with a
 * store (`imageRoot`, as the engine gives) kept in its `seccomp/` for the next process.
 */
function seccompFilter(option: Exclude<ContainerConfig['seccomp'], 'unconfined'>, caps: Set<Capability>, store?: string): Buffer | undefined {
  const arch = hostSeccompArch();
  if (!arch) return undefined; // no syscall table for this architecture: unconfined (see README)
  const capNames = [...caps].map((c) => `CAP_${c}`);
  const compile = (profile: typeof defaultProfile) =>
    store ? compileSeccompCached(join(store, 'seccomp'), profile, { arch, caps: capNames }) : compileSeccomp(profile, { arch, caps: capNames });
  if (option !== 'default') {
    // A listener reaches an agent through the OCI runtime's container process state (nsbox-runc);
    // a Container has no such state, and a filter that notifies nobody fails those syscalls with ENOSYS.
    if (option.listenerPath !== undefined) throw new ValidationError('invalid container options: seccomp: SCMP_ACT_NOTIFY is supported by nsbox-runc only', 'seccomp');
    return compile(option);
  }
  const key = capabilityMask(caps);
  let filter = defaultFilters.get(key);
  if (!filter) {
    filter = compile(defaultProfile);
    defaultFilters.set(key, filter);
  }
  return filter;
}

