/** Fixtures for the nsbox-shim tests: container plans on the busybox rootfs, bundles whose processes are ended by pid. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { SpawnPlan } from '../../lib/native.js';
import { buildContainerPlan, buildEnv } from '../../lib/runtime/plan.js';
import { ContainerOptionsSchema, validate } from '../../lib/runtime/options.js';
import { hostFacts } from '../../lib/runtime/host.js';
import { capabilityMask, capabilitySet } from '../../lib/runtime/capabilities.js';
import { compileSeccomp, defaultProfile, hostSeccompArch } from '../../lib/runtime/seccomp/index.js';
import { rootfs } from './_helpers.js';
import { until } from '../fixtures/until.js';

/** A container's plan as Container.start() builds it (no cgroup): namespaces, pivot_root, docker's caps and seccomp. */
export function planFor(argv: string[], consolePath?: string): SpawnPlan {
  const root = rootfs();
  const cfg = validate(ContainerOptionsSchema, { rootfs: root, command: argv }, 'container options');
  const facts = hostFacts();
  const caps = capabilitySet(cfg, false);
  const arch = hostSeccompArch();
  const seccomp = arch ? compileSeccomp(defaultProfile, { arch, caps: [...caps].map((c) => `CAP_${c}`) }) : undefined;
  const parts = buildContainerPlan(cfg, {
    id: 'shimtest0000', root, sandbox: false, sandboxEntries: [], privileged: facts.privileged, hostUid: facts.uid, hostGid: facts.gid,
    cgroups: facts.cgroups, bindIsDir: [], ...(consolePath ? { consolePath } : {}), security: { caps: capabilityMask(caps), ambient: 0, noNewPrivileges: true, ...(seccomp ? { seccomp } : {}) },
  });
  return {
    cloneFlags: parts.cloneFlags, ops: parts.ops, argv, env: buildEnv({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' }, undefined), path: '/usr/sbin:/usr/bin:/sbin:/bin',
    stdio: [-1, -1, -1], denySetgroups: parts.denySetgroups, ...(parts.uidMap ? { uidMap: parts.uidMap, gidMap: parts.gidMap } : {}),
  };
}

/** A /proc entry of a process that has gone (ESRCH: it went while being read). */
const gone = (e: unknown): boolean => ['ENOENT', 'ESRCH'].includes((e as NodeJS.ErrnoException).code ?? '');

/** Alive and not a zombie (an exited shim may wait a moment for whoever adopted it to reap it). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (e) {
    if (gone(e)) return false;
    throw e;
  }
}
export function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}
export function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch (e) {
    if (gone(e)) return '';
    throw e;
  }
}

export { until };

/** A bundle dir whose shim and container are killed (by pid) and which is removed after the test. */
export function bundle(t: ExecutionContext): { dir: string; track: (r: { shimPid: number; pid: number }) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-shim-'));
  const pids: Array<{ pid: number; comm: string }> = [];
  t.teardown(async () => {
    // The container first (the shim would restart it), then the shim; only if the pid still is what we started.
    for (const p of pids) {
      if (alive(p.pid) && comm(p.pid) === p.comm) process.kill(p.pid, 'SIGKILL');
    }
    await until('the test processes to end', () => pids.every((p) => !alive(p.pid) || comm(p.pid) !== p.comm)).catch((e: Error) =>
      t.log(`teardown: ${e.message}`),
    );
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    track: ({ shimPid, pid }) => {
      pids.push({ pid, comm: comm(pid) }, { pid: shimPid, comm: 'nsbox-shim' });
    },
  };
}
