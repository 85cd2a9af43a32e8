/**
 * Where COPY and ADD read from: the build context (a directory, with `.dockerignore` applied: an
 * ignored path is not there) or a previous stage's root (`--from=`, read through its layers). Both
 * are read without following a symbolic link anywhere: links are copied as links, so nothing
 * outside the tree can be reached. Also the sources' glob matching and their content digest (the
 * cache key part of COPY: names, bytes, modes, owners; not times).
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { NotFoundError, isCode } from '../errors.js';
import { DockerIgnore } from './dockerignore.js';
import type { FileDigests } from './file-digests.js';
import { cleanRel, type LayeredRoot } from './layered-root.js';

export interface SourceTree {
  /** For messages: 'build context' or 'stage build'. */
  readonly what: string;
  /** Whether files keep their owners when copied without --chown (a stage's do; the context's become 0:0). */
  readonly keepsOwners: boolean;
  lstat(rel: string): Stats | undefined;
  readdir(rel: string): string[];
  readlink(rel: string): string;
  /** The real file to read `rel`'s bytes from. */
  file(rel: string): string;
  /** The directory `file(rel)` is `rel` below, when the tree is one (the context): its files' digests are then remembered by stat. */
  readonly digestRoot?: string;
}

export class ContextDir implements SourceTree {
  readonly what = 'build context';
  readonly keepsOwners = false;
  readonly ignore: DockerIgnore;
  readonly digestRoot: string;
  constructor(
    readonly dir: string,
    ignoreText?: string,
  ) {
    let text = ignoreText;
    if (text === undefined) {
      try {
        text = readFileSync(path.join(dir, '.dockerignore'), 'utf8');
      } catch (err) {
        // ENOENT: the context has no .dockerignore
        if (!isCode(err, 'ENOENT')) throw err;
        text = '';
      }
    }
    this.ignore = new DockerIgnore(text);
    this.digestRoot = dir;
  }
  lstat(rel: string): Stats | undefined {
    rel = cleanRel(rel);
    if (rel !== '' && this.ignore.ignores(rel)) {
      // an ignored directory stays when a `!` pattern may re-include something inside it
      if (!this.ignore.hasExclusions) return undefined;
      const st = this.#lstat(rel);
      return st?.isDirectory() ? st : undefined;
    }
    return this.#lstat(rel);
  }
  /** Each path's lstat, taken once: the matching, the key and the copy all ask (the context does not change during a build). */
  readonly #stats = new Map<string, Stats | undefined>();
  #lstat(rel: string): Stats | undefined {
    if (this.#stats.has(rel)) return this.#stats.get(rel);
    let st: Stats | undefined;
    try {
      st = lstatSync(this.file(rel));
    } catch (err) {
      // nothing there (ENOENT), or a file where a directory would be on the way (ENOTDIR)
      if (!isCode(err, 'ENOENT', 'ENOTDIR')) throw err;
    }
    this.#stats.set(rel, st);
    return st;
  }
  readdir(rel: string): string[] {
    rel = cleanRel(rel);
    return readdirSync(this.file(rel))
      .filter((n) => this.lstat(rel ? `${rel}/${n}` : n) !== undefined)
      .sort();
  }
  readlink(rel: string): string {
    return readlinkSync(this.file(rel));
  }
  file(rel: string): string {
    rel = cleanRel(rel);
    return rel === '' ? this.dir : path.join(this.dir, rel);
  }
}

export class StageTree implements SourceTree {
  readonly keepsOwners = true;
  constructor(
    readonly what: string,
    readonly root: LayeredRoot,
  ) {}
  lstat(rel: string): Stats | undefined {
    return this.root.lookup(rel)?.st;
  }
  readdir(rel: string): string[] {
    return this.root.readdir(rel);
  }
  readlink(rel: string): string {
    return this.root.readlink(rel);
  }
  file(rel: string): string {
    const f = this.root.lookup(rel);
    if (!f) throw new NotFoundError(`${this.what}: /${cleanRel(rel)} does not exist`);
    return f.abs;
  }
}

/**
 * `base` without what COPY's `--exclude` patterns match: a path below a directory source is
 * matched relative to that directory, a file source by its name; the sources themselves (and
 * the directories above them) stay when they are directories.
 */
