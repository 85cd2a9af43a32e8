/**
 * The identity of a reusable container (testcontainers' withReuse): a sha256 over everything it is
 * created from, so that a run asking for the same container finds it and any change makes another.
 * Keys are sorted before hashing (option order means nothing); files count by their content (a
 * Buffer's bytes, a host file's bytes, a host directory's tree: names, types, modes, contents,
 * link targets), never by their path alone, so an edited config file gives a new container.
 */
import { createHash, type Hash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** The label a reusable container carries its hash in. */
export const REUSE_HASH_LABEL = 'nsbox.reuse-hash';

/** JSON with every object's keys sorted; undefined members left out, as JSON.stringify does. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  if (v instanceof RegExp) return JSON.stringify(String(v));
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

/** A host file or directory, hashed by what is in it (a directory: its entries in name order). */
function hashPath(h: Hash, path: string, name: string): void {
  const st = lstatSync(path);
  h.update(`${JSON.stringify(name)} ${st.mode.toString(8)} `);
  if (st.isSymbolicLink()) h.update(`-> ${readlinkSync(path)}\n`);
  else if (st.isDirectory()) {
    h.update('dir\n');
    for (const e of readdirSync(path).sort()) hashPath(h, join(path, e), `${name}/${e}`);
  } else if (st.isFile()) {
    h.update(`${st.size}\n`);
    h.update(readFileSync(path));
  } else h.update(`rdev ${st.rdev}\n`);
}

/** The sha256 of a `files` source's content (hex). */
export function contentDigest(source: string | Buffer): string {
  const h = createHash('sha256');
  if (Buffer.isBuffer(source)) h.update(source);
  else hashPath(h, source, '.');
  return h.digest('hex');
}

/** The hash of a container's creation material (already reduced to plain data), hex. */
export function reuseHash(material: unknown): string {
  return createHash('sha256').update(canonicalJson(material)).digest('hex');
}
