/**
 * Container lifecycle over the store's records and `nsbox-shim`: start (a new shim each time, on
 * the kept writable layer), stop, restart, kill, pause and unpause. Each checks the state first
 * (container-status.ts). Nothing here needs the process that started a container to stay.
 */
import { NotFoundError, ignoreNotFound } from '../errors.js';
import { resolveForContainer } from '../image/image.js';
import { Container } from '../runtime/container.js';
import type { ContainerOptions } from '../runtime/options.js';
import { readHealthAsync, readStateAsync } from '../runtime/bundle.js';
import { signalNumber } from '../runtime/signals.js';
import { isCode } from '../storage/errors.js';
import { checkState, failureExitCode, isRunning } from './container-status.js';
import { bundlePath, type EngineContext } from './engine-context.js';
import { processStartTime } from './process-start-time.js';
import type { StagedUpdate } from './container-store.js';
import type { ContainerRecord } from './records.js';
import { autoRemove } from './removal.js';
import { autoRemoveCommand } from './removal-claims.js';
import type { RestartPolicy } from './restart-policy.js';
import { bundleOf, cgroupOf, containerPid, liveShim, removeCgroup, removeCgroupOf, sameProcess, shimDone, stopShim } from './shim-control.js';
import { onProcessExit } from './watch.js';
import { abandonNetwork, explainStartError, releaseHeldPorts, setupNetworkFor, teardownNetworkOf, withNetwork, type StartNetwork } from './networking.js';

/** 'SIGTERM', 'TERM' or '15', as docker takes them. */
export const toSignal = (s: string): number => signalNumber(/^\d+$/.test(s) ? Number(s) : s);

function restartText(p: RestartPolicy): string {
  return p.name === 'on-failure' && p.maximumRetryCount ? `on-failure:${p.maximumRetryCount}` : p.name;
}

/**
 * The record's options with its image named by the digest it was created from: its name may
 * since be untagged (`rmi -f`) or moved to a newer pull, and the writable layer belongs on these layers.
 */
export function optionsOf(r: ContainerRecord): ContainerOptions {
  return r.image ? { ...r.options, image: r.image.digest } : r.options;
}

/** The container's init (host pid) while it runs. */
export function pidOf(r: ContainerRecord): number | undefined {
  if (!isRunning(r)) return undefined;
  if (r.supervisor?.kind === 'process') return r.supervisor.pid;
  const bundle = bundleOf(r);
  return bundle ? containerPid(bundle) : undefined;
}

/** A signal to a process, where its being gone already is no error. */
function signal(pid: number, signo: number): void {
  try {
    process.kill(pid, signo);
  } catch (e) {
    if (!isCode(e, 'ESRCH')) throw e;
  }
}

export interface StartOptions {
  /**
   * A client attaches right after (docker run): a run that ends first is kept for it. A function
   * is asked with the container's id once its record is read (the API's start looks its waiting
   * attach up by id, without a read of its own).
   */
  awaitAttach?: boolean | ((id: string) => boolean);
  /** For a --rm container: this process removes it when it exits (removal-claims.ts). */
  claimRemoval?: boolean;
  /**
   * Called with the shim's bundle once the shim runs the container, before the record says so
   * (its write is then beside the attach, not before it: the shim keeps the container's output
   * and exit for an `awaitAttach` client, so nothing waits on the record).
   */
  onShimStarted?: (bundle: string) => void;
}

