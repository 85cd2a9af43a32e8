/**
 * `nsbox ps`'s read of the store, without the engine and without a schema library: each record's
 * summary (the fields a listing shows) and the shim's files checked by summary-check.ts, each
 * running one's liveness checked by reconcile's logic (reconcile-with.ts), as ContainerStore.list
 * does. It is what the quick `ps` bundle runs (lib/cli/quick/ps.ts). Only what needs no write is
 * answered here: when a record's correction is to be written back (a container exited since the
 * last look), a start that a killed `run -d` left is to be adopted, a gone owner's containers are to
 * be removed (owner-reap.ts), or a record or a shim's file is not one summary-check.ts accepts, the
 * answer is `undefined` and the caller asks Engine.list, which does that under the store's lock,
 * reads through the schemas and reports what is wrong in its words.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BundleFile, bundlePath } from '../runtime/bundle-files.js';
import type { HealthStatus } from '../runtime/bundle.js';
import { isCode } from '../storage/errors.js';
import { StoreLayout, defaultRoot } from '../storage/layout.js';
import { containerBundle } from './engine-context.js';
import { OwnerIndex } from './owners.js';
import { reconcileWith, type ShimFileReaders } from './reconcile-with.js';
import type { ContainerSummary } from './record-summary.js';
import { checkHealthStatus, checkShimState, checkSummary, LeftToEngine } from './summary-check.js';

const isId = (s: string) => /^[0-9a-f]{64}$/.test(s);

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw new LeftToEngine(`${file}: ${(err as Error).message}`);
  }
}

/**
 * The shim's files for reconcile: a state only as its schema reads it; an exit is asked for only
 * when the container is done, which is a correction to write (the engine's) anyway.
 */
const checkedFiles: ShimFileReaders = {
  async state(bundle) {
    const v = await readJson(bundlePath(bundle, 'state'));
    return v === undefined ? undefined : checkShimState(v);
  },
  exit() {
    return Promise.reject(new LeftToEngine('exit.json'));
  },
};

/** Undefined: the engine's to answer (see the file comment). Read-only; nothing is written. */
async function summaryOf(layout: StoreLayout, id: string): Promise<ContainerSummary | 'gone' | undefined> {
  let text: string;
  try {
    text = await readFile(join(layout.container(id), 'record.json'), 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return 'gone';
    return undefined;
  }
  let record: ContainerSummary;
  try {
    record = checkSummary(JSON.parse(text));
    if (record.id !== id) return undefined;
  } catch (err) {
    // A record that does not read or is not one the check accepts: the engine's to answer (see the file comment)
    if (!(err instanceof SyntaxError) && !(err instanceof LeftToEngine)) throw err;
    return undefined;
  }
  // Engine.open adopts these (engine.ts, #adoptOrphans).
  if (record.state === 'created' && !record.supervisor && existsSync(join(containerBundle(layout, id), BundleFile.shimPid))) return undefined;
  try {
    return (await reconcileWith(record, { now: () => new Date(), proc: '/proc' }, checkedFiles)) ? undefined : record;
  } catch {
    // Any failure: Engine.list does the same read under the store's lock and reports it (see the file comment).
    return undefined;
  }
}

/**
 * Running and paused containers, or all of them, newest first (as Engine.list), from the store at
 * `root` (default: NSBOX_ROOT, /var/lib/nsbox as root, else under XDG_DATA_HOME); undefined when a
 * record needs the engine.
 */
export async function readContainerList(opts: { root?: string; all?: boolean } = {}): Promise<ContainerSummary[] | undefined> {
  const layout = new StoreLayout(opts.root ?? defaultRoot());
  // A process that owned containers is gone: the engine's open removes them first (owner-reap.ts).
  if ((await new OwnerIndex(layout.root).deadOwners()).length) return undefined;
  let ids: string[];
  try {
    ids = (await readdir(layout.containersDir)).filter(isId);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return [];
    return undefined;
  }
  const read = await Promise.all(ids.map((id) => summaryOf(layout, id)));
  const out: ContainerSummary[] = [];
  for (const r of read) {
    if (r === undefined) return undefined;
    if (r !== 'gone' && (opts.all || r.state === 'running' || r.state === 'paused')) out.push(r);
  }
  return out.sort((a, b) => Date.parse(b.created) - Date.parse(a.created) || a.id.localeCompare(b.id));
}

/**
 * The health status `ps` shows of a listed container (only while it runs, as healthStatusOf in
 * health.ts): from its shim's health.json; throws LeftToEngine for a file the check does not accept.
 */
export function listedHealthStatus(r: ContainerSummary): HealthStatus | undefined {
  if (r.state !== 'running' || r.supervisor?.kind !== 'shim') return undefined;
  let text: string;
  try {
    text = readFileSync(bundlePath(r.supervisor.bundle, 'health'), 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw new LeftToEngine(`health.json: ${(err as Error).message}`);
  }
  try {
    return checkHealthStatus(JSON.parse(text));
  } catch (err) {
    throw err instanceof LeftToEngine ? err : new LeftToEngine(`health.json: ${(err as Error).message}`);
  }
}

/** A running container as the quick exec needs it: its summary, its shim's bundle and its init's pid. */
export interface ListedRunning {
  record: ContainerSummary;
  bundle: string;
  /** The container's init, as its (live) shim last recorded it: not reaped while the shim lives. */
  pid: number;
}

async function summaryRead(layout: StoreLayout, id: string): Promise<ContainerSummary | undefined> {
  const r = await summaryOf(layout, id);
  return r === 'gone' ? undefined : r;
}

/** ContainerStore's resolution of a reference: a full id, a name (while its record holds it), a unique id prefix. */
async function resolveRef(layout: StoreLayout, ref: string): Promise<ContainerSummary | undefined> {
  if (isId(ref)) {
    const r = await summaryRead(layout, ref);
    if (r) return r;
  }
  if (/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(ref)) {
    const name = ref.replace(/^\//, '');
    const names = await readJson(join(layout.containersDir, 'names.json'));
    const held = (names as { names?: Record<string, unknown> } | undefined)?.names?.[name];
    const r = typeof held === 'string' && isId(held) ? await summaryRead(layout, held) : undefined;
    if (r?.name === name) return r;
  }
  if (!/^[0-9a-f]+$/.test(ref)) return undefined;
  const ids = (await readdir(layout.containersDir)).filter((x) => isId(x) && x.startsWith(ref));
  return ids.length === 1 ? summaryRead(layout, ids[0]!) : undefined;
}

/**
 * The running container `ref` names (as ContainerStore resolves it), supervised by a live shim
 * whose state says it runs; undefined for anything else, which the engine answers (a reference not
 * found or ambiguous, a container not running, a record or file the checks leave to it).
 */
export async function readRunningContainer(ref: string, opts: { root?: string } = {}): Promise<ListedRunning | undefined> {
  const layout = new StoreLayout(opts.root ?? defaultRoot());
  // The engine's open removes what a gone owner left first (as for the list).
  if ((await new OwnerIndex(layout.root).deadOwners()).length) return undefined;
  const record = await resolveRef(layout, ref);
  if (record?.state !== 'running' || record.supervisor?.kind !== 'shim') return undefined;
  const bundle = record.supervisor.bundle;
  const state = await checkedFiles.state(bundle);
  if (state?.status !== 'running' || state.shimPid !== record.supervisor.pid || state.pid <= 0) return undefined;
  return { record, bundle, pid: state.pid };
}
