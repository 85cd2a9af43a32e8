/**
 * The quick `nsbox build`: bin/nsbox.js runs it from a bundle of its own (tools/bundle-cli.mjs),
 * without zod, the Dockerfile parser, the builder or the CLI's main bundle (issue 16: a fully cached
 * build within 150 ms of Node's start). It writes the image a build of the full CLI wrote last time
 * for the same request, from the plan that build kept (lib/build/build-plan.ts), when everything
 * that build read is unchanged (the context's every entry by lstat, the Dockerfile, the git
 * revision, the base images' tags, the build cache records with their blobs and layers): then the
 * full build would hit every step and make that image. It does what the full build's end does,
 * in the same order, under the same locks: each cache record's use time (a hit's utimes), and,
 * unless the image is already in place under every tag (then nothing more, as build.ts), the
 * provenance sealed with this build's times (image/provenance-seal.ts) and its blobs, the image
 * record and the tags in images.json (the tag journal's line when a tag moves); then it writes
 * --iidfile, prints the lines the full build prints (-q: the id; else docker's legacy output) and
 * keeps the native launcher's record of this command line (build/build-fast-record.ts).
 *
 * Anything else (another flag, a live view, no plan, anything changed, a store that does not read
 * as expected) answers undefined having printed nothing, and bin/nsbox.js runs the full command.
 */
import { constants as fsc, fstatSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildPlanKey, contextFingerprint, PLAN_MAX_AGE_MS, readBuildPlan, type BuildPlan, type FingerprintEntry } from '../../build/build-plan.js';
import { imageInPlace, warmOutput, writeFastRecord } from '../../build/build-fast-record.js';
import { gitRevision } from '../../build/build-provenance.js';
import { sealManifest } from '../../image/provenance-seal.js';
import { parseReference } from '../../image/reference.js';
import { fsyncDirAsync, withLock, writeFileAtomic } from '../../storage/atomic.js';
import { defaultRoot, StoreLayout } from '../../storage/layout.js';
import { whoAmI } from '../../storage/who-am-i.js';
import { flag, parseArgs, value, type Parsed } from '../args.js';
import { writeOut } from '../output.js';
import { BUILD_FLAGS, planRequest } from '../commands/build-request.js';

type Db = { version: 1; refs: Record<string, string>; images: Record<string, Record<string, unknown> & { extraBlobs?: string[] }>; journal: Record<string, Array<{ digest: string }>> };

const isDigest = (s: string) => /^sha256:[0-9a-f]{64}$/.test(s);

/** images.json as ImageStore writes it (its schema's keys in its order), else undefined: the full build reads it through the schema. */
function readDb(layout: StoreLayout): Db | undefined {
  const v = JSON.parse(readFileSync(layout.imagesFile, 'utf8')) as unknown;
  if (typeof v !== 'object' || v === null) return undefined;
  const db = v as Db;
  if (Object.keys(db).join() !== 'version,refs,images,journal' || db.version !== 1) return undefined;
  if ([db.refs, db.images, db.journal].some((o) => typeof o !== 'object' || o === null || Array.isArray(o))) return undefined;
  return db;
}

/** The names pointing at `digest`, sorted (image-store.ts): the first is the base's name in the provenance. */
const namesOf = (db: Db, digest: string) => Object.keys(db.refs).filter((n) => db.refs[n] === digest).sort();

const isFile = (file: string): boolean => {
  try {
    return statSync(file).isFile();
  } catch {
    // ENOENT (or ENOTDIR): not there, as BlobStore.has / LayerStore.has say
    return false;
  }
};

