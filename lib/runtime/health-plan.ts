/**
 * Exec plans compiled ahead, before a detached container starts (exec-process.ts's execPlan, with
 * the container's env, user, cwd, security and cgroup): the shim's HEALTHCHECK settings, so that
 * the shim runs the probe with its own spawn code at each interval, and exec.json's template of a
 * plain exec (exec-template.ts), which the quick `nsbox exec` runs.
 */
import { join } from 'node:path';
import type { Cgroup } from '../cgroup/cgroup.js';
import type { HealthResult } from './bundle.js';
import { execPlan, type ExecTarget } from './exec-process.js';
import type { ExecTemplate } from './exec-template.js';
import type { ResolvedHealthcheck } from './health-config.js';
import { ExecOptionsSchema } from './options.js';
import type { ShimHealthcheck } from './plan-wire.js';

/** The file that says the cgroup is frozen: a probe is not spawned into a paused container. */
export function freezeFileOf(cgroup: Cgroup | undefined): string | undefined {
  const paths = cgroup?.paths ?? {};
  if (paths.freezer) return join(paths.freezer, 'freezer.state');
  if (paths.unified && Object.keys(paths).length === 1) return join(paths.unified, 'cgroup.freeze');
  return undefined;
}

/** `log`: the results of earlier starts (health.json's), which docker keeps across restarts. */
export function shimHealthcheck(target: Omit<ExecTarget, 'enterPidfd'>, h: ResolvedHealthcheck, log: HealthResult[] = []): ShimHealthcheck {
  const plan = execPlan({ ...target, enterPidfd: -1 }, h.argv, ExecOptionsSchema.parse({}), [-1, -1, -1], false);
  const freezeFile = freezeFileOf(target.cgroup);
  return {
    plan,
    interval: h.interval,
    timeout: h.timeout,
    startPeriod: h.startPeriod,
    startInterval: h.startInterval,
    retries: h.retries,
    ...(freezeFile ? { freezeFile } : {}),
    log: log.slice(-5).map((r) => JSON.stringify(r)),
  };
}

/** A plain exec's template: the container's own settings; argv, stdio and pidfds to fill in. */
export function execTemplateOf(target: Omit<ExecTarget, 'enterPidfd'>): ExecTemplate {
  const plan = execPlan({ ...target, enterPidfd: -1 }, [], ExecOptionsSchema.parse({}), [-1, -1, -1], false);
  const freezeFile = freezeFileOf(target.cgroup);
  return { plan, ...(freezeFile ? { freezeFile } : {}) };
}
