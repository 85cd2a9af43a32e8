/**
 * `ContainerStore`: container records shared by every process that opens the same root (CLIs, the
 * daemon, SDK users). Each record is `<root>/containers/<id>/record.json`; `names.json` maps names
 * to ids. Every change happens under one flock (`containers.lock`) and every file is replaced
 * atomically, so a kill -9 at any point leaves the old or the new file, never a torn one.
 *
 * The records are the truth and the index serves uniqueness: a create writes the index before the
 * record, a remove deletes the record before the index entry, and an entry counts only while its
 * record exists under that name. A crash between two writes leaves at most a stale entry, which is
 * ignored (and dropped by repair), never a record whose name another container could take.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { InvalidStateError, NotFoundError, NsboxError, ValidationError } from '../errors.js';
import { validate } from '../runtime/options.js';
import { fsyncDirAsync, stageFile, tryLock, withLock, writeFileAtomic } from '../storage/atomic.js';
import { isCode } from '../storage/errors.js';
import { removeTree } from '../storage/remove-tree.js';
import { StoreLayout, defaultRoot } from '../storage/layout.js';
import { ConflictError } from './conflict-error.js';
import { mountsUnder } from './mounts-under.js';
import { leaveExit, sweepExits, type ExitStatus } from './removed-exits.js';
import { canonicalName, generateName } from './names.js';
import { reconcile, type ReconcileEnv } from './reconcile.js';
import {
  ContainerRecordSchema,
  NewContainerRecordSchema,
  newContainerId,
  type ContainerRecord,
  type NewContainerRecord,
} from './records.js';

export interface ContainerStoreOptions {
  /** The store's root (default: NSBOX_ROOT, /var/lib/nsbox as root, else under XDG_DATA_HOME). */
  root?: string;
  /** Clock for creation and exit times. */
  now?: () => Date;
  /** Where procfs is mounted, for the liveness checks. */
  proc?: string;
  /** Repair at open (default true); the CLI leaves it to `nsbox serve` and `system prune`. */
  repair?: boolean;
}

/** `stageUpdate`'s result: the record it was made from (as written), the new one, and its temp file. */
export interface StagedUpdate {
  readonly base: string;
  readonly next: ContainerRecord;
  readonly file: { commit(): Promise<void>; abort(): Promise<void> };
}

const NamesSchema = z.object({ version: z.literal(1), names: z.record(z.string(), z.string()) });
type Names = Record<string, string>;

const namesText = (names: Names) => `${JSON.stringify({ version: 1, names }, null, 2)}\n`;
const recordText = (record: ContainerRecord) => `${JSON.stringify(record, null, 2)}\n`;
const isId = (s: string) => /^[0-9a-f]{64}$/.test(s);
const isTemp = (f: string) => f.startsWith('.') && f.includes('.tmp-');
/** A record that has not (yet) told its exit: reconcile makes a gone process without an exit.json `dead`. */
const isRunningOrDead = (r: ContainerRecord) => r.state === 'running' || r.state === 'paused' || r.state === 'dead';

function corrupt(file: string, err: unknown): NsboxError {
  const issue = err instanceof z.ZodError ? err.issues[0] : undefined;
  const msg = issue ? `${issue.path.map(String).join('.') || 'record'}: ${issue.message}` : (err as Error).message;
  return new NsboxError(`${file}: not a valid nsbox record: ${msg}`, { code: 'ERR_STORE_CORRUPT', path: file, cause: err });
}

export class ContainerStore {
  readonly layout: StoreLayout;
  readonly #env: ReconcileEnv;

  constructor(opts: ContainerStoreOptions = {}) {
    this.layout = new StoreLayout(opts.root ?? defaultRoot());
    this.#env = { now: opts.now ?? (() => new Date()), proc: opts.proc ?? '/proc' };
  }

  /** Creates the directory and repairs what a crash left (when no other process holds the lock). */
  static async open(opts: ContainerStoreOptions = {}): Promise<ContainerStore> {
    const store = new ContainerStore(opts);
    await mkdir(store.layout.containersDir, { recursive: true });
    if (opts.repair !== false) await store.repair();
    return store;
  }