/** Whether everything the plan's build read is as it was (see the file's comment). */
async function unchanged(plan: BuildPlan, layout: StoreLayout, db: Db, context: string, dockerfile: string, entries: FingerprintEntry[]): Promise<boolean> {
  const fp = contextFingerprint(context, dockerfile, entries);
  if (!fp || fp.digest !== plan.fingerprint || fp.racy) return false;
  if (JSON.stringify(await gitRevision(context)) !== JSON.stringify(plan.git)) return false;
  const blob = (d: string) => isDigest(d) && isFile(layout.blob(d));
  const chain = (c: string) => isDigest(c) && isFile(layout.layerMarker(c));
  for (const img of plan.images) {
    const digest = isDigest(img.refsKey) ? (db.images[img.refsKey] ? img.refsKey : undefined) : db.refs[img.refsKey];
    if (digest !== img.digest || db.images[digest]?.['config'] !== img.config || (namesOf(db, digest)[0] ?? '') !== (img.names[0] ?? '')) return false;
    if (!blob(img.digest) || !blob(img.config) || !img.chains.every(chain)) return false;
  }
  for (const c of plan.cache) {
    let text: string;
    try {
      text = readFileSync(c.file, 'utf8');
    } catch {
      // a record pruned: the full build misses there
      return false;
    }
    if (text !== c.text) return false;
    const layer = (JSON.parse(text) as { layer: { digest: string; chainId: string } | null }).layer;
    if (layer && !(blob(layer.digest) && chain(layer.chainId))) return false;
  }
  return plan.chains.every(chain) && plan.image.layers.every((l) => blob(l.digest)) && blob(plan.image.configDigest);
}

/**
 * Small blobs into the store as BlobStore.ingest writes each: a temp file in tmp/, fsynced, renamed
 * into blobs/, the directory fsynced; here the files are written at once and the directory fsynced
 * once after the renames (the same durability: no blob is named before its bytes are on disk).
 */
async function ingest(layout: StoreLayout, blobs: Array<{ bytes: Buffer; digest: string }>): Promise<void> {
  const missing = blobs.filter((b) => !isFile(layout.blob(b.digest)));
  if (!missing.length) return;
  await mkdir(layout.tmpDir, { recursive: true });
  const tmps = missing.map((b) => join(layout.tmpDir, `blob-${b.digest.slice(7, 19)}-${randomHex()}`));
  try {
    await Promise.all(
      missing.map(async (b, i) => {
        const fh = await open(tmps[i]!, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o644);
        try {
          await fh.writeFile(b.bytes);
          await fh.sync();
        } finally {
          await fh.close();
        }
      }),
    );
    await mkdir(layout.blobsDir, { recursive: true });
    for (const [i, b] of missing.entries()) await rename(tmps[i]!, layout.blob(b.digest));
  } catch (e) {
    await Promise.all(tmps.map((f) => rm(f, { force: true })));
    throw e;
  }
  await fsyncDirAsync(layout.blobsDir);
}

/** 12 hex digits for a temp name (BlobStore's are random bytes; any unique name does). */
const randomHex = () => `${process.pid.toString(16)}${Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, '0')}`.slice(-12);

/** The image record and its tags, as ImageStore.put writes them (under the images lock, with a journal line when a tag moves). */
async function putRecord(layout: StoreLayout, plan: BuildPlan, manifestDigest: string, extra: string[], index: string): Promise<boolean> {
  return withLock(layout.imagesLock, async () => {
    const db = readDb(layout);
    if (!db) return false;
    const img = plan.image;
    const old = db.images[manifestDigest];
    const record = {
      digest: manifestDigest,
      mediaType: img.manifest.mediaType,
      config: img.configDigest,
      layers: img.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, diffId: l.diffId, chainId: l.chainId })),
      extraBlobs: old ? [...new Set([...(old.extraBlobs ?? []), ...extra])] : extra,
      platform: { os: img.platform.os, architecture: img.platform.architecture, ...(img.platform.variant ? { variant: img.platform.variant } : {}) },
      created: img.created,
      addedAt: new Date().toISOString(),
      index,
    };
    db.images[manifestDigest] = record;
    for (const name of img.names) {
      const had = db.refs[name];
      db.refs[name] = manifestDigest;
      if (name.includes('@')) continue;
      const log = (db.journal[name] ??= []);
      if (had === manifestDigest && log.at(-1)?.digest === manifestDigest) continue;
      log.push({ digest: manifestDigest, at: new Date().toISOString(), by: 'build', user: whoAmI() } as { digest: string });
    }
    await writeFileAtomic(layout.imagesFile, `${JSON.stringify(db, null, 2)}\n`);
    return true;
  });
}