export async function startContainer(ctx: EngineContext, ref: string, opts: StartOptions = {}): Promise<ContainerRecord> {
  const r = await ctx.store.get(ref);
  checkState('start', r);
  const bundle = bundlePath(ctx, r.id);
  // Made ahead for this record (prepared-cgroups.ts): ours to take, or to remove if anything fails before the shim has it.
  const ahead = ctx.prepared?.take(r);
  // An earlier shim waiting for its attach client, or a container its killed shim left behind.
  if (liveShim(bundle)) await stopShim(bundle, 0);
  let premade = ahead ? await ahead : undefined;
  // Else any cgroup cgroup.json names is an earlier start's (or one made ahead for another record).
  if (!premade) await removeCgroup(bundle);
  const dir = ctx.store.layout.container(r.id);
  const claimed = r.autoRemove && opts.claimRemoval === true && ctx.claims.claim(r.id, dir);
  const awaitAttach = typeof opts.awaitAttach === 'function' ? opts.awaitAttach(r.id) : opts.awaitAttach === true;
  let started: Awaited<ReturnType<Container['startDetached']>>;
  let c: Container | undefined;
  let net: StartNetwork | undefined;
  // The record's change to running, for a shim `shimPid` (started at `pidStart`, its container at `startedAt`).
  const running = (shimPid: number, shimBundle: string, pidStart: number | undefined, startedAt: string) => (x: ContainerRecord) => {
    x.state = 'running';
    x.startedAt = startedAt;
    x.exitCode = null;
    x.signal = null;
    x.oomKilled = false;
    x.manuallyStopped = false;
    delete x.error;
    delete x.removalError;
    x.command = c!.config.command ?? [];
    x.supervisor = { kind: 'shim', pid: shimPid, bundle: shimBundle, ...(pidStart !== undefined ? { pidStartTime: pidStart } : {}) };
    if (net && x.network) x.network.state = net.state;
  };
  // The shim's first run takes this start time, so that the record to running can be written (and
  // fsynced) while the shim starts the container, from the moment its pid is known; only its rename
  // waits for the report. Not committed unless the start succeeds (a failed start drops it).
  let chosenStartedAt = '';
  let staging: { pid: number; done: Promise<{ staged: StagedUpdate; shimStart: number } | undefined> } | undefined;
  const stage = (pid: number) => {
    const done = processStartTime(pid).then(async (shimStart) => {
      if (shimStart === undefined) return undefined;
      return { staged: await ctx.store.stageUpdate(r, running(pid, bundle, shimStart, chosenStartedAt)), shimStart };
    });
    // Not staged (the shim gone already, a failed write): the update after the report does it.
    staging = { pid, done: done.catch(() => undefined) };
  };
  try {
    net = await setupNetworkFor(ctx, r);
    const o = optionsOf(r);
    const withNet = withNetwork(o, net);
    // docker keeps the health log across starts; the status and streak start over (read beside the create).
    const health = readHealthAsync(bundle).then(
      (h) => h?.Log,
      (e: unknown) => ctx.warn(`the health log of ${r.id}`, e),
    );
    // A --rm container's writable layer goes with it: no sync of the host's file system at its exit.
    c = await Container.create({ ...o, ...withNet, id: r.id, runRoot: ctx.store.layout.containersDir, imageRoot: ctx.root, tty: r.options.tty ?? false, stdio: 'ignore', volatileLayer: r.autoRemove }, { images: resolveForContainer });
    const healthLog = await health;
    const cgroup = premade;
    premade = undefined;
    chosenStartedAt = new Date().toISOString();
    started = await c.startDetached({
      ...(cgroup ? { cgroup } : {}),
      restart: restartText(r.restartPolicy) as never,
      ...(healthLog ? { healthLog } : {}),
      openStdin: r.openStdin,
      ...(awaitAttach ? { awaitAttach: 10 } : {}),
      ...(r.autoRemove ? { exitCommand: autoRemoveCommand(ctx.root, r.id, dir, chosenStartedAt) } : {}),
      startedAt: chosenStartedAt,
      onSpawned: stage,
      ...(ctx.spares ? { spares: ctx.spares } : {}),
      // The shim holds the published host ports from now on, for as long as it lives.
      ...(net?.fds.length ? { holdFds: net.fds, proxies: net.proxies } : {}),
    });
  } catch (failure) {
    await staging?.done.then((p) => p?.staged.file.abort());
    if (premade) await removeCgroupOf(premade).catch((u: unknown) => ctx.warn(`the cgroup made ahead for ${r.id}`, u));
    const e = explainStartError(ctx, r, net, failure);
    if (net) await abandonNetwork(ctx, r, net).catch((u: unknown) => ctx.warn(`network teardown of ${r.id}`, u));
    await afterFailedStart(ctx, r, e);
    throw e;
  }
  releaseHeldPorts(net);
  opts.onShimStarted?.(started.bundle);
  // The start as the shim recorded it (state.json's, written before it reported): with another
  // time, the first read of the record (ps, inspect, the quick exec) would find it out of step with
  // the shim and have to write a correction (reconcile's sync). The shim's report carries it and the
  // shim's start time; a shim that does not tell them has them read back.
  // Staged while the shim started the container (onSpawned): committed if the shim took the start
  // time given and its report names the process staged for; else the update below, as before.
  const prepared = staging ? await staging.done : undefined;
  const asStaged = prepared && staging!.pid === started.shimPid && started.bundle === bundle && started.startedAt !== undefined && Date.parse(started.startedAt) === Date.parse(chosenStartedAt) && (started.shimStartTime === undefined || started.shimStartTime === prepared.shimStart);
  let record = asStaged ? await ctx.store.commitStaged(prepared.staged) : undefined;
  if (prepared && !asStaged) await prepared.staged.file.abort();
  let shimStart = prepared?.shimStart;
  if (!record) {
    // The start as the shim recorded it (state.json's, written before it reported): with another
    // time, the first read of the record (ps, inspect, the quick exec) would find it out of step with
    // the shim and have to write a correction (reconcile's sync). The shim's report carries it and the
    // shim's start time; a shim that does not tell them has them read back.
    const [pidStart, shimStartedAt] = await Promise.all([
      started.shimStartTime ?? processStartTime(started.shimPid),
      started.startedAt ??
        readStateAsync(started.bundle).then(
          (s) => (s?.shimPid === started.shimPid ? (s.startedAt ?? undefined) : undefined),
          (e: unknown) => ctx.warn(`the shim's state of ${r.id}`, e),
        ),
    ]);
    shimStart = pidStart;
    const startedAt = shimStartedAt ? new Date(shimStartedAt).toISOString() : new Date().toISOString();
    // Not made durable by a directory fsync: after a crash of the machine nothing runs, and the
    // record is then this one (its content is synced before the rename: a running record whose shim
    // is gone, which reconcile makes exited) or the one before it (created or exited).
    record = await ctx.store.update(r.id, running(started.shimPid, started.bundle, pidStart, startedAt), { syncDir: false });
  }
  ctx.emit('start', record);
  // The next start's spare shim (if this one took it), spawned once this start is recorded: not
  // beside the shim's start and the record's commit, whose CPU and thread pool it would share.
  ctx.spares?.refill();
  // Ours to remove the moment its shim is done (docker's daemon does the same): once the container
  // has exited and an attach client waited for has had all of its output, the shim removes its pid
  // file, then lets its clients go (the daemon's own watches among them) and exits. Armed after
  // the update (not beside it): a waiter for the removal takes the exit code from the running record
  // (its shim's events or exit.json), and a removal queued right behind the update left it no time
  // to read that record (engine.test's --rm waits answered 0).
  if (claimed) {
    ctx.claims.setRun(r.id, record.startedAt!);
    void shimDone(started.shimPid, shimStart, started.bundle)
      .then(async () => {
        if (!ctx.claims.removes(r.id, record.startedAt)) return;
        // Restarted by another process (a CLI's restart of the daemon's container): its new run
        // is that process's, removed by its shim's exit command once this claim is let go.
        const later = () => ctx.store.get(r.id).then((x) => x.startedAt !== record.startedAt, () => false);
        if (await ctx.claims.restartedElsewhere(dir, later)) return ctx.claims.release(r.id);
        return autoRemove(ctx, r.id, undefined, record);
      })
      .catch((e: unknown) => ctx.warn(`removing --rm container ${r.id}`, e));
  }
  return record;
}

