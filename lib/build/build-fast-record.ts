/**
 * The fast record of a `nsbox build` command line (issue 16): what the native launcher
 * (cpp/launcher/main.cc, the `nsbox` users run) checks to answer a fully cached build whose image
 * is already in place without starting Node, and the exact bytes it then prints.
 *
 * Such a build changes nothing (docker's legacy builder: the same id, the tags already there;
 * build.ts and the quick build leave the image, its provenance and the journal as they are), so
 * all there is to do is to know that nothing the build read has changed, touch the cache records'
 * use times, write --iidfile and print. The record is made for C: a line-based text with
 * length-prefixed strings, one line per check, in `<root>/build-plans/<fnv64 of the key>.fast`:
 *
 *   nsbox-fast 1
 *   key LEN:BYTES           the command line, cwd, euid and environment (fastKey), compared whole
 *   made MS                 when it was written (a record older than a day is not used)
 *   notty 0|1               1: only when fd 2 is not a terminal (else the live view, the full command's)
 *   L LEN:PATH DEV INO MODE UID GID SIZE MTIME_NS CTIME_NS    lstat gives exactly this
 *   S LEN:PATH ...          the same through links (the context's top, the Dockerfile)
 *   A LEN:PATH              absent (ENOENT or ENOTDIR)
 *   D LEN:PATH              a directory (lstat)
 *   F LEN:PATH              a regular file (stat): a blob, a layer's marker
 *   H LEN:PATH SIZE FNV     its bytes: that many, FNV-1a 64 (hex); images.json, cache records, git files
 *   T LEN:PATH              touched at the end (a cache record's use time, as a hit does)
 *   I LEN:PATH LEN:BYTES    --iidfile, written at the end
 *   O FD LEN:BYTES          printed at the end, in order
 *   end
 *
 * Why each holds: the context's every entry by lstat (a new or removed entry changes its
 * directory's times; a content change, the file's ctime), taken before the build and only when
 * none changed within the clock tick (build-plan.ts's racy rule); images.json by content, checked
 * here to have every tag at the image with its journal ending there (so unchanged content: the
 * same tags, images and bases); each cache record's text as the build read it; the git files
 * gitRevision read; every blob and layer the build stood on; the CLI bundles by lstat (another
 * nsbox, another record). FNV is no defence against someone who can write those files, who can
 * change the image itself anyway.
 */
import { lstatSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { packagePath } from '../package-root.js';
import { StoreLayout } from '../storage/layout.js';
import { gitRevision, type GitRead } from './build-provenance.js';
import { planDir, type BuildPlan, type FingerprintEntry, type PlanEvent } from './build-plan.js';
import { legacyProgress, shortBuildId } from './legacy-output.js';
import type { BuildProgress } from './stage-state.js';

const HEADER = 'nsbox-fast 1';
/** Variables that change a build's result or where it is kept; the launcher selects the same. */
const keyVar = (k: string) => k.startsWith('NSBOX_') || k.startsWith('XDG_') || k === 'SOURCE_DATE_EPOCH' || k === 'DOCKER_CONFIG' || k === 'HOME';

/** The key: the header, euid, cwd, the arguments (from `build`), the variables sorted by name; NUL-separated. */
export function fastKey(args: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd(), euid = process.geteuid?.() ?? 0): string {
  const vars = Object.keys(env).filter(keyVar).sort().map((k) => `${k}=${env[k]}`);
  return [HEADER, `euid=${euid}`, `cwd=${cwd}`, `argc=${args.length}`, ...args, ...vars].join('\0');
}

/** FNV-1a 64 of `bytes`, 16 hex digits (in 32-bit halves: the prime is 2^40 + 0x1b3). */
export function fnv64(bytes: Uint8Array): string {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (const b of bytes) {
    lo = (lo ^ b) >>> 0;
    const m = lo * 0x1b3;
    hi = (Math.imul(hi, 0x1b3) + Math.floor(m / 0x100000000) + (lo << 8)) >>> 0;
    lo = m >>> 0;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

export const fastFile = (root: string, key: string) => path.join(planDir(root), `${fnv64(Buffer.from(key))}.fast`);

/** What a fully cached build prints: stdout's and stderr's chunks in order (the quick build's and the record's). */
export function warmOutput(events: PlanEvent[], quiet: boolean, id: string, tags: Array<{ familiar: string }>): Array<{ fd: 1 | 2; text: string }> {
  const chunks: Array<{ fd: 1 | 2; text: string }> = [];
  let text = '';
  const out = legacyProgress((s) => (text += s), quiet);
  for (const e of events) {
    if (e.type === 'warning') {
      if (text) chunks.push({ fd: 1, text });
      text = '';
      chunks.push({ fd: 2, text: `${e.message}\n` });
    } else out(e as BuildProgress);
  }
  if (quiet) text += `${id}\n`;
  else {
    text += `Successfully built ${shortBuildId(id)}\n`;
    for (const t of tags) text += `Successfully tagged ${t.familiar}\n`;
  }
  chunks.push({ fd: 1, text });
  return chunks;
}

const str = (s: string | Buffer) => `${Buffer.byteLength(s)}:${s}`;
const isDigest = (s: string) => /^sha256:[0-9a-f]{64}$/.test(s);

type Db = { refs?: Record<string, string>; images?: Record<string, { config?: string; index?: string }>; journal?: Record<string, Array<{ digest: string }>> };

/** Whether images.json's text has the image at `digest` under every name, each name's journal ending there (a build then changes nothing). */
export function imageInPlace(dbText: string, digest: string, config: string, names: string[]): boolean {
  const db = JSON.parse(dbText) as Db;
  const rec = db.images?.[digest];
  if (!rec || rec.config !== config || typeof rec.index !== 'string') return false;
  return names.every((n) => db.refs?.[n] === digest && (n.includes('@') || db.journal?.[n]?.at(-1)?.digest === digest));
}

export interface FastInput {
  root: string;
  /** The context directory, resolved. */
  context: string;
  /** The command line from `build` on, as the launcher will see it. */
  args: string[];
  plan: BuildPlan;
  /** The fingerprint's entries (build-plan.ts), read before the build. */
  entries: FingerprintEntry[];
  /** The manifest digest the build gave (sealed). */
  manifestDigest: string;
  quiet: boolean;
  iidfile?: string | undefined;
  tags: Array<{ familiar: string }>;
}

/**
 * Writes the fast record for `input.args` when the image is in place as the next build would leave
 * it, else removes any old one. Best effort: a record not written only means the next build starts Node.
 */
export async function writeFastRecord(input: FastInput): Promise<void> {
  const file = fastFile(input.root, fastKey(input.args));
  try {
    const lines = await recordLines(input);
    if (!lines) {
      dropFast(file);
      return;
    }
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, lines.join(''), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // a cache: the next build of this command line runs in Node and writes it again
    try {
      dropFast(file);
    } catch {
      // a store we cannot write: no record there either
    }
  }
}

const dropFast = (file: string) => rmSync(file, { force: true });

async function recordLines(input: FastInput): Promise<string[] | undefined> {
  const { root, plan, manifestDigest } = input;
  const layout = new StoreLayout(root);
  const dbText = readFileSync(layout.imagesFile, 'utf8');
  const index = (JSON.parse(dbText) as Db).images?.[manifestDigest]?.index;
  if (!index || !imageInPlace(dbText, manifestDigest, plan.image.configDigest, plan.image.names)) return undefined;
  const reads: GitRead[] = [];
  const git = await gitRevision(input.context, reads);
  if (JSON.stringify(git) !== JSON.stringify(plan.git) || reads.some((r) => r.found === 'other')) return undefined;
  const lines = [`${HEADER}\n`, `key ${str(fastKey(input.args))}\n`, `made ${Date.now()}\n`, `notty ${input.quiet ? 0 : 1}\n`];
  const stat = (kind: 'L' | 'S', file: string, st: BigIntStats) =>
    lines.push(`${kind} ${str(file)} ${st.dev} ${st.ino} ${st.mode} ${st.uid} ${st.gid} ${st.size} ${st.mtimeNs} ${st.ctimeNs}\n`);
  const hashed = (file: string, bytes: Buffer) => lines.push(`H ${str(file)} ${bytes.length} ${fnv64(bytes)}\n`);
  for (const e of input.entries) stat(e.follow ? 'S' : 'L', e.file, e.st);
  for (const r of reads) {
    if (r.found === 'absent') lines.push(`A ${str(r.file)}\n`);
    else if (r.found === 'dir') lines.push(`D ${str(r.file)}\n`);
    else if (r.found === 'text') hashed(r.file, Buffer.from(r.text));
  }
  // this nsbox: another build of it (another bundle) keeps records of its own
  for (const f of ['nsbox.cjs', 'quick-build.cjs']) {
    const p = packagePath('dist', 'cli-bundle', f);
    stat('L', p, lstatSync(p, { bigint: true }));
  }
  hashed(layout.imagesFile, Buffer.from(dbText));
  const files = new Set<string>();
  const blob = (d: string) => isDigest(d) && files.add(layout.blob(d));
  const chain = (c: string) => isDigest(c) && files.add(layout.layerMarker(c));
  for (const img of plan.images) {
    blob(img.digest);
    blob(img.config);
    img.chains.forEach(chain);
  }
  for (const c of plan.cache) {
    hashed(c.file, Buffer.from(c.text));
    const layer = (JSON.parse(c.text) as { layer: { digest: string; chainId: string } | null }).layer;
    if (layer) {
      blob(layer.digest);
      chain(layer.chainId);
    }
  }
  plan.chains.forEach(chain);
  plan.image.layers.forEach((l) => blob(l.digest));
  [plan.image.configDigest, manifestDigest, index].forEach(blob);
  for (const f of files) {
    if (!statSync(f).isFile()) return undefined;
    lines.push(`F ${str(f)}\n`);
  }
  for (const c of plan.cache) lines.push(`T ${str(c.file)}\n`);
  if (input.iidfile !== undefined) lines.push(`I ${str(input.iidfile)} ${str(plan.image.configDigest)}\n`);
  for (const c of warmOutput(plan.events, input.quiet, plan.image.configDigest, input.tags)) lines.push(`O ${c.fd} ${str(c.text)}\n`);
  lines.push('end\n');
  return lines;
}
