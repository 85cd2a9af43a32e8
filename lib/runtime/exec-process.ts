/**
 * exec: a new process in a running container's namespaces and cgroup, with the container's user and
 * security settings (or the options'), for both the container this process owns and a handle on one
 * that runs elsewhere.
 */
import type { SpawnPlan } from '../native.js';
import type { Cgroup } from '../cgroup/cgroup.js';
import { InvalidStateError, ValidationError } from '../errors.js';
import { pathFromEnv } from './container-env.js';
import { explainExecFailure } from './exec-errors.js';
import { hostFacts } from './host.js';
import { launch } from './launch.js';
import { ExecOptionsSchema, validate, type ContainerConfig, type ExecConfig, type ExecOptions } from './options.js';
import { buildEnv, namespaceFlags, parseUser, processOps, CLONE, type ProcessSecurity } from './plan.js';
import type { ContainerProcess } from './process.js';
import { securityOf } from './security.js';
import { discardStdio, prepareStdio } from './stdio.js';

/** What exec needs of a running container. */
export interface ExecTarget {
  id: string;
  config: ContainerConfig;
  env: string[];
  security: ProcessSecurity;
  cgroup: Cgroup | undefined;
  /** A pidfd of a process inside the container (its init): its namespaces are joined. */
  enterPidfd: number;
}

export async function execProcess(target: ExecTarget, argv: string[], options: ExecOptions): Promise<ContainerProcess> {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string' || a.includes('\0'))) {
    throw new ValidationError('invalid exec options: argv: must be a non-empty list of strings', 'argv');
  }
  const opts = validate(ExecOptionsSchema, options, 'exec options');
  // A process placed in a frozen cgroup stops before its execve, and the exec would wait for it.
  if (await target.cgroup?.frozen()) throw new InvalidStateError(`Container ${target.id} is paused, unpause the container before exec`);
  const stdio = prepareStdio(opts.detach ? 'ignore' : opts.stdio, opts.detach ? false : opts.tty);
  const plan = execPlan(target, argv, opts, stdio.childFds, stdio.ctty);
  try {
    return await launch(plan, stdio);
  } catch (e) {
    discardStdio(stdio);
    throw await explainExecFailure(e, target.id, target.cgroup);
  }
}

/**
 * The spawn plan of an exec (options already validated): also compiled ahead for the shim's
 * HEALTHCHECK probe (health-plan.ts), whose pidfd the shim fills in at each run.
 */
export function execPlan(target: ExecTarget, argv: string[], opts: ExecConfig, stdio: [number, number, number], ctty: boolean): SpawnPlan {
  const cfg = target.config;
  const userns = cfg.namespaces.user !== false;
  const env = buildEnv(Object.fromEntries(target.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])), opts.env);
  const user = parseUser(opts.user ?? cfg.user);
  const facts = hostFacts();
  const security = opts.privileged ? securityOf({ ...cfg, privileged: true }) : target.security;
  const placement = target.cgroup?.placement();
  return {
    cloneFlags: 0,
    enterPidfd: target.enterPidfd,
    // The cgroup namespace is joined last, by the new process itself: the kernel refuses to place
    // a process (CLONE_INTO_CGROUP) from outside the cgroup namespace's scope.
    enterFlags: namespaceFlags(cfg.namespaces) & ~(CLONE.NEWTIME | CLONE.NEWCGROUP),
    ops: [
      ...(cfg.namespaces.cgroup ? [{ op: 'setns' as const, fd: target.enterPidfd, flags: CLONE.NEWCGROUP }] : []),
      { op: 'chdir', target: opts.cwd ?? cfg.cwd ?? '/' },
      // The same capabilities, no_new_privs and seccomp as the container's own process (a
      // privileged exec: those of a privileged container).
      ...processOps(user, opts.user !== undefined || cfg.user !== undefined || userns, userns, facts.privileged, security),
    ],
    argv,
    env,
    path: pathFromEnv(env),
    stdio,
    ctty,
    ...(opts.detach ? { pdeathsig: false } : {}),
    ...(placement?.v2Path ? { cgroupPath: placement.v2Path } : {}),
    ...(placement?.tasksFiles.length ? { cgroupTasks: placement.tasksFiles } : {}),
  };
}