/**
 * docker's bookkeeping of a start that failed: an auto-remove container is removed (its `run --rm`
 * waits for that), any other keeps the code (127 command not found, 126 not executable, 125).
 */
export async function afterFailedStart(ctx: EngineContext, r: ContainerRecord, e: unknown): Promise<void> {
  try {
    if (r.autoRemove) await autoRemove(ctx, r.id);
    else {
      await ctx.store.update(r.id, (x) => {
        x.exitCode = failureExitCode(e);
        x.signal = null;
        x.error = (e as Error).message;
      });
    }
  } catch (after) {
    // Removed meanwhile: nothing to record. Otherwise the start's error stays the one thrown.
    if (!(after instanceof NotFoundError)) ctx.warn(`after the failed start of ${r.id}`, after);
  }
}

/**
 * The stop signal (or `signal`), SIGKILL after `timeout` seconds; resolves once it is down (with
 * `exitRecorded`, see stopShim: possibly before its shim is gone).
 */
export async function stopRunning(ctx: EngineContext, r: ContainerRecord, timeout: number, sig?: string, opts: { exitRecorded?: boolean } = {}): Promise<void> {
  if (r.state === 'paused') await thaw(ctx, r);
  const bundle = bundleOf(r);
  if (!bundle) {
    // Run in the foreground of another process (the SDK's, or an older CLI's): signal it directly.
    const sup = r.supervisor;
    if (sup?.kind !== 'process' || !sameProcess(sup.pid, sup.pidStartTime)) return;
    const gone = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        stop();
        resolve(false);
      }, timeout * 1000);
      const stop = onProcessExit(sup.pid, sup.pidStartTime, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    signal(sup.pid, toSignal(sig ?? 'SIGTERM'));
    if (!(await gone)) signal(sup.pid, 9);
    return;
  }
  if (sig) {
    const pid = containerPid(bundle);
    if (pid) signal(pid, toSignal(sig));
  }
  await stopShim(bundle, timeout, r.supervisor, opts);
}

