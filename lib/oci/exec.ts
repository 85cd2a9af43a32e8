/**
 * `exec`: a new process in a running container's namespaces (entered through the init's pidfd)
 * and cgroup, with the process from `--process` or the init's settings with the flags' changes.
 */
import { closeSync, readFileSync } from 'node:fs';
import { InvalidStateError } from '../errors.js';
import { native, type ExitInfo, type SpawnPlan } from '../native.js';
import { pathFromEnv } from '../runtime/container-env.js';
import { CLONE } from '../runtime/plan.js';
import { openCgroup } from './cgroup.js';
import { ProcessSchema, parseWith, type OciProcess } from './config.js';
import { processSetupOps, seccompSetup } from './process-ops.js';
import { agentPlanFields } from './seccomp-agent.js';
import { namespaceFlags } from './spawn-plan.js';
import { initAlive, loadState, writeAtomic } from './state.js';
import { frozen, statusOf } from './status.js';

export interface ExecOptions {
  root: string;
  id: string;
  /** A runtime-spec Process as JSON (the file of --process). */
  processFile?: string;
  args: string[];
  env: string[];
  cwd?: string;
  user?: string;
  caps: string[];
  noNewPrivs: boolean;
  tty: boolean;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
}

function processFor(o: ExecOptions, base: OciProcess): OciProcess {
  if (o.processFile) return parseWith(ProcessSchema, JSON.parse(readFileSync(o.processFile, 'utf8')), 'invalid process');
  const p: OciProcess = { ...base, args: o.args, terminal: o.tty };
  if (o.args.length === 0) throw new InvalidStateError('exec: no command given');
  if (o.env.length) p.env = [...(base.env ?? []), ...o.env];
  if (o.cwd) p.cwd = o.cwd;
  if (o.user) {
    const [u, g] = o.user.split(':');
    p.user = { uid: Number(u), gid: g === undefined ? 0 : Number(g) };
  }
  if (o.caps.length && p.capabilities) {
    const add = (l: string[] | undefined) => [...(l ?? []), ...o.caps];
    p.capabilities = { bounding: add(p.capabilities.bounding), effective: add(p.capabilities.effective), permitted: add(p.capabilities.permitted), inheritable: add(p.capabilities.inheritable), ambient: p.capabilities.ambient ?? [] };
  }
  if (o.noNewPrivs) p.noNewPrivileges = true;
  return p;
}

/** Starts the process; with `detach` returns 0 once it runs, else waits and returns its exit code. */
export async function execContainer(o: ExecOptions): Promise<number> {
  const s = loadState(o.root, o.id);
  const status = await statusOf(o.root, s);
  if (status !== 'running' && status !== 'created') throw new InvalidStateError(`cannot exec in a ${status === 'paused' ? 'paused' : 'stopped'} container`);
  const cfg = s.config;
  const proc = processFor(o, cfg.process ?? { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 } });
  if (proc.terminal && !o.consoleSocket) throw new InvalidStateError('cannot allocate tty if runc will detach without setting console socket');
  const cg = await openCgroup(s.cgroupPaths);
  if (await frozen(cg)) throw new InvalidStateError('cannot exec in a paused container');
  const enterPidfd = native.pidfdOpen(s.pid);
  const fds = [enterPidfd];
  try {
    if (!initAlive(s)) throw new InvalidStateError('cannot exec in a stopped container');
    const pty = proc.terminal ? native.openPty(proc.consoleSize ? { cols: proc.consoleSize.width || 80, rows: proc.consoleSize.height || 24 } : undefined) : undefined;
    if (pty) fds.push(pty.master, pty.slave);
    const flags = namespaceFlags(cfg);
    const userns = cfg.linux.namespaces.some((n) => n.type === 'user' && n.path === undefined);
    const placement = cg?.placement();
    const env = proc.env ?? [];
    const seccomp = seccompSetup(cfg.linux.seccomp, proc.capabilities?.bounding);
    const plan: SpawnPlan = {
      cloneFlags: 0,
      enterPidfd,
      // The cgroup namespace is joined by the new process itself, once it is in the cgroup; the
      // time namespace too (the process, single-threaded, may join one; it is then in it at once).
      enterFlags: flags & ~(CLONE.NEWTIME | CLONE.NEWCGROUP),
      ops: [
        ...(flags & CLONE.NEWCGROUP ? [{ op: 'setns' as const, fd: enterPidfd, flags: CLONE.NEWCGROUP }] : []),
        ...(flags & CLONE.NEWTIME ? [{ op: 'setns' as const, fd: enterPidfd, flags: CLONE.NEWTIME }] : []),
        ...processSetupOps(proc, { userns, seccomp }),
      ],
      argv: proc.args,
      env,
      path: pathFromEnv(env),
      // 0-2 dup'ed onto themselves: Node marks its stdio close-on-exec at start-up (libuv), the dup clears it.
      stdio: pty ? [pty.slave, pty.slave, pty.slave] : [0, 1, 2],
      ctty: pty !== undefined,
      pdeathsig: false,
      ...(placement?.v2Path ? { cgroupPath: placement.v2Path } : {}),
      ...(placement?.tasksFiles.length ? { cgroupTasks: placement.tasksFiles } : {}),
      // runc sends an exec's listener too, with the container's state as it is then.
      ...agentPlanFields(seccomp, { ociVersion: cfg.ociVersion, id: s.id, bundle: s.bundle, annotations: s.annotations, status: 'running', initPid: s.pid }),
    };
    const { pid, pidfd } = await native.spawn(plan);
    if (pty) native.sendFd(o.consoleSocket!, pty.master, pty.path);
    if (o.pidFile) writeAtomic(o.pidFile, String(pid));
    if (o.detach) return 0;
    const info = await new Promise<ExitInfo>((resolve) => native.watchExit(pidfd, resolve));
    return info.signal ? 128 + info.signal : (info.exitCode ?? 255);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}
