/**
 * The container store's three writes of a foreground `run --rm`, for the quick run: the record and
 * its name at create, the record at start, and the removal. The same files, under the same lock,
 * in the same order as ContainerStore (lib/engine/container-store.ts) writes them, so that any
 * other nsbox process reads them as the store's own; without the store's schema (the record is the
 * one the full path made for this request, lib/cli/quick/run-plan.ts), and without fsync: the
 * container lives only as long as this process (a crash of the machine ends it), and what a crash
 * leaves (a temp file, a directory without a record) is what the store's repair removes.
 */
import { closeSync, constants as fsc, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../../native.js';
import { generateName } from '../../engine/names.js';
import { leaveExit } from '../../engine/removed-exits.js';
import { exchangeFileSync, replaceFileSync } from '../../storage/replace-sync.js';
import { flockWhenFree } from '../../storage/lock-wait.js';

export type Record_ = Record<string, unknown> & { id: string; name: string };

let counter = 0;
/** A temp name the store's repair knows as one (`.NAME.tmp-…`). */
const tempOf = (file: string): string => join(file, '..', `.${file.slice(file.lastIndexOf('/') + 1)}.tmp-q${process.pid.toString(16)}${(counter++).toString(16)}`);

const writeAtomic = (file: string, text: string): void => replaceFileSync(file, text, tempOf(file));

const recordText = (r: Record_) => `${JSON.stringify(r, null, 2)}\n`;
const namesText = (names: Record<string, string>) => `${JSON.stringify({ version: 1, names }, null, 2)}\n`;

export class QuickStore {
  readonly dir: string;
  constructor(root: string) {
    this.dir = join(root, 'containers');
  }
  recordFile(id: string): string {
    return join(this.dir, id, 'record.json');
  }

  /** Runs `fn` holding the store's lock (containers.lock), as ContainerStore does. */
  async locked<T>(fn: () => T): Promise<T> {
    mkdirSync(this.dir, { recursive: true });
    const fd = openSync(join(this.dir, 'containers.lock'), fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o644);
    try {
      await flockWhenFree(fd, join(this.dir, 'containers.lock'), native.constants.LOCK_EX | native.constants.LOCK_NB, { deadline: Infinity });
      return fn();
    } finally {
      // Closing the fd lets go of the lock.
      closeSync(fd);
    }
  }

  /** names.json's names, or undefined when it does not read as the store writes it (the full command says why). */
  #names(): Record<string, string> | undefined {
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(join(this.dir, 'names.json'), 'utf8'));
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT' ? {} : undefined;
    }
    const names = (v as { version?: unknown; names?: unknown } | null)?.names;
    if ((v as { version?: unknown }).version !== 1 || typeof names !== 'object' || names === null || Array.isArray(names)) return undefined;
    return Object.values(names).every((x) => typeof x === 'string') ? (names as Record<string, string>) : undefined;
  }

  /** The record's name, if its record.json holds it (the store's rule for whether an index entry counts). */
  #holds(id: string, name: string): boolean {
    if (!/^[0-9a-f]{64}$/.test(id)) return false;
    try {
      return (JSON.parse(readFileSync(this.recordFile(id), 'utf8')) as { name?: unknown }).name === name;
    } catch {
      // none, or not readable as a record: the full command's store decides (the caller falls back)
      return existsAndUnreadable(this.recordFile(id));
    }
  }

  /**
   * The store's create: a free name (the one asked for, or a generated one), then the index and the
   * record. Undefined, with nothing written, when the name is taken or the index does not read:
   * the full command says so in its words. `before` runs under the lock before anything is written.
   */
  create(record: Omit<Record_, 'name'>, asked: string | undefined, before: () => void): Promise<Record_ | undefined> {
    return this.locked(() => {
      const names = this.#names();
      if (!names) return undefined;
      let name = asked;
      if (name === undefined) name = generateName((n) => names[n] !== undefined);
      else if (names[name] !== undefined && this.#holds(names[name]!, name)) return undefined;
      const full = { ...record, name } as Record_;
      // Key order as the store's schema gives it: id, name, then the rest.
      const ordered = { id: full.id, name, ...Object.fromEntries(Object.entries(full).filter(([k]) => k !== 'id' && k !== 'name')) } as Record_;
      before();
      mkdirSync(join(this.dir, full.id), { recursive: true });
      // Without the entries whose record is gone: the quick removal leaves its own (see remove).
      const kept = Object.fromEntries(Object.entries(names).filter(([, id]) => /^[0-9a-f]{64}$/.test(id) && existsSync(join(this.dir, id))));
      writeAtomic(join(this.dir, 'names.json'), namesText({ ...kept, [name]: full.id }));
      writeAtomic(this.recordFile(full.id), recordText(ordered));
      return ordered;
    });
  }

  /** The record changed by `fn` (read under the lock); false when it is gone (removed from elsewhere). */
  update(id: string, fn: (r: Record_) => void): Promise<boolean> {
    return this.locked(() => {
      let r: Record_;
      try {
        r = JSON.parse(readFileSync(this.recordFile(id), 'utf8')) as Record_;
      } catch {
        // no record (removed meanwhile) or one cut short: nothing to update
        return false;
      }
      fn(r);
      // Swapped in rather than renamed over: nothing needs this record after a crash of the
      // machine (its container died with it), and the removal's unlink of a file a rename flushed
      // waits for that write (exchangeFileSync).
      exchangeFileSync(this.recordFile(id), recordText(r), tempOf(this.recordFile(id)));
      return true;
    });
  }

  /**
   * The store's removal: the directory out of the way, then the tree. Refused while anything is
   * mounted in the directory (the tree's removal would go through it). `code`: the container's
   * exit, left for its waiters (the record still says running).
   *
   * names.json keeps the name's entry: an entry counts only while its record holds the name
   * (container-store.ts), so it is stale from the rename on, and the next quick create (or the
   * store's repair) drops it. Replacing names.json here cost a rename over an existing file, which
   * ext4 makes wait for the new file's blocks (0.5–4 ms on a shared journal).
   */
  async remove(id: string, code?: number): Promise<void> {
    const trash = join(this.dir, `.${id}.tmp-rm-q${process.pid.toString(16)}`);
    const moved = await this.locked(() => {
      try {
        readFileSync(this.recordFile(id));
      } catch {
        // removed meanwhile (rm -f from another shell)
        return false;
      }
      const mounted = mountedUnder(join(this.dir, id));
      if (mounted) throw new Error(`container ${id} cannot be removed while ${mounted} is mounted: unmount it first`);
      if (code !== undefined) leaveExit(this.dir, id, { state: 'exited', exitCode: code, signal: null });
      renameSync(join(this.dir, id), trash);
      return true;
    });
    // At once, outside the lock: a handful of entries (the record, the overlay's empty directories),
    // whose removal through the thread pool took a hop per entry.
    if (moved) removeRunTree(trash);
  }
}