export async function stopContainer(ctx: EngineContext, ref: string, opts: { timeout?: number; signal?: string } = {}): Promise<ContainerRecord> {
  const r = await ctx.store.get(ref);
  checkState('stop', r);
  await ctx.store.update(r.id, (x) => {
    x.manuallyStopped = true;
  });
  await stopRunning(ctx, r, opts.timeout ?? 10, opts.signal);
  // gone: an auto-remove container removed by whoever watched its exit, its network with it
  const stopped = await ctx.store.get(r.id).catch(ignoreNotFound);
  if (stopped) await teardownNetworkOf(ctx, stopped).catch((e: unknown) => ctx.warn(`network teardown of ${r.id}`, e));
  // An auto-remove container may be gone already: removed by whoever watched its exit.
  const after = await ctx.store.get(r.id).catch((e: unknown) => {
    if (e instanceof NotFoundError) return { ...r, state: 'exited' as const, finishedAt: new Date().toISOString() };
    throw e;
  });
  ctx.emitDie(after);
  ctx.emit('stop', after);
  return after;
}

export async function restartContainer(ctx: EngineContext, ref: string, opts: { timeout?: number } = {}): Promise<ContainerRecord> {
  const r = await ctx.store.get(ref);
  // docker's restart keeps a --rm container (its daemon turns AutoRemove off for the stop): the
  // removal that the stop sets off is held off, here and in another process that claimed it
  // (beginRestart: restart.lock), and in the shim's exit command (our claim's lock keeps its
  // `flock -n` out until the new run is recorded; after that, its `--run` is not the container's
  // last run). Removed by whoever removes the new run when it ends.
  const claimedBefore = r.autoRemove && ctx.claims.has(r.id);
  const claimed = r.autoRemove && ctx.claims.claim(r.id, ctx.store.layout.container(r.id));
  let record: ContainerRecord;
  try {
    if (r.autoRemove) await ctx.claims.beginRestart(r.id, ctx.store.layout.container(r.id));
    if (isRunning(r)) await stopRunning(ctx, r, opts.timeout ?? 10);
    record = await startContainer(ctx, r.id, claimedBefore ? { claimRemoval: true } : {});
  } finally {
    if (r.autoRemove) ctx.claims.endRestart(r.id);
    if (claimed && !claimedBefore) ctx.claims.release(r.id);
  }
  ctx.emit('restart', record);
  return record;
}

/** A signal (default SIGKILL) to the container's init. */
export async function killContainer(ctx: EngineContext, ref: string, sig = 'SIGKILL'): Promise<void> {
  const r = await ctx.store.get(ref);
  checkState('kill', r);
  const pid = pidOf(r);
  if (!pid) checkState('kill', { ...r, state: 'exited' });
  const signo = toSignal(sig);
  // A frozen process cannot die: thaw a paused container for SIGKILL.
  if (r.state === 'paused' && signo === 9) await thaw(ctx, r);
  process.kill(pid!, signo);
  ctx.emit('kill', r, { signal: String(signo) });
}

export async function cgroupOfRecord(r: ContainerRecord) {
  const bundle = bundleOf(r);
  const cg = bundle ? await cgroupOf(bundle) : undefined;
  if (!cg) checkState('stats', { ...r, state: 'exited' });
  return cg!;
}

async function thaw(ctx: EngineContext, r: ContainerRecord): Promise<void> {
  await (await cgroupOfRecord(r)).thaw();
  await ctx.store.update(r.id, (x) => {
    if (x.state === 'paused') x.state = 'running';
  });
}

/** Freezes every process of the container (the cgroup freezer). */
export async function pauseContainer(ctx: EngineContext, ref: string): Promise<void> {
  const r = await ctx.store.get(ref);
  checkState('pause', r);
  await (await cgroupOfRecord(r)).freeze();
  await ctx.store.update(r.id, (x) => {
    x.state = 'paused';
  });
  ctx.emit('pause', r);
}

export async function unpauseContainer(ctx: EngineContext, ref: string): Promise<void> {
  const r = await ctx.store.get(ref);
  checkState('unpause', r);
  await thaw(ctx, r);
  ctx.emit('unpause', r);
}

/**
 * What dockerd does when it starts: starts again the containers whose restart policy says so
 * but that are not running because their shim is gone (the host rebooted, or the shim was
 * killed): `always` ones, and `unless-stopped` ones not stopped with `stop`. A container whose
 * shim lives (in a restart backoff) is its shim's to restart. Returns the ids started; one that
 * fails to start is reported in `failed` and the rest go on.
 */
export async function restoreRestartPolicies(ctx: EngineContext): Promise<{ started: string[]; failed: Array<{ id: string; error: string }> }> {
  const out = { started: [] as string[], failed: [] as Array<{ id: string; error: string }> };
  for (const r of await ctx.store.list({ all: true })) {
    const policy = r.restartPolicy.name;
    if (isRunning(r) || r.autoRemove) continue;
    if (policy !== 'always' && !(policy === 'unless-stopped' && !r.manuallyStopped)) continue;
    if (liveShim(bundlePath(ctx, r.id))) continue;
    await startContainer(ctx, r.id).then(
      () => out.started.push(r.id),
      (e: unknown) => out.failed.push({ id: r.id, error: (e as Error).message }),
    );
  }
  return out;
}
