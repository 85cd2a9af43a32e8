/**
 * ADD of http(s) URLs, as BuildKit does it: each URL fetched into a private directory under the
 * name the server gives (Content-Disposition) or the URL path's last segment, mode 0600, its
 * mtime the response's Last-Modified when there is one; `--checksum=sha256:…` verified before
 * anything is written to a layer; never unpacked. The files are then a source tree like the
 * context, so the step's cache key is their content.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, utimesSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { NsboxError, ValidationError } from '../errors.js';
import { loadGot } from '../load-got.js';
import { ContextDir, type SourceTree } from './source-tree.js';

export const isHttpUrl = (s: string) => /^https?:\/\//i.test(s);

/** A git source as BuildKit tells one: git@…, git://, or an http(s)/ssh URL whose path ends .git (a #ref may follow). */
export const isGitUrl = (s: string) => /^git@[^:]+:/.test(s) || /^(git|ssh):\/\//i.test(s) || (/^https?:\/\//i.test(s) && /\.git(#.*)?$/.test(s));

function fileNameOf(url: URL, disposition: string | undefined): string {
  const m = disposition ? /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition) : null;
  const fromHeader = m ? path.posix.basename(decodeURIComponent(m[1]!)) : '';
  if (fromHeader && fromHeader !== '.' && fromHeader !== '..') return fromHeader;
  const base = path.posix.basename(decodeURIComponent(url.pathname));
  if (!base || base === '.' || base === '..' || url.pathname.endsWith('/')) return '__unnamed__';
  return base;
}

export interface Downloaded {
  tree: SourceTree;
  /** The names in `tree`, in the order of the URLs. */
  items: string[];
}

/** Fetches `urls` into `dir` (made here; the caller removes it). */
export async function downloadUrls(urls: string[], dir: string, checksum: string | undefined): Promise<Downloaded> {
  if (checksum !== undefined && !/^sha256:[0-9a-f]{64}$/.test(checksum)) throw new ValidationError(`--checksum=${checksum}: expected sha256:<64 hex digits>`, 'dockerfile');
  if (checksum !== undefined && urls.length !== 1) throw new ValidationError('ADD --checksum needs exactly one URL source', 'dockerfile');
  const { got } = await loadGot();
  const items: string[] = [];
  for (const [i, u] of urls.entries()) {
    const url = new URL(u);
    // each URL in its own directory: two URLs may give the same name
    const sub = String(i);
    mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o700 });
    const stream = got.stream(url, { retry: { limit: 0 }, timeout: { response: 60_000 } });
    let headers: Record<string, string | string[] | undefined> = {};
    stream.on('response', (r: { headers: Record<string, string | string[] | undefined> }) => (headers = r.headers));
    const tmp = path.join(dir, `${sub}.download`);
    const hash = createHash('sha256');
    stream.on('data', (d: Buffer) => hash.update(d));
    try {
      await pipeline(stream, createWriteStream(tmp, { mode: 0o600 }));
    } catch (e) {
      throw new NsboxError(`failed to load cache key: failed to fetch ${u}: ${(e as Error).message}`, { code: 'ERR_BUILD', cause: e });
    }
    const digest = `sha256:${hash.digest('hex')}`;
    if (checksum !== undefined && digest !== checksum) {
      await rm(tmp, { force: true });
      throw new NsboxError(`digest mismatch for ${u}: ${checksum} was expected, the content is ${digest}`, { code: 'ERR_BUILD' });
    }
    const name = fileNameOf(url, typeof headers['content-disposition'] === 'string' ? headers['content-disposition'] : undefined);
    const file = path.join(dir, sub, name);
    await rename(tmp, file);
    const lm = typeof headers['last-modified'] === 'string' ? Date.parse(headers['last-modified']) : NaN;
    if (!Number.isNaN(lm)) utimesSync(file, lm / 1000, lm / 1000);
    items.push(`${sub}/${name}`);
  }
  return { tree: new ContextDir(dir, ''), items };
}