export class ExcludingTree implements SourceTree {
  constructor(
    readonly base: SourceTree,
    readonly items: readonly string[],
    readonly patterns: DockerIgnore,
  ) {}
  get what(): string {
    return this.base.what;
  }
  get keepsOwners(): boolean {
    return this.base.keepsOwners;
  }
  get digestRoot(): string | undefined {
    return this.base.digestRoot;
  }
  #excluded(rel: string): boolean {
    rel = cleanRel(rel);
    for (const item of this.items) {
      if (rel === item) return this.base.lstat(item)?.isDirectory() ? false : this.patterns.ignores(path.posix.basename(item));
      if (item === '' || rel.startsWith(`${item}/`)) return this.patterns.ignores(item === '' ? rel : rel.slice(item.length + 1));
    }
    return false;
  }
  lstat(rel: string): Stats | undefined {
    return this.#excluded(rel) ? undefined : this.base.lstat(rel);
  }
  readdir(rel: string): string[] {
    rel = cleanRel(rel);
    return this.base.readdir(rel).filter((n) => !this.#excluded(rel ? `${rel}/${n}` : n));
  }
  readlink(rel: string): string {
    return this.base.readlink(rel);
  }
  file(rel: string): string {
    return this.base.file(rel);
  }
}

const WILDCARD = /[*?[]/;

function globSegment(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = seg.slice(i + 1, end);
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < seg.length) re += seg[++i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * The paths a COPY source names in `tree`: itself, or with `*`, `?` and `[…]`, every match (sorted).
 * A source that matches nothing is docker's "file not found in build context or excluded by
 * .dockerignore" (NotFoundError).
 */
export function matchSources(tree: SourceTree, source: string): string[] {
  const rel = cleanRel(source);
  if (!WILDCARD.test(rel)) {
    if (!tree.lstat(rel)) throw new NotFoundError(`failed to compute cache key: "/${rel}" not found: not found in the ${tree.what}${tree.what === 'build context' ? ' or excluded by .dockerignore' : ''}`, { path: `/${rel}` });
    return [rel];
  }
  let found = [''];
  for (const seg of rel.split('/')) {
    const next: string[] = [];
    for (const base of found) {
      if (!WILDCARD.test(seg)) {
        const p = base ? `${base}/${seg}` : seg;
        if (tree.lstat(p)) next.push(p);
        continue;
      }
      const st = tree.lstat(base);
      if (!st?.isDirectory()) continue;
      const re = globSegment(seg);
      for (const n of tree.readdir(base)) if (re.test(n)) next.push(base ? `${base}/${n}` : n);
    }
    found = next;
  }
  if (found.length === 0) throw new NotFoundError(`failed to compute cache key: no source files were specified: "${source}" matches nothing in the ${tree.what}`, { path: source });
  return found.sort();
}

/**
 * sha256 over the sources' names, types, modes, owners (when kept), sizes and contents (each
 * file's own sha256, from `digests` when it knows the file unchanged) or link targets.
 */
export function sourcesDigest(tree: SourceTree, items: string[], digests?: FileDigests): string {
  const h = createHash('sha256');
  const add = (rel: string, name: string) => {
    const st = tree.lstat(rel);
    if (!st) return;
    const owners = tree.keepsOwners ? `${st.uid}:${st.gid}` : '';
    h.update(`${name}\0${st.mode.toString(8)}\0${owners}\0`);
    if (st.isDirectory()) {
      for (const n of tree.readdir(rel)) add(rel ? `${rel}/${n}` : n, `${name}/${n}`);
    } else if (st.isSymbolicLink()) h.update(`->${tree.readlink(rel)}\0`);
    else if (st.isFile()) {
      const root = tree.digestRoot;
      const hex = digests && root !== undefined ? digests.digest(root, cleanRel(rel), st) : createHash('sha256').update(readFileSync(tree.file(rel))).digest('hex');
      h.update(`${st.size}\0${hex}\0`);
    } else h.update(`${st.rdev}\0`);
  };
  for (const item of items) add(item, item);
  return `sha256:${h.digest('hex')}`;
}
