/**
 * `nsbox ps`'s read of the store, without the engine: each record through ContainerSummarySchema
 * (the fields a listing shows; not the options, whose schema is most of what loading the engine
 * costs a short-lived command), each running one's liveness checked by reconcile, as
 * ContainerStore.list does. Only what needs no write is answered here: when a record's correction
 * is to be written back (a container exited since the last look), a start that a killed `run -d`
 * left is to be adopted, or a record does not read, the answer is `undefined` and the caller asks
 * Engine.list, which does that under the store's lock and reports what is wrong in its words.
 */
import { OwnerIndex } from './owners.js';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BundleFile } from '../runtime/bundle.js';
import { isCode } from '../storage/errors.js';
import { StoreLayout, defaultRoot } from '../storage/layout.js';
import { containerBundle } from './engine-context.js';
import { reconcile } from './reconcile.js';
import { ContainerSummarySchema, type ContainerSummary } from './record-summary.js';

const isId = (s: string) => /^[0-9a-f]{64}$/.test(s);

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
    const parsed = ContainerSummarySchema.safeParse(JSON.parse(text));
    if (!parsed.success || parsed.data.id !== id) return undefined;
    record = parsed.data;
  } catch (err) {
    // SyntaxError: a record that does not read, the engine's to answer (see the file comment)
    if (!(err instanceof SyntaxError)) throw err;
    return undefined;
  }
  // Engine.open adopts these (engine.ts, #adoptOrphans).
  if (record.state === 'created' && !record.supervisor && existsSync(join(containerBundle(layout, id), BundleFile.shimPid))) return undefined;
  try {
    return (await reconcile(record, { now: () => new Date(), proc: '/proc' })) ? undefined : record;
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
