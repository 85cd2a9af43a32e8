/**
 * `Engine.exec`: a process in a running container, with its namespaces, cgroup, user and security
 * (`privileged`: every capability, no seccomp, no no_new_privs, as docker's exec --privileged). The
 * process is this caller's child (pipes or a terminal), as docker's exec belongs to the daemon.
 */
import { resolveForContainer } from '../image/image.js';
import { Container } from '../runtime/container.js';
import type { ContainerProcess } from '../runtime/process.js';
import { checkState } from './container-status.js';
import type { EngineContext } from './engine-context.js';
import { optionsOf, pidOf } from './lifecycle.js';
import { bundleOf, cgroupPathsOf } from './shim-control.js';

export interface ExecOptions {
  env?: string[];
  cwd?: string;
  /** uid[:gid], or `root` for 0 (docker's clients send names). */
  user?: string;
  tty?: boolean | { cols: number; rows: number };
  detach?: boolean;
  privileged?: boolean;
}

/** `root` is uid and gid 0 whatever the image's /etc/passwd says, as docker takes it. */
const userOf = (user: string) => user.replace(/^root(?=:|$)/, '0').replace(/:root$/, ':0');

export async function execInContainer(ctx: EngineContext, ref: string, argv: string[], opts: ExecOptions = {}): Promise<ContainerProcess> {
  const r = await ctx.store.get(ref);
  checkState('exec', r);
  const pid = pidOf(r);
  if (!pid) checkState('exec', { ...r, state: 'exited' });
  const bundle = bundleOf(r);
  const c = await Container.join({ ...optionsOf(r), imageRoot: ctx.root }, { id: r.id, pid: pid!, ...(bundle ? { cgroupPaths: cgroupPathsOf(bundle) } : {}) }, { images: resolveForContainer });
  let proc: ContainerProcess;
  try {
    proc = await c.exec(argv, {
      ...(opts.env?.length ? { env: opts.env } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.user ? { user: userOf(opts.user) } : {}),
      tty: opts.tty ?? false,
      stdio: 'pipe',
      detach: opts.detach ?? false,
      privileged: opts.privileged ?? false,
    });
  } catch (e) {
    await c.remove();
    throw e;
  }
  // The joined handle holds the container's pidfd and namespaces: let go once the process is done.
  void proc.wait().then(
    () => c.remove(),
    (e: unknown) => {
      ctx.warn(`exec in ${r.id}`, e);
      return c.remove();
    },
  ).catch((e: unknown) => ctx.warn(`exec in ${r.id}: releasing the container`, e));
  ctx.emit('exec_start', r, { execID: String(proc.pid) });
  return proc;
}
