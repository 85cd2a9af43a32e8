/**
 * docker's volumes, as directories of the store: `-v NAME:/path` (a named volume, kept until
 * removed) and `-v /path` or an image's VOLUME (an anonymous one, removed with `rm -v` or by a
 * volume prune). Each is `<root>/volumes/<name>/_data`, docker's layout, bind-mounted into the
 * container; `meta.json` beside it says whether it is anonymous. An empty volume gets the image's
 * files at its mount point when a container is created with it (volume-copy-up.ts), as docker's.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { ValidationError } from '../errors.js';
import { isCode } from '../storage/errors.js';

export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** A volume a container asked for: named, or anonymous (no name: one is made at create). */
export const VolumeRequestSchema = z
  .object({
    name: z.string().regex(VOLUME_NAME, 'a volume name is [a-zA-Z0-9][a-zA-Z0-9_.-]+').optional(),
    target: z.string().startsWith('/', 'a volume is mounted at an absolute path'),
    readonly: z.boolean().default(false),
    /** docker's `nocopy`: a new (empty) volume does not get the image's files at the target. */
    noCopy: z.boolean().optional(),
  })
  .strict();
export type VolumeRequest = z.input<typeof VolumeRequestSchema>;

/** A volume a container uses, as its record keeps it. */
export const VolumeUseSchema = z.object({ name: z.string().regex(VOLUME_NAME), target: z.string(), anonymous: z.boolean() }).strict();
export type VolumeUse = z.output<typeof VolumeUseSchema>;

const MetaSchema = z.object({ anonymous: z.boolean(), created: z.string(), labels: z.record(z.string(), z.string()).optional() }).loose();

export type VolumeSpec = { kind: 'bind'; source: string; target: string; readonly: boolean } | { kind: 'volume'; name?: string; target: string; readonly: boolean; noCopy?: boolean };

/**
 * A `-v` / `Binds` entry as docker reads it: `/ctr` (anonymous volume), `NAME:/ctr[:opts]` (named
 * volume), `/host:/ctr[:opts]` (bind; the CLI also takes `./rel` and `~/rel`, resolved by it).
 */
export function parseVolumeSpec(spec: string): VolumeSpec {
  const parts = spec.split(':');
  const bad = (why: string) => new ValidationError(`invalid volume specification: '${spec}': ${why}`, 'volume');
  if (parts.length === 1) {
    if (!spec.startsWith('/')) throw bad('a volume is mounted at an absolute path');
    return { kind: 'volume', target: spec, readonly: false };
  }
  const [source = '', target = '', mode = '', ...rest] = parts;
  if (rest.length) throw bad('too many colons');
  if (!target.startsWith('/')) throw bad('the mount point must be an absolute path');
  const opts = mode.split(',').filter(Boolean);
  const unknown = opts.find((o) => !['ro', 'rw', 'z', 'Z', 'rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave', 'nocopy'].includes(o));
  if (unknown) throw bad(`unknown option ${unknown}`);
  const readonly = opts.includes('ro');
  if (/^[/.~]/.test(source)) return { kind: 'bind', source, target, readonly };
  if (!VOLUME_NAME.test(source)) throw bad(`"${source}" is not a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+) nor a host path`);
  return { kind: 'volume', name: source, target, readonly, ...(opts.includes('nocopy') ? { noCopy: true } : {}) };
}

export class Volumes {
  readonly dir: string;
  constructor(root: string) {
    this.dir = join(root, 'volumes');
  }

  /** The directory a container binds for volume `name`. */
  dataOf(name: string): string {
    return join(this.dir, name, '_data');
  }

  isEmpty(name: string): boolean {
    try {
      return readdirSync(this.dataOf(name)).length === 0;
    } catch (e) {
      if (isCode(e, 'ENOENT', 'ENOTDIR')) return false;
      throw e;
    }
  }

  /**
   * The volume `name` (made when absent, with `labels`), or a new anonymous one when no name is
   * given (`anonymousName`: the name to give it).
   */
  ensure(name?: string, opts: { labels?: Record<string, string>; anonymousName?: string } = {}): { name: string; anonymous: boolean; data: string } {
    const volume = name ?? opts.anonymousName ?? randomBytes(32).toString('hex');
    const data = this.dataOf(volume);
    if (!existsSync(data)) {
      mkdirSync(data, { recursive: true, mode: 0o755 });
      const labels = opts.labels && Object.keys(opts.labels).length ? { labels: opts.labels } : {};
      writeFileSync(join(this.dir, volume, 'meta.json'), JSON.stringify({ anonymous: name === undefined, created: new Date().toISOString(), ...labels }));
    }
    return { name: volume, anonymous: this.isAnonymous(volume), data };
  }

  isAnonymous(name: string): boolean {
    return this.info(name)?.anonymous ?? false;
  }

  /** Whether it is anonymous and when it was made; undefined for no such volume. */
  info(name: string): { name: string; anonymous: boolean; created: string; mountpoint: string; labels: Record<string, string> } | undefined {
    if (!VOLUME_NAME.test(name) || !existsSync(this.dataOf(name))) return undefined;
    try {
      const meta = MetaSchema.parse(JSON.parse(readFileSync(join(this.dir, name, 'meta.json'), 'utf8')));
      return { name, anonymous: meta.anonymous, created: meta.created, mountpoint: this.dataOf(name), labels: meta.labels ?? {} };
    } catch (e) {
      // A volume directory made by hand (no meta.json, or not ours): a named volume of unknown age.
      if (!isCode(e, 'ENOENT') && !(e instanceof SyntaxError) && !(e instanceof z.ZodError)) throw e;
      return { name, anonymous: false, created: new Date(0).toISOString(), mountpoint: this.dataOf(name), labels: {} };
    }
  }

  list(): string[] {
    try {
      return readdirSync(this.dir).filter((n) => VOLUME_NAME.test(n) && existsSync(this.dataOf(n)));
    } catch (e) {
      // No volume was ever made.
      if (isCode(e, 'ENOENT')) return [];
      throw e;
    }
  }

  remove(name: string): void {
    if (!VOLUME_NAME.test(name)) throw new ValidationError(`invalid volume name ${JSON.stringify(name)}`, 'volume');
    rmSync(join(this.dir, name), { recursive: true, force: true });
  }
}
