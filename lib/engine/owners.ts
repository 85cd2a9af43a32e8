/**
 * Objects that go with the process that made them: an SDK process's containers, networks and
 * volumes (a test's), removed at the next engine open once that process is gone, however it ended
 * (SIGKILL included). No reaper process is needed: the store itself says who made what.
 *
 * The index is `<root>/owners/<pid>-<start time>/<kind>-<name>.json`, one directory per owning
 * process (pid + its start time, field 22 of /proc/PID/stat, since a pid is reused), one note per
 * object with what its removal needs. A note is written before its object is made and dropped after
 * the object is removed, so a kill at any point leaves at most a note for nothing, never an object
 * without a note. Engine containers, networks and volumes also carry the owner as the label
 * `nsbox.owner` (seen by inspect and `--filter label=`); the note is what the reaper reads, the label
 * only guards against removing a same-named object made since by someone else.
 *
 * Notes are written without fsync: they describe processes, and a reboot ends every owner anyway
 * (a note lost with it leaves its object for `prune`); a torn note reads as one for nothing.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ValidationError, isCode } from '../errors.js';
import { StoreLayout } from '../storage/layout.js';
import { processStat, processStatSync } from './process-start-time.js';

export const OWNER_LABEL = 'nsbox.owner';

export interface Owner {
  pid: number;
  /** Clock ticks after boot (/proc/PID/stat field 22). */
  startTime: number;
}

/** engine container, in-process SDK container, network (by name), volume (by name). */
export const OWNED_KINDS = ['container', 'sdk', 'network', 'volume'] as const;
export type OwnedKind = (typeof OWNED_KINDS)[number];

export const ownerKey = (o: Owner): string => `${o.pid}-${o.startTime}`;
const KEY = /^(\d+)-(\d+)$/;
const NOTE = new RegExp(`^(${OWNED_KINDS.join('|')})-([A-Za-z0-9][A-Za-z0-9_.-]*)\\.json$`);

let self: Owner | undefined;
/** This process as an owner. */
export function thisProcess(): Owner {
  if (!self) {
    const st = processStatSync(process.pid);
    if (!st) throw new Error(`/proc/${process.pid}/stat: this process is not in /proc`);
    self = { pid: process.pid, startTime: st.startTime };
  }
  return self;
}

/** The labels an owned object carries. */
export const ownerLabels = (o: Owner): Record<string, string> => ({ [OWNER_LABEL]: ownerKey(o) });

/** The owner a `nsbox.owner` label names, if any. */
export function ownerOf(labels: Record<string, string> | undefined): Owner | undefined {
  const m = KEY.exec(labels?.[OWNER_LABEL] ?? '');
  return m ? { pid: Number(m[1]), startTime: Number(m[2]) } : undefined;
}

/** Whether the process is still the one that owns: same pid, same start, not a zombie. */
export async function ownerAlive(o: Owner, proc = '/proc'): Promise<boolean> {
  const st = await processStat(o.pid, proc);
  return st !== undefined && st.state !== 'Z' && st.startTime === o.startTime;
}

export interface OwnedNote {
  kind: OwnedKind;
  name: string;
  data: Record<string, unknown>;
}

export class OwnerIndex {
  readonly dir: string;
  constructor(root: string) {
    this.dir = new StoreLayout(root).ownersDir;
  }

  /** The file that says `kind` `name` is `owner`'s. */
  #note(owner: Owner, kind: OwnedKind, name: string): string {
    const file = `${kind}-${name}.json`;
    if (!NOTE.test(file)) throw new ValidationError(`invalid ${kind} name ${JSON.stringify(name)}: must be [A-Za-z0-9][A-Za-z0-9_.-]*`, 'name');
    return path.join(this.dir, ownerKey(owner), file);
  }

  /** Notes (before the object is made) that `owner` makes `kind` `name`; `data`: what its removal needs. Rewritten as it changes. */
  note(kind: OwnedKind, name: string, data: Record<string, unknown> = {}, owner: Owner = thisProcess()): void {
    const file = this.#note(owner, kind, name);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(data), { mode: 0o600 });
    renameSync(tmp, file);
  }

  /** Drops the note once the object is gone. */
  forget(kind: OwnedKind, name: string, owner: Owner = thisProcess()): void {
    const file = this.#note(owner, kind, name);
    try {
      unlinkSync(file);
    } catch (e) {
      // never noted (made before this process owned things) or reaped already
      if (!isCode(e, 'ENOENT')) throw e;
    }
    // An owner with nothing left leaves no directory (only its own process writes there).
    try {
      rmdirSync(path.dirname(file));
    } catch (e) {
      // other notes are left, or it is gone already
      if (!isCode(e, 'ENOTEMPTY', 'EEXIST', 'ENOENT')) throw e;
    }
  }

  /** Every owner with notes. A missing index is none. */
  owners(): Owner[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      // no process ever owned anything in this store
      if (isCode(e, 'ENOENT')) return [];
      throw e;
    }
    return names.flatMap((n) => {
      const m = KEY.exec(n);
      return m ? [{ pid: Number(m[1]), startTime: Number(m[2]) }] : [];
    });
  }

  /** The owners whose process is gone. */
  async deadOwners(proc = '/proc'): Promise<Owner[]> {
    const out: Owner[] = [];
    for (const o of this.owners()) if (!(await ownerAlive(o, proc))) out.push(o);
    return out;
  }

  /** What `owner` noted, in OWNED_KINDS order (containers before the networks and volumes they use). */
  notes(owner: Owner): OwnedNote[] {
    const dir = path.join(this.dir, ownerKey(owner));
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      // reaped by another engine meanwhile
      if (isCode(e, 'ENOENT')) return [];
      throw e;
    }
    const out: OwnedNote[] = [];
    for (const n of names) {
      const m = NOTE.exec(n);
      if (!m) continue;
      let data: Record<string, unknown> = {};
      try {
        data = JSON.parse(readFileSync(path.join(dir, n), 'utf8')) as Record<string, unknown>;
      } catch (e) {
        // a note torn by a crash of the machine: its object is found by name alone
        if (!isCode(e, 'ENOENT') && !(e instanceof SyntaxError)) throw e;
      }
      out.push({ kind: m[1] as OwnedKind, name: m[2]!, data });
    }
    return out.sort((a, b) => OWNED_KINDS.indexOf(a.kind) - OWNED_KINDS.indexOf(b.kind));
  }

  /** The owner's directory, once its objects are gone (leftover temp files with it). */
  drop(owner: Owner): void {
    const dir = path.join(this.dir, ownerKey(owner));
    try {
      rmdirSync(dir);
    } catch (e) {
      if (isCode(e, 'ENOENT')) return;
      // only torn temp files can be left: every note was forgotten
      if (!isCode(e, 'ENOTEMPTY')) throw e;
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** The lock reapers hold (never the owners: noting is per process and needs none). */
  get lockFile(): string {
    return path.join(this.dir, '.reap.lock');
  }
}