/** Whether fd 2 may be a terminal (then `auto` is the live view: the full command's); /dev/null and pipes are not. */
function maybeTerminal(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isCharacterDevice() && Math.floor(st.rdev / 256) % 4096 !== 1;
  } catch {
    // a closed fd is no terminal
    return false;
  }
}

export async function run(argv: string[]): Promise<number | undefined> {
  const startedOn = new Date().toISOString();
  let p: Parsed;
  try {
    p = parseArgs(argv, BUILD_FLAGS, { stopAtPositional: false });
  } catch {
    // a flag build does not take: the full command says so
    return undefined;
  }
  const mode = value(p, 'progress') ?? 'auto';
  const quiet = flag(p, 'quiet') || mode === 'quiet';
  if (p.positional.length !== 1 || flag(p, 'no-cache') || !(quiet || (mode === 'auto' && !maybeTerminal(2)))) return undefined;
  let request;
  let names: string[];
  try {
    request = planRequest(p, false);
    names = request ? request.tags.map((t) => parseReference(t).toString()) : [];
  } catch {
    // a bad tag or build arg: the full command words the error
    return undefined;
  }
  if (!request) return undefined;
  const root = defaultRoot();
  const key = buildPlanKey(request, root);
  const plan = key === undefined ? undefined : readBuildPlan(root, key);
  if (!plan || Date.now() - plan.madeAt > PLAN_MAX_AGE_MS || plan.image.names.join() !== names.join()) return undefined;
  const layout = new StoreLayout(root);
  const entries: FingerprintEntry[] = [];
  let manifestDigest: string;
  try {
    const db = readDb(layout);
    if (!db || !(await unchanged(plan, layout, db, request.context, request.dockerfile, entries))) return undefined;
    const img = plan.image;
    const sealed = sealManifest(img.manifest, { ...img.provenance, startedOn }, img.platform, img.names);
    manifestDigest = sealed.manifest.digest;
    const now = new Date();
    if (imageInPlace(readFileSync(layout.imagesFile, 'utf8'), manifestDigest, img.configDigest, img.names) && isFile(layout.blob(manifestDigest))) {
      // The image is in place under every tag: the build changes nothing (as build.ts's end), but the cache records' use times.
      for (const c of plan.cache) utimesSync(c.file, now, now);
    } else {
      // The build's end, as the full build does it, holding the store's lease (no collection meanwhile).
      const done = await withLock(
        layout.leaseLock,
        async () => {
          for (const c of plan.cache) utimesSync(c.file, now, now);
          await ingest(layout, [sealed.manifest, ...sealed.extra]);
          return putRecord(layout, plan, sealed.manifest.digest, sealed.extra.map((b) => b.digest), sealed.index);
        },
        { shared: true },
      );
      if (!done) return undefined;
    }
    const iidfile = value(p, 'iidfile');
    if (iidfile !== undefined) writeFileSync(iidfile, plan.image.configDigest);
  } catch {
    // a store that does not read as expected, or a write that failed: the full build does it all again and says what
    return undefined;
  }
  const tags = request.tags.map((t) => parseReference(t));
  for (const c of warmOutput(plan.events, quiet, plan.image.configDigest, tags)) {
    if (c.fd === 1) writeOut(c.text);
    else process.stderr.write(c.text);
  }
  // The native launcher's record of this command line (build-fast-record.ts): the next build of it starts no Node.
  if (process.argv[2] === 'build') await writeFastRecord({ root, context: request.context, args: process.argv.slice(2), plan, entries, manifestDigest, quiet, iidfile: value(p, 'iidfile'), tags });
  return 0;
}