  get namesFile(): string {
    return path.join(this.layout.containersDir, 'names.json');
  }
  get lockFile(): string {
    return path.join(this.layout.containersDir, 'containers.lock');
  }
  recordFile(id: string): string {
    return path.join(this.layout.container(id), 'record.json');
  }

  /** Other processes wait on the flock; this process's own callers queue here first (no flock polling among them). */
  #queue: Promise<unknown> = Promise.resolve();

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => withLock(this.lockFile, fn));
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #read(id: string): Promise<ContainerRecord | undefined> {
    const file = this.recordFile(id);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (isCode(err, 'ENOENT')) return undefined;
      throw err;
    }
    try {
      const record = ContainerRecordSchema.parse(JSON.parse(text));
      if (record.id !== id) throw new Error(`it holds the record of ${record.id}`);
      return record;
    } catch (err) {
      throw corrupt(file, err);
    }
  }

  /**
   * Replaces an existing record (its directory is there: the record was just read under the lock).
   * `syncDir: false` leaves out the directory's fsync: the content is synced before the rename, so
   * a crash of the machine leaves this record or the one before it, whole.
   */
  async #write(record: ContainerRecord, opts: { syncDir?: boolean } = {}): Promise<void> {
    const file = this.recordFile(record.id);
    if (opts.syncDir !== false) return writeFileAtomic(file, recordText(record));
    await (await stageFile(file, recordText(record))).commit();
  }

  async #readNames(): Promise<Names> {
    let text: string;
    try {
      text = readFileSync(this.namesFile, 'utf8');
    } catch (err) {
      if (isCode(err, 'ENOENT')) return {};
      throw err;
    }
    try {
      return NamesSchema.parse(JSON.parse(text)).names;
    } catch (err) {
      throw corrupt(this.namesFile, err);
    }
  }

  async #writeNames(names: Names): Promise<void> {
    await mkdir(this.layout.containersDir, { recursive: true });
    await writeFileAtomic(this.namesFile, namesText(names));
  }

  /** The id holding `name`, if its record exists under that name (see the file comment). */
  async #holder(names: Names, name: string): Promise<string | undefined> {
    const id = names[name];
    if (id === undefined || !isId(id)) return undefined;
    return (await this.#read(id))?.name === name ? id : undefined;
  }

  async #ids(): Promise<string[]> {
    try {
      return (await readdir(this.layout.containersDir)).filter(isId);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return [];
      throw err;
    }
  }

  /** docker's lookup: full id, then name, then unique id prefix; the record as read on the way. */
  async #current(ref: string): Promise<ContainerRecord> {
    if (isId(ref)) {
      const record = await this.#read(ref);
      if (record) return record;
    }
    if (ref.length > 0 && /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(ref)) {
      const name = ref.replace(/^\//, '');
      const id = (await this.#readNames())[name];
      // The index counts only while the record holds that name (see the file comment).
      const record = id !== undefined && isId(id) ? await this.#read(id) : undefined;
      if (record?.name === name) return record;
    }
    if (/^[0-9a-f]+$/.test(ref)) {
      const ids = (await this.#ids()).filter((id) => id.startsWith(ref));
      if (ids.length > 1) throw new ValidationError(`multiple IDs found with provided prefix: ${ref}`, 'id');
      const record = ids.length === 1 ? await this.#read(ids[0]!) : undefined;
      if (record) return record;
    }
    throw new NotFoundError(`No such container: ${ref}`);
  }

  /** `record`, or its correction written back (under the lock, re-read there first). */
  async #reconciled(record: ContainerRecord): Promise<ContainerRecord> {
    if (!(await reconcile(record, this.#env))) return record;
    return this.#locked(async () => {
      const now = await this.#read(record.id);
      if (!now) throw new NotFoundError(`No such container: ${record.id}`);
      const fixed = await reconcile(now, this.#env);
      if (!fixed) return now;
      await this.#write(fixed);
      return fixed;
    });
  }

  /**
   * Adds a record. Its name must be free (else a `ConflictError` in docker's words); without one, a
   * free `adjective_surname` is chosen. The id (64 hex) and creation time are filled in when absent.
   */
  async create(input: NewContainerRecord): Promise<ContainerRecord> {
    const data = validate(NewContainerRecordSchema, input, 'container record');
    const given = data.name === undefined ? undefined : canonicalName(data.name);
    const id = data.id ?? newContainerId();
    return this.#locked(async () => {
      // Side by side: the id's record (none, as a rule) and the index.
      const [existing, names] = await Promise.all([this.#read(id), this.#readNames()]);
      if (existing) throw new InvalidStateError(`a container with id ${id} already exists`);
      let name = given;
      if (name === undefined) {
        name = generateName((n) => names[n] !== undefined);
      } else {
        const holder = await this.#holder(names, name);
        if (holder !== undefined) throw new ConflictError(name, holder);
      }
      const record = ContainerRecordSchema.parse({ ...data, id, name, created: data.created ?? this.#env.now().toISOString() });
      await this.#createFiles(record, { ...names, [name]: id });
      return record;
    });
  }

  /**
   * A new container's index and record, as two atomic writes would leave them, with their fsyncs
   * side by side: both temp files are written and fsynced together, then renamed in the order the
   * file comment gives (index, then record). A kill -9 anywhere leaves what the sequential writes
   * would (at most a stale index entry, or a directory without a record, both of which repair
   * removes); so does a crash of the machine, since nothing is renamed before both files are on disk.
   * The directories are not fsynced before the answer (as the start's update to running): after a
   * crash of the machine the renames are there or not, each on its own (a record without its index
   * entry, whose index repair rebuilds from the records, or an entry without its record, which
   * counts for nothing), so a create answered just before a power loss may be missing after it;
   * never a torn file. (On ext4 the next fsync of anything in the store commits them too.)
   */
  async #createFiles(record: ContainerRecord, names: Names): Promise<void> {
    const dir = this.layout.container(record.id);
    await mkdir(dir, { recursive: true });
    const staged = await Promise.allSettled([stageFile(this.namesFile, namesText(names)), stageFile(this.recordFile(record.id), recordText(record))]);
    const [index, rec] = staged.map((p) => (p.status === 'fulfilled' ? p.value : undefined));
    const failed = staged.find((p): p is PromiseRejectedResult => p.status === 'rejected');
    if (failed || !index || !rec) {
      await Promise.all([index?.abort(), rec?.abort()]);
      throw failed?.reason;
    }
    try {
      await index.commit();
    } catch (err) {
      await rec.abort();
      throw err;
    }
    await rec.commit();
  }

  /**
   * `get` without writing a correction back: the record as reconcile sees it now. For callers that
   * only look (attach) or are about to replace it anyway (removal), on the path of a `docker run`.
   */
  async peek(ref: string): Promise<ContainerRecord> {
    const record = await this.#current(ref);
    return (await reconcile(record, this.#env)) ?? record;
  }

  /** By full id, name ("web" or "/web") or unique id prefix; a stale "running" is corrected first. */
  async get(ref: string): Promise<ContainerRecord> {
    return this.#reconciled(await this.#current(ref));
  }

  /**
   * By full id alone: a NotFoundError as soon as its record is gone, without the name and prefix
   * lookups; and, as `peek`, without writing a correction back. For watchers of one container,
   * which know its id and look again each time the kernel says it changed (a waiter, the daemon's
   * exit monitor): their write-backs took the lock right as the container exited, in the way of its
   * --rm removal.
   */
  async peekById(id: string): Promise<ContainerRecord> {
    const record = isId(id) ? await this.#read(id) : undefined;
    if (!record) throw new NotFoundError(`No such container: ${id}`);
    const fixed = await reconcile(record, this.#env);
    if (!fixed) return record;
    // A correction may come from a removal after the read (its shim's files went with the
    // directory): then the container is gone, not dead. (A write-back would have found that out
    // under the lock.)
    if (!(await this.#read(id))) throw new NotFoundError(`No such container: ${id}`);
    return fixed;
  }

  /** Running and paused containers, or all of them; newest first (as `docker ps`). */
  async list(opts: { all?: boolean } = {}): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    for (const id of await this.#ids()) {
      const found = await this.#read(id);
      if (!found) continue; // removed meanwhile, or a removal a crash interrupted
      const record = await this.#reconciled(found).catch((err: unknown) => {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      });
      if (record && (opts.all || record.state === 'running' || record.state === 'paused')) out.push(record);
    }
    return out.sort((a, b) => Date.parse(b.created) - Date.parse(a.created) || a.id.localeCompare(b.id));
  }

  /**
   * Read-modify-write under the lock: `fn` gets the current (reconciled) record and returns the new
   * one, or changes it in place. The id cannot change; a new name must be free.
   */
  async update(
    ref: string,
    fn: (record: ContainerRecord) => ContainerRecord | void | Promise<ContainerRecord | void>,
    opts: { syncDir?: boolean } = {},
  ): Promise<ContainerRecord> {
    return this.#locked(async () => {
      const old = await this.#current(ref);
      const current = (await reconcile(old, this.#env)) ?? old;
      const draft = structuredClone(current);
      const next = validate(ContainerRecordSchema, (await fn(draft)) ?? draft, 'container record');
      if (next.id !== old.id) throw new ValidationError(`a container's id cannot change (${old.id})`, 'id');
      if (next.name === old.name) {
        await this.#write(next, opts);
        return next;
      }
      const names = await this.#readNames();
      const holder = await this.#holder(names, next.name);
      if (holder !== undefined) throw new ConflictError(next.name, holder);
      await this.#writeNames({ ...names, [next.name]: next.id });
      await this.#write(next);
      const { [old.name]: _, ...rest } = names;
      await this.#writeNames({ ...rest, [next.name]: next.id });
      return next;
    });
  }

  /**
   * An update prepared outside the lock, for a change whose content is known before it may be
   * made (a start's record while its shim starts the container): `fn` applied to `base` (the record
   * as read, unchanged since), written to a temp file beside the record and fsynced. Nothing is
   * replaced until `commitStaged`; a crash before it leaves only the temp file, which repair deletes.
   */
  async stageUpdate(base: ContainerRecord, fn: (record: ContainerRecord) => ContainerRecord | void): Promise<StagedUpdate> {
    const draft = structuredClone(base);
    const next = validate(ContainerRecordSchema, fn(draft) ?? draft, 'container record');
    if (next.id !== base.id || next.name !== base.name) throw new ValidationError(`a staged update cannot change a container's id or name (${base.id})`, 'id');
    return { base: recordText(base), next, file: await stageFile(this.recordFile(base.id), recordText(next)) };
  }

  /**
   * Replaces the record with a staged update, under the lock, if the record is still the one it
   * was made from (a compare and swap: the rename alone, its content being on disk already); else
   * (changed or removed meanwhile, or its temp file deleted by another process's repair) drops it
   * and resolves undefined, for the caller to `update`.
   * Not made durable by a directory fsync, as `update`'s `syncDir: false`.
   */
  async commitStaged(staged: StagedUpdate): Promise<ContainerRecord | undefined> {
    return this.#locked(async () => {
      const now = await this.#read(staged.next.id).catch(async (e: unknown) => {
        await staged.file.abort();
        throw e;
      });
      if (!now || recordText(now) !== staged.base) {
        await staged.file.abort();
        return undefined;
      }
      try {
        await staged.file.commit();
      } catch (e) {
        // Its temp file gone: another process's repair (at its Engine.open, under this lock) took
        // it for a crash's leftover. The caller makes the change as an update instead.
        if (e instanceof NsboxError && e.code === 'ENOENT') return undefined;
        throw e;
      }
      return staged.next;
    });
  }

  /** `docker rename`. */
  rename(ref: string, name: string): Promise<ContainerRecord> {
    const to = canonicalName(name);
    return this.update(ref, (r) => ({ ...r, name: to }));
  }

  /**
   * Deletes the record and the container's directory. A running or paused container is refused
   * (checked under the lock) unless `force`: then the caller has already stopped it or gives it up.
   * Refused too while anything is mounted in the directory: the caller unmounts first. `exit`: the
   * exit its caller saw of a container whose record still says running (a foreground run's child,
   * reaped by it), left for its waiters (removed-exits.ts).
   */
  async remove(ref: string, opts: { force?: boolean; exit?: ExitStatus } = {}): Promise<ContainerRecord> {
    const { record, deleted } = await this.removeRecord(ref, opts);
    await deleted;
    return record;
  }

  /** Directory deletions that `removeRecord` left running. */
  readonly #deleting = new Set<Promise<void>>();

  /** This process's watchers of one container's removal (onRemoved). */
  readonly #removalWatchers = new Map<string, Set<() => void>>();

  /**
   * Calls `fn` the moment this process's store removes container `id`'s record (its directory
   * renamed away), without waiting for the containers directory's inotify event, which the event
   * loop reads only once it is free (a removal by another process is told by that event alone).
   * Returns the function that stops it.
   */
  onRemoved(id: string, fn: () => void): () => void {
    let set = this.#removalWatchers.get(id);
    if (!set) this.#removalWatchers.set(id, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.#removalWatchers.get(id) === set) this.#removalWatchers.delete(id);
    };
  }

  /**
   * `remove`, resolved once the record is gone (its directory renamed out of the way) and the index
   * written without it, under the lock, and the lock let go: a caller that blocks its event loop
   * next (a spawnSync of another process that takes the lock) must not hold it. The name is free
   * and no lookup finds the container any more; this process's waiters are told at the rename
   * (onRemoved). The directory's deletion (the writable layer can be large) is `deleted`, which the
   * caller awaits or hands on (`settled()` waits for every one still running). A crash before it
   * is done leaves a temp name, which repair deletes. `deleteAfter`: what must end before the
   * deletion starts (a shim still letting its clients go, which removes its files from the
   * directory as it ends).
   */
  async removeRecord(ref: string, opts: { force?: boolean; exit?: ExitStatus; deleteAfter?: Promise<unknown> } = {}): Promise<{ record: ContainerRecord; deleted: Promise<void> }> {
    const removed = await this.#locked(async () => {
      const old = await this.#current(ref);
      // Read side by side: the record's state, the mounts under its directory and the index (whose
      // failure is told after the checks, as when it was read after them). The index without the
      // entry is staged (written and fsynced) as soon as it is read, beside the checks and the
      // record's rename, which does not wait for it (see below); dropped if the checks refuse.
      const names = this.#readNames();
      const indexStaged = names.then((n) => {
        const { [old.name]: _, ...rest } = n;
        return n[old.name] === old.id ? stageFile(this.namesFile, namesText(rest)) : undefined;
      });
      indexStaged.catch(() => {
        // Awaited below, after the checks and the rename: a rejection before then is not unhandled.
      });
      const [fixed, mounted] = await Promise.all([reconcile(old, this.#env), mountsUnder(this.layout.container(old.id), this.#env.proc), names]).catch(async (e: unknown) => {
        await indexStaged.then((s) => s?.abort(), () => undefined);
        throw e;
      });
      const record = fixed ?? old;
      const refused =
        !opts.force && (record.state === 'running' || record.state === 'paused')
          ? `You cannot remove a ${record.state} container ${record.id}. Stop the container before attempting removal or force remove`
          : mounted.length > 0
            ? `container ${record.id} cannot be removed while ${mounted[0]} is mounted: unmount it first`
            : undefined;
      if (refused) {
        await indexStaged.then((s) => s?.abort(), () => undefined);
        throw new InvalidStateError(refused);
      }
      // Out of the way in one step (a rename: the record goes with its directory, so a waiter
      // told of the removal never finds the directory still there), deleted after the lock is let
      // go: the writable layer can be large. A crash in between leaves a temp name, which repair
      // deletes. On this thread: one rename of a directory, which its waiters (inotify) are told of
      // at once, not after a trip through the thread pool.
      const trash = path.join(this.layout.containersDir, `.${record.id}.tmp-rm-${randomBytes(4).toString('hex')}`);
      // Before the record goes: a waiter that finds no record finds its exit here.
      leaveExit(this.layout.containersDir, record.id, opts.exit && isRunningOrDead(record) ? { state: 'exited', ...opts.exit } : record);
      try {
        renameSync(this.layout.container(record.id), trash);
      } catch (e) {
        await indexStaged.then((s) => s?.abort(), () => undefined);
        throw e;
      }
      // Its waiters in this process, as soon as this removal yields (their reads are synchronous):
      // no lookup finds the container from the rename on.
      for (const fn of this.#removalWatchers.get(record.id) ?? []) queueMicrotask(fn);
      // The index without the entry is committed after the rename, once its temp file is on disk:
      // an entry whose record is gone counts for nothing (the file comment), so the waiters need
      // not wait for the index's fsync. An index that cannot be written leaves a stale entry, which
      // repair drops; the removal still says why it failed.
      try {
        await (await indexStaged)?.commit();
      } catch (e) {
        throw new NsboxError(`container ${record.id} was removed, but dropping its name ${record.name} from ${this.namesFile} failed (the entry counts for nothing; repair drops it): ${(e as Error).message}`, { cause: e, path: this.namesFile });
      }
      return { record, trash };
    });
    // The directory's fsync (both renames made durable) comes after the answer, beside the
    // deletion. **Relaxed:** after a power loss just after a removal was answered, the container may
    // be back as it was before (its record whole: an exited container with its name), or its index
    // entry alone (which counts for nothing), as an answered create may be missing (see #createFiles).
    const gone = opts.deleteAfter?.then(
      () => undefined,
      () => undefined,
    );
    const deleted = Promise.all([fsyncDirAsync(this.layout.containersDir), (gone ?? Promise.resolve()).then(() => removeTree(removed.trash)), sweepExits(this.layout.containersDir)]).then(() => {});
    this.#deleting.add(deleted);
    const done = () => this.#deleting.delete(deleted);
    deleted.then(done, done);
    return { record: removed.record, deleted };
  }

  /** Resolves once the directory deletions that `removeRecord` left running have ended (however they ended). */
  async settled(): Promise<void> {
    while (this.#deleting.size > 0) await Promise.allSettled([...this.#deleting]);
  }

  /**
   * Removes what a crash left: temp files, container directories without a record (a create or a
   * remove cut short) and stale index entries; the index is rebuilt from the records. Skipped (false)
   * while another process holds the lock.
   */
  async repair(): Promise<boolean> {
    const r = await tryLock(this.lockFile, async () => {
      const dir = this.layout.containersDir;
      let entries: string[];
      try {
        entries = await readdir(dir);
      } catch (err) {
        if (isCode(err, 'ENOENT')) return;
        throw err;
      }
      // A corrupt index is rebuilt from the records below; anything else (EACCES, EIO) is reported.
      const old = await this.#readNames().catch((err: unknown) => {
        if (err instanceof NsboxError && err.code === 'ERR_STORE_CORRUPT') return {} as Names;
        throw err;
      });
      const names: Names = {};
      const owners = new Map<string, ContainerRecord>();
      for (const entry of entries) {
        if (isTemp(entry)) await removeTree(path.join(dir, entry));
        if (!isId(entry)) continue;
        const files = await readdir(path.join(dir, entry)).catch((err: unknown) => {
          // Not a directory (a stray file with an id's name): nothing inside to clean.
          if (isCode(err, 'ENOTDIR', 'ENOENT')) return [] as string[];
          throw err;
        });
        for (const f of files) {
          if (isTemp(f)) await rm(path.join(dir, entry, f), { force: true });
        }
        let record: ContainerRecord | undefined;
        try {
          record = await this.#read(entry);
        } catch (err) {
          if (!(err instanceof NsboxError && err.code === 'ERR_STORE_CORRUPT')) throw err;
          // Left for a person to look at (get names the file); its name stays taken.
          for (const [n, id] of Object.entries(old)) if (id === entry) names[n] = id;
          continue;
        }
        if (!record) {
          await removeTree(path.join(dir, entry));
          continue;
        }
        const other = owners.get(record.name);
        if (other && Date.parse(other.created) <= Date.parse(record.created)) continue;
        owners.set(record.name, record);
        names[record.name] = record.id;
      }
      if (JSON.stringify(old) !== JSON.stringify(names)) await this.#writeNames(names);
    });
    return r.locked;
  }
}
