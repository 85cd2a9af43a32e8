/**
 * The plan of the quick `nsbox build` (lib/cli/quick/build.ts): what a build of the full CLI did
 * for one request, kept in `<root>/build-plans/<hash>.json` so that the next build of the same
 * request, when nothing it read has changed, writes the same image without the parser, the cache
 * keys' reads, zod or the main bundle (issue 16: a fully cached build within 150 ms of Node's start).
 *
 * What a build reads, and how the quick build checks each is unchanged:
 * - the request (context, Dockerfile, tags, build args, labels, target, network) and what else
 *   names the store and the build: the plan's key, kept whole in the file and compared;
 * - the context and the Dockerfile: a fingerprint of every entry's lstat (path, mode, owner,
 *   device, inode, size, mtime, ctime in ns), taken before the build; a build whose context had an entry
 *   changed just before writes no plan (a write in the same clock tick would leave the times as
 *   they were, as file-digests.ts's racy rule; see RACY_MS);
 * - the git revision above the context (provenance): read again;
 * - the images FROM and --from name: the tag still names the same manifest, with the same names;
 * - each build cache record the build hit or wrote: the same text (so the same layer and time),
 *   its layer's blob and chain still in the store, as a hit needs.
 * With all of that unchanged, the full build would hit every step and write the same image; the
 * quick build then does what the full build's end does (the provenance sealed with this build's
 * times, the blobs, the image record and tags) and prints what it would print (`events`: the
 * build's progress as a fully cached build gives it).
 *
 * Written without fsync, as run-plans: a plan that does not read sends the build to the full CLI,
 * which writes it again. Plans older than a day are not used (the full build then also refreshes
 * the remembered file digests' use times, file-digests.ts).
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { ProvenanceInput } from '../image/provenance-seal.js';
import type { BuildProgress } from './stage-state.js';

const VERSION = 2;
/** A plan older than this is not used. */
export const PLAN_MAX_AGE_MS = 86_400_000;
/**
 * An entry changed this recently (ms) before the fingerprint makes the build write no plan: a
 * change in the same clock tick would leave its ctime as it was. Two seconds as file-digests.ts
 * allows for; on the file systems whose times come from the kernel's clock tick (a few ms: ext4,
 * xfs, btrfs, tmpfs), FINE_RACY_MS, so that a build soon after an edit still keeps its plan.
 */
const RACY_MS = 2_000;
const FINE_RACY_MS = 100;
const FINE_TIMES = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994]);
const MAX_PLANS = 256;

// Replaced by tools/bundle-cli.mjs with the build's id (the same in the main and the quick bundles).
declare const __NSBOX_BUILD_ID__: string | undefined;
/** Undefined outside the bundles (dist/ run directly): no plan is written or read then. */
const buildId: string | undefined = typeof __NSBOX_BUILD_ID__ === 'string' ? __NSBOX_BUILD_ID__ : undefined;

/** What of a `nsbox build` request decides its result (not how it is shown, nor --no-cache: a --no-cache build's records are what the next build hits). */
export interface BuildRequest {
  /** The context directory, resolved. */
  context: string;
  /** The Dockerfile, resolved. */
  dockerfile: string;
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  target?: string;
  network?: string;
}

/** The key's text: the request, this build of nsbox, the user, the store's root and the NSBOX_/XDG_ variables. */
export function buildPlanKey(request: BuildRequest, root: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!buildId) return undefined;
  const vars = Object.keys(env)
    .filter((k) => k.startsWith('NSBOX_') || k.startsWith('XDG_'))
    .sort()
    .map((k) => `${k}=${env[k]}`);
  return JSON.stringify({ v: VERSION, build: buildId, euid: process.geteuid?.() ?? 0, root, vars, request });
}

/** What a build's legacy output prints, as a fully cached build gives it. */
export type PlanEvent = { type: 'step'; step: number; total: number; instruction: string } | { type: 'cached' } | { type: 'stepDone'; id: string } | { type: 'warning'; message: string };

export interface PlanImage {
  /** The image manifest before the provenance's annotations (sealManifest adds them). */
  manifest: Record<string, unknown> & { mediaType: string };
  platform: { os: string; architecture: string; variant?: string | undefined };
  /** The tags, fully qualified. */
  names: string[];
  /** All but the start time, which is each build's own. */
  provenance: Omit<ProvenanceInput, 'startedOn'>;
  configDigest: string;
  layers: Array<{ digest: string; mediaType: string; size: number; diffId: string; chainId: string }>;
  created: string;
}

/** What a build tells about itself when asked (buildImage's second argument). */
export interface BuildFacts {
  /** Why this build cannot be replayed (ONBUILD triggers, an ADD of a URL, --cache-from), if so. */
  unplannable?: string;
  /** The images FROM and --from resolved to. */
  images: Array<{ refsKey: string; digest: string; config: string; names: string[]; chains: string[] }>;
  /** Step number → how many cache lookups it made (each is a `---> Using cache` when all hit). */
  lookups: Map<number, number>;
  /** Each cache record the build hit or wrote: its file and text. */
  cache: Map<string, string>;
  /** Every layer chain the build's stages stand on. */
  chains: Set<string>;
  git?: { revision?: string; source?: string };
  image?: PlanImage;
}

