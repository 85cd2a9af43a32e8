/**
 * A container run in the foreground of the process that starts it, with no nsbox-shim: `nsbox run
 * --rm` without -d or -t (-i only from a pipe or a file), whose CLI stays with the container until
 * it exits and removes it then. The SDK runs its containers the same way (a child of this process, spawned off the event loop,
 * its exit from a pidfd), which saves the shim's start, its files and its exit files (~100 ms of a
 * `run --rm` here).
 *
 * Others still see it: the record says `running`, supervised by its init (`supervisor.kind:
 * 'process'`, pid and start time), so `ps`, `stop`, `kill`, `exec` and `rm -f` from another shell
 * find and reach it. It dies with this process (PR_SET_PDEATHSIG), and nothing is left after a
 * `kill -9`: the container is noted as this process's own (owners.ts) before anything of it runs,
 * so the next engine open (any command) removes it once this process is gone.
 *
 * What needs a supervisor that outlives the caller takes the shim (the caller is told by an
 * undefined): a healthcheck (its status is for `ps` and inspect from anywhere), a terminal, a
 * restart policy, an open stdin without one given here (or one given to a container without -i).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { NotFoundError } from '../errors.js';
import { resolveForContainer } from '../image/image.js';
import { V2_CONTROLLERS } from '../cgroup/index.js';
import { cgroupDirEntries, cgroupRemoval, unifiedKillFile } from '../cgroup/native-ops.js';
import { Container } from '../runtime/container.js';
import { cgroupLayout } from '../runtime/run-root.js';
import type { ResolvedImage } from '../runtime/image-source.js';
import type { ContainerRecord } from './records.js';
import { imageHealthcheck, mergeHealthcheck, resolveHealthcheck } from '../runtime/health-config.js';
import type { StdioKind } from '../runtime/options.js';
import type { ExitStatus } from '../runtime/process.js';
import { checkState } from './container-status.js';
import type { EngineContext } from './engine-context.js';
import { afterFailedStart, optionsOf } from './lifecycle.js';
import { abandonNetwork, explainStartError, setupNetworkFor, withNetwork, type StartNetwork } from './networking.js';
import { startProxies, type RunningProxies } from '../network/port-proxy.js';
import { OwnerIndex, thisProcess } from './owners.js';
import { processStatSync } from './process-start-time.js';
import { autoRemove } from './removal.js';
import { parseReference } from '../image/reference.js';
import { writeRunPlan } from './run-plan.js';
import { FOREGROUND_NOTE } from './foreground-note.js';
import { debug } from '../debug.js';

export { FOREGROUND_NOTE };

export interface ForegroundRun {
  readonly id: string;
  /** Pipes of the container's stdout and stderr, where 'pipe' was asked. */
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** A signal to the container's init (one that has exited is no error). */
  kill(signal: NodeJS.Signals): void;
  /** The init's exit. */
  readonly exited: Promise<ExitStatus>;
  /** docker's --rm, after the exit: the container and its record removed, the note dropped. */
  remove(): Promise<void>;
}

export interface ForegroundOptions {
  /** The container's stdin, stdout and stderr ('inherit': this process's own fd). */
  stdio: [StdioKind, StdioKind, StdioKind];
  /**
   * The key of the quick run's plan for this request (lib/cli/quick/run-plan.ts), when the quick
   * run takes it: the start is kept under it, if it is one the quick run can repeat.
   */
  planKey?: string;
}

/**
 * Starts the created container `ref` as a child of this process; undefined (nothing done) when it
 * needs a shim (see above). A failed start removes an auto-remove container, as the shim's start does.
 */