/**
 * What a quick run's directory holds when its container wrote nothing to its writable layer: the
 * files and then the directories, deepest first (the volatile overlay's work directory marks
 * itself under work/work/incompat/volatile). Unlinked and removed by name, which takes a third of
 * the system calls of a walk (an lstat per entry, a readdir per directory, an rmdir refused
 * before each walk).
 */
const RUN_TREE = {
  files: ['record.json', 'work/work/incompat/volatile/dirty'],
  dirs: ['root', 'upper', 'work/work/incompat/volatile', 'work/work/incompat', 'work/work', 'work/index', 'work', ''],
};

/** `dir`'s tree removed: by RUN_TREE's names, and what that leaves (anything the container wrote) by a walk. */
export function removeRunTree(dir: string): void {
  try {
    for (const f of RUN_TREE.files) {
      try {
        unlinkSync(join(dir, f));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    for (const d of RUN_TREE.dirs) {
      try {
        rmdirSync(join(dir, d));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  } catch {
    // not empty (the container wrote to its layer) or of another shape: the walk takes the rest
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The first mount point at or below `dir` (mounts-under.ts's read, synchronously). */
function mountedUnder(dir: string): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp !== undefined && (mp === dir || mp.startsWith(`${dir}/`))) return mp;
  }
  return undefined;
}

function existsAndUnreadable(file: string): boolean {
  try {
    const fd = openSync(file, 'r');
    closeSync(fd);
    return true;
  } catch {
    // any failure to open means: not there for us
    return false;
  }
}