export const newBuildFacts = (): BuildFacts => ({ images: [], lookups: new Map(), cache: new Map(), chains: new Set() });

export interface BuildPlan {
  key: string;
  madeAt: number;
  fingerprint: string;
  git: { revision?: string; source?: string };
  images: BuildFacts['images'];
  cache: Array<{ file: string; text: string }>;
  chains: string[];
  events: PlanEvent[];
  image: PlanImage;
}

/**
 * The lstat of the context's every entry (and the Dockerfile's stat, which may be elsewhere or a
 * link), as one digest; `racy` when one changed within RACY_MS. Undefined when the tree cannot be
 * read whole (the build will say why, or the quick build leaves it to the full one).
 */
export function contextFingerprint(dir: string, dockerfile: string, entries?: FingerprintEntry[]): { digest: string; racy: boolean } | undefined {
  const h = createHash('sha256');
  const now = BigInt(Date.now()) * 1_000_000n;
  let racy = false;
  // entries on the context's own file system, when its times are fine-grained, get the short window
  let fineDev: bigint | undefined;
  const add = (rel: string, st: BigIntStats, file: string, follow: boolean) => {
    h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.dev}\0${st.ino}\0${st.size}\0${st.mtimeNs}\0${st.ctimeNs}\n`);
    entries?.push({ file, follow, st });
    const since = now - BigInt(st.dev === fineDev ? FINE_RACY_MS : RACY_MS) * 1_000_000n;
    if (st.mtimeNs > since || st.ctimeNs > since) racy = true;
  };
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(dir, rel) : dir).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const file = join(dir, r);
      const st = lstatSync(file, { bigint: true });
      add(r, st, file, false);
      if (st.isDirectory()) walk(r);
    }
  };
  try {
    const top = statSync(dir, { bigint: true });
    if (!top.isDirectory()) return undefined;
    if (FINE_TIMES.has(statfsSync(dir).type)) fineDev = top.dev;
    add('', top, dir, true);
    walk('');
    add('\0dockerfile', statSync(dockerfile, { bigint: true }), dockerfile, true);
  } catch {
    // ENOENT/ENOTDIR/EACCES on the way (a file removed while walked, a missing Dockerfile): no fingerprint
    return undefined;
  }
  return { digest: h.digest('hex'), racy };
}

/** One entry the fingerprint read: its path, whether it was stat'ed through a link (the context's top, the Dockerfile), what it read. */
export interface FingerprintEntry {
  file: string;
  follow: boolean;
  st: BigIntStats;
}

/** The events a fully cached build gives, from those this build gave: its steps' lookups are hits, RUN gives no output. */
export function warmEvents(events: BuildProgress[], lookups: Map<number, number>): PlanEvent[] {
  const out: PlanEvent[] = [];
  for (const e of events) {
    if (e.type === 'step') {
      out.push({ type: 'step', step: e.step, total: e.total, instruction: e.instruction });
      for (let i = lookups.get(e.step) ?? 0; i > 0; i--) out.push({ type: 'cached' });
    } else if (e.type === 'stepDone') out.push({ type: 'stepDone', id: e.id });
    else if (e.type === 'warning') out.push({ type: 'warning', message: e.message });
  }
  return out;
}

export const planDir = (root: string) => join(root, 'build-plans');
const planFile = (root: string, key: string) => join(planDir(root), `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`);

export function writeBuildPlan(root: string, plan: BuildPlan): void {
  const dir = planDir(root);
  const file = planFile(root, plan.key);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ v: VERSION, ...plan }), { mode: 0o600 });
  renameSync(tmp, file);
  // plans of other requests and earlier builds pile up: past MAX_PLANS all but this one go (a cache)
  const files = readdirSync(dir);
  if (files.length > MAX_PLANS) for (const f of files) if (join(dir, f) !== file) rmSync(join(dir, f), { force: true });
}

/** Removes the plan for `key` (a build of that request that does not write one: the old one no longer says what it does). */
export function dropBuildPlan(root: string, key: string): void {
  rmSync(planFile(root, key), { force: true });
}

/** The plan for `key`; undefined when there is none, or not one for this key and version. */
export function readBuildPlan(root: string, key: string): BuildPlan | undefined {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(planFile(root, key), 'utf8'));
  } catch {
    // no plan, or one cut short: the full build runs (and writes it again)
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const p = v as Partial<BuildPlan> & { v?: unknown };
  if (p.v !== VERSION || p.key !== key) return undefined;
  const ok =
    typeof p.madeAt === 'number' && typeof p.fingerprint === 'string' && typeof p.git === 'object' && p.git !== null &&
    Array.isArray(p.images) && Array.isArray(p.cache) && Array.isArray(p.chains) && Array.isArray(p.events) &&
    typeof p.image === 'object' && p.image !== null && Array.isArray(p.image.layers) && Array.isArray(p.image.names) && typeof p.image.configDigest === 'string';
  return ok ? (p as BuildPlan) : undefined;
}
