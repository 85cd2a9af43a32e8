/**
 * The quick `nsbox run --rm [-i] [-e NAME[=value]]... [-w DIR] [-u USER] [--name NAME]
 * [--network none|host] IMAGE [COMMAND...]`: bin/nsbox.js runs it from a bundle of its own
 * (tools/bundle-cli.mjs), without zod, the engine or the CLI's main bundle (issue 14: run within
 * 40 ms of `node -e 0`). It starts the container the full command's foreground run
 * (lib/engine/foreground.ts) started last time for the same request, from the plan that run kept
 * (run-plan.ts): the same record, cgroup, root (overlay), namespaces, capabilities, seccomp program
 * and process; then it does what the foreground run does: the record says running (supervisor
 * `process`), signals are forwarded, the exit code is passed on, and the container is removed the
 * moment it exits (cgroup, writable layer, record, name, note). It is noted as this process's own
 * (owners.ts) before anything of it exists, so that after a `kill -9` of this process (the container
 * dies with it) the next engine open removes the rest, as for the full command's.
 *
 * Anything else (another flag, a terminal to pass -i from, no plan for this request, an image that
 * is not the one the plan was made from, a name taken, a store that does not read as expected, a
 * spawn that fails before the command ran) answers undefined with nothing started or printed, after
 * undoing what it had made, and bin/nsbox.js runs the full command, which does it or says why not.
 */
import { closeSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OwnerIndex, thisProcess } from '../../engine/owners.js';
import { processStatSync } from '../../engine/process-start-time.js';
import { native, type SpawnPlan } from '../../native.js';
import { defaultRoot } from '../../storage/layout.js';
import { readRunPlan, runPlanFile, type RunPlan } from '../../engine/run-plan.js';
import { quickRunKey, quickRunRequest } from './run-request.js';
import { QuickStore, type Record_ } from './run-store.js';
import { closeAll, isatty, outputFds, relay, takeSignals } from './fds.js';
import { isoString } from '../../iso-time.js';
import { debug } from '../../debug.js';

/** The note a foreground container carries (foreground.ts's FOREGROUND_NOTE). */
const FOREGROUND_NOTE = { foreground: true };

/** A random 64-hex id, never one whose short form is all digits (records.ts's newContainerId), without node:crypto. */
function newId(): string {
  const fd = openSync('/dev/urandom', 'r');
  try {
    for (;;) {
      const buf = Buffer.alloc(32);
      readSync(fd, buf, 0, 32, null);
      const id = buf.toString('hex');
      if (!/^\d{12}/.test(id)) return id;
    }
  } finally {
    closeSync(fd);
  }
}

/** Whether the store still has the image the plan was made from: the same tag, manifest and layers, each layer complete. */
function imageStillThere(root: string, img: RunPlan['image']): boolean {
  try {
    const images = JSON.parse(readFileSync(join(root, 'images.json'), 'utf8')) as { refs?: Record<string, unknown>; images?: Record<string, { layers?: unknown }> };
    if (images.refs?.[img.refsKey] !== img.digest || !images.images?.[img.digest]) return false;
    for (const dir of img.layers) statSync(join(dir, '..', 'layer.json'));
    return true;
  } catch {
    // the store changed (image removed, layer missing, file cut short): the full command decides
    return false;
  }
}

interface Made {
  store: QuickStore;
  owners: OwnerIndex;
  record?: Record_;
  /** Its cgroup's removal, once the cgroup is made. */
  cgroup?: RunPlan['cgroupOps']['removal'];
}

/**
 * Removes what was made of the container (the removal after its exit, or the undoing of a start
 * that did not happen): its cgroup beside its record and directory (writable layer included), then
 * its note, as the full command's removal does.
 */
async function removeMade(m: Made, id: string, code?: number): Promise<void> {
  const errors: unknown[] = [];
  const step = async (fn: () => unknown) => {
    try {
      await fn();
    } catch (e) {
      errors.push(e);
    }
  };
  // Its init reaped, a container with its own pid namespace has nothing left in the cgroup: the
  // plain rmdirs; else (a process moved in from outside) the C++ side kills it first.
  const removal = m.cgroup;
  if (removal) await step(() => native.cgroupRemove(removal));
  if (m.record) await step(() => m.store.remove(id, code));
  await step(() => m.owners.forget('container', id));
  if (errors.length) throw errors[0];
}

/** Leaves the run to the full command, saying why under NSBOX_DEBUG=run-plan. */
function declined(why: string): undefined {
  debug('run-plan', `declined: ${why}`);
  return undefined;
}