export async function startInForeground(ctx: EngineContext, ref: string, opts: ForegroundOptions): Promise<ForegroundRun | undefined> {
  const r = await ctx.store.get(ref);
  checkState('start', r);
  const o = optionsOf(r);
  // docker's -i is stdin given here; without it, the container's is /dev/null.
  if (r.openStdin !== (opts.stdio[0] !== 'ignore') || r.options.tty || r.restartPolicy.name !== 'no') return undefined;
  const image = o.image === undefined ? undefined : await resolveForContainer(o.image, { pull: 'never', root: ctx.root });
  // As Container.create merges them (the probe's shell does not matter here, only whether there is one).
  if (resolveHealthcheck(mergeHealthcheck(o.healthcheck, imageHealthcheck(image?.config.Healthcheck)))) {
    image?.release?.();
    return undefined;
  }
  const owner = thisProcess();
  const index = new OwnerIndex(ctx.root);
  index.note('container', r.id, FOREGROUND_NOTE, owner);
  let c: Container | undefined;
  let net: StartNetwork | undefined;
  let proxies: RunningProxies | undefined;
  try {
    net = await setupNetworkFor(ctx, r);
    const withNet = withNetwork(o, net);
    c = await Container.create(
      // A --rm container's writable layer goes with it: no sync of the host's file system at its exit.
      { ...o, ...withNet, id: r.id, runRoot: ctx.store.layout.containersDir, imageRoot: ctx.root, tty: false, stdio: opts.stdio, volatileLayer: r.autoRemove },
      // The image resolved above (and held: `rmi` sees it in use until the removal).
      { images: async () => image! },
    );
    await c.start();
    // [::1] relayed from this process, as the shim does for a detached container.
    if (net?.proxies.length) {
      proxies = await startProxies(net.proxies);
      net.fds = net.fds.filter((fd) => !proxies!.fds.has(fd));
    }
  } catch (failure) {
    const e = explainStartError(ctx, r, net, failure);
    await proxies?.close();
    if (!c) image?.release?.();
    if (net) await abandonNetwork(ctx, r, net).catch((u: unknown) => ctx.warn(`network teardown of ${r.id}`, u));
    await afterFailedStart(ctx, r, e);
    index.forget('container', r.id, owner);
    throw e;
  }
  const started = c;
  const pid = started.pid!;
  // Read before the exit can be reaped (the pidfd's watch runs on a later turn of the event loop).
  const pidStartTime = processStatSync(pid)?.startTime ?? 0;
  const exited = started.wait();
  // The record says running while the container runs: beside it, not before it.
  const marked = ctx.store
    .update(r.id, (x) => {
      x.state = 'running';
      x.startedAt = new Date().toISOString();
      x.exitCode = null;
      x.signal = null;
      delete x.error;
      x.command = started.config.command ?? [];
      const cgroupPaths = started.cgroup?.paths;
      x.supervisor = { kind: 'process', pid, pidStartTime, ...(cgroupPaths && Object.keys(cgroupPaths).length ? { cgroupPaths } : {}) };
      if (net && x.network) x.network.state = net.state;
    })
    .then((record) => ctx.emit('start', record));
  // A failure is the removal's to report (or the caller's, through remove()).
  marked.catch(() => {});
  const kept = opts.planKey === undefined || net || proxies || r.volumes.length || !image ? undefined : marked.then(() => keepPlan(ctx.root, opts.planKey!, r, started, image));
  if (opts.planKey !== undefined && !kept) debug('run-plan', 'not kept: a network, volumes or no image');
  // A plan that cannot be written only costs the next run its quickness.
  kept?.catch((e: unknown) => debug('run-plan', `not kept: ${(e as Error).message}`));
  return {
    id: r.id,
    stdout: started.stdout,
    stderr: started.stderr,
    kill: (signal) => {
      if (started.state === 'running') started.kill(signal);
    },
    exited,
    remove: async () => {
      const status = await exited;
      await kept?.catch(() => {}); // the plan is a cache: one not kept is compiled again next time
      await marked.catch((e: unknown) => {
        // removed meanwhile (rm -f from another shell)
        if (!(e instanceof NotFoundError)) throw e;
      });
      ctx.emitDie({ ...r, finishedAt: new Date().toISOString(), exitCode: status.exitCode, signal: status.signal });
      try {
        // Its cgroup, writable layer and root, the image's hold; then the record and the rest
        // (also when the first part failed: the removal finds what is left by name).
        await proxies?.close();
        await started.remove().finally(() => autoRemove(ctx, r.id, { exitCode: status.exitCode, signal: status.signal }));
      } finally {
        index.forget('container', r.id, owner);
      }
    },
  };
}


/**
 * Keeps this start as the quick run's plan for `key`: the record as created, the init's spawn plan,
 * the cgroup, the image (as images.json names it: the quick run checks it is still the one).
 */
async function keepPlan(root: string, key: string, r: ContainerRecord, c: Container, image: ResolvedImage): Promise<void> {
  const plan = c.spawnPlan;
  const cgroup = c.cgroup?.paths;
  // A root copied instead of an overlay, or no cgroup: not what the quick run makes.
  if (!plan || !cgroup || !plan.ops.some((op) => op.op === 'mount' && op.fstype === 'overlay')) return debug('run-plan', 'not kept: no spawn plan, no cgroup or no overlay root');
  // The key holds what the layout is read from (the cgroup mounts, this process's cgroups).
  const layout = await cgroupLayout();
  const make = cgroupDirEntries(c.cgroup!.driver, layout);
  if (!make) return debug('run-plan', 'not kept: a cgroup the C++ side does not make');
  // Every nsbox-named parent: the removal climbs one only while it carries nsbox's mark.
  const removal = cgroupRemoval(cgroup, layout, unifiedKillFile(cgroup), () => true);
  const refsKey = parseReference(r.options.image!).toString();
  const images = JSON.parse(readFileSync(join(root, 'images.json'), 'utf8')) as { refs?: Record<string, unknown> };
  if (images.refs?.[refsKey] !== image.digest) return debug('run-plan', `not kept: ${refsKey} names another image now`);
  writeRunPlan(root, r.id, {
    key,
    image: { refsKey, digest: image.digest, layers: image.layers },
    record: { ...r },
    command: c.config.command ?? [],
    plan: { ...plan, stdio: [-1, -1, -1] },
    cgroup: { ...cgroup },
    cgroupOps: { make, controllers: [...V2_CONTROLLERS], removal },
  });
}