export async function run(argv: string[]): Promise<number | undefined> {
  const req = quickRunRequest(argv);
  // -i from a terminal takes the shim's attach (the full command's).
  if (!req || (req.interactive && isatty(0))) return undefined;
  const root = defaultRoot();
  const key = quickRunKey(req, root);
  if (!key) return declined('no plan key (not run from the bundles)');
  const id = newId();
  const plan = readRunPlan(root, key, id);
  if (!plan) return declined(`no plan for this request (${runPlanFile(root, key)})`);
  if (!imageStillThere(root, plan.image)) return declined(`the image changed since the plan (${plan.image.refsKey})`);

  // Our signals are the container's from its start on: one that comes before it is kept for it.
  const signals = takeSignals();
  const made: Made = { store: new QuickStore(root), owners: new OwnerIndex(root) };
  const owner = thisProcess();
  const fds: number[] = [];
  let child: { pid: number; pidfd: number };
  const outPipes: Array<[number, number]> = [];
  try {
    const now = isoString(new Date());
    made.record = await made.store.create({ ...plan.record, id, created: now } as Omit<Record_, 'name'>, req.name, () => made.owners.note('container', id, FOREGROUND_NOTE, owner));
    if (!made.record) {
      made.owners.forget('container', id);
      debug('run-plan', 'declined: the name is taken, or the store does not read as expected');
      return signals.giveUp();
    }
    // The cgroup after the record (by which the engine finds it after a kill -9 of this process):
    // the directories the plan names, as the full command's driver made them (the plan's key holds
    // the cgroup mounts and this process's cgroups, from which they were compiled).
    native.cgroupMake(plan.cgroupOps.make, plan.cgroupOps.controllers);
    made.cgroup = plan.cgroupOps.removal;
    const dir = join(made.store.dir, id);
    mkdirSync(join(dir, 'root'), { mode: 0o700 });
    mkdirSync(join(dir, 'upper'), { mode: 0o755 });
    mkdirSync(join(dir, 'work'), { mode: 0o700 });
    // stdio as the full command's: -i our stdin, else /dev/null; our stdout and stderr, or pipes
    // relayed to them when they are a terminal (without -t, docker's container never has one).
    const stdio: [number, number, number] = [0, 1, 2];
    if (!req.interactive) fds.push((stdio[0] = openSync('/dev/null', 'r+')));
    outPipes.push(...outputFds(stdio, fds));
    const spawnPlan: SpawnPlan = { ...plan.plan, stdio };
    // On this thread: nothing else is to be done until it runs, and no other work of this process
    // needs the thread pool, whose threads' start would be this wait's largest part.
    child = native.spawnSync(spawnPlan);
  } catch (e) {
    // Nothing ran: what was made goes, and the full command does it again and says what went wrong.
    debug('run-plan', `declined: the start failed: ${(e as Error).message}`);
    closeAll([...fds, ...outPipes.map(([r]) => r)]);
    try {
      await removeMade(made, id);
    } catch {
      // left for the full command's engine open (the note names it) or rm
    }
    return signals.giveUp();
  } finally {
    closeAll(fds);
  }

  const started = child;
  signals.to(started.pidfd);
  // Read before the exit can be reaped (the pidfd's watch calls back on a later turn).
  const pidStartTime = processStatSync(started.pid)?.startTime ?? 0;
  const exited = new Promise<number>((resolve) =>
    native.watchExit(started.pidfd, (info) => {
      signals.exited();
      closeAll([started.pidfd]);
      resolve(info.exitCode ?? (info.signal ? 128 + info.signal : 125));
    }),
  );
  const marked = made.store
    .update(id, (x) => {
      x.state = 'running';
      x.startedAt = isoString(new Date());
      x.exitCode = null;
      x.signal = null;
      delete x.error;
      x.command = plan.command;
      // Where its cgroup is, for a removal from another process (record-summary.ts).
      x.supervisor = { kind: 'process', pid: started.pid, pidStartTime, cgroupPaths: plan.cgroup };
    })
    .catch(() => false); // removed meanwhile (rm -f from another shell): the run goes on
  // A reader gone (EPIPE) drops the rest of that output: the run still ends and removes its container.
  const [code] = await Promise.all([exited, ...outPipes.map(([r, to]) => relay(r, to, r, () => {}))]);
  await marked;
  try {
    await removeMade(made, id, code);
  } catch (e) {
    process.stderr.write(`nsbox: removing container ${id}: ${(e as Error).message}\n`);
  }
  // With -i our stdin may still be read by the container's copy of it: nothing of ours is pending.
  process.exit(code);
}
