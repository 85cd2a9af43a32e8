/**
 * docker's container archive operations over the engine's records: the stat of a path, its tar,
 * and a tar extracted into a directory (`HEAD`/`GET`/`PUT /containers/{id}/archive`, `nsbox cp`),
 * for running and stopped containers alike (container-root.ts says how each root is reached).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { resolveForContainer } from '../image/image.js';
import { archivePath, statPath, type PathStat } from './archive-read.js';
import { extractArchive, type ExtractOptions } from './archive-write.js';
import { rootOfPid, rootOfStopped } from './container-root.js';
import type { EngineContext } from './engine-context.js';
import { noSuchPath, RootDir } from './in-root.js';
import { pidOf } from './lifecycle.js';
import type { ContainerRecord } from './records.js';

/**
 * The root of the record's container: its init's while it runs, else its layers and writable layer
 * mounted by a helper (made first for a container never started, so what is copied in stays).
 */
export async function openRecordRoot(ctx: EngineContext, r: ContainerRecord): Promise<RootDir> {
  const pid = pidOf(r);
  if (pid !== undefined) return rootOfPid(pid);
  const dir = ctx.store.layout.container(r.id);
  const mounts = r.options.mounts ?? [];
  if (r.rootfs) return rootOfStopped({ root: r.rootfs, mounts });
  if (!r.image) throw new Error(`container ${r.id} has neither an image nor a rootfs`);
  const image = await resolveForContainer(r.image.digest, { pull: 'never', root: ctx.root });
  try {
    const upper = join(dir, 'upper');
    const work = join(dir, 'work');
    const root = join(dir, 'root');
    mkdirSync(root, { recursive: true, mode: 0o700 });
    mkdirSync(upper, { recursive: true, mode: 0o755 });
    mkdirSync(work, { recursive: true, mode: 0o700 });
    return await rootOfStopped({ root, overlay: { lower: image.layers, upper, work }, mounts });
  } finally {
    // The helper has its own mount of the layers: the image may go once it is closed.
    image.release?.();
  }
}

async function withRoot<T>(ctx: EngineContext, ref: string, fn: (root: RootDir, r: ContainerRecord) => Promise<T>): Promise<T> {
  const r = await ctx.store.get(ref);
  const root = await openRecordRoot(ctx, r);
  try {
    return await fn(root, r);
  } finally {
    await root.close();
  }
}

/** The stat of `path` in the container (NotFoundError, docker's words, when it is not there). */
export function statContainerPath(ctx: EngineContext, ref: string, path: string): Promise<PathStat> {
  return withRoot(ctx, ref, async (root) => {
    const st = statPath(root, path);
    if (!st) throw noSuchPath(path, ref);
    return st;
  });
}

/** The stat of `path` and its tar (see archive-read.ts); the container's root is held until the tar is read or destroyed. */
export async function getArchive(ctx: EngineContext, ref: string, path: string): Promise<{ stat: PathStat; tar: Readable }> {
  const r = await ctx.store.get(ref);
  const root = await openRecordRoot(ctx, r);
  try {
    const stat = statPath(root, path);
    if (!stat) throw noSuchPath(path, ref);
    const inner = archivePath(root, path);
    const tar = Readable.from(
      (async function* () {
        try {
          for await (const chunk of inner as AsyncIterable<Buffer>) yield chunk;
        } finally {
          await root.close();
        }
      })(),
      { objectMode: false },
    );
    // A tar destroyed before it was read never enters the generator's finally.
    tar.once('close', () => void root.close().catch((e: unknown) => ctx.warn(`closing the root of ${r.id}`, e)));
    return { stat, tar };
  } catch (e) {
    await root.close();
    throw e;
  }
}

/** Extracts a tar under the directory `path` of the container (docker's PUT archive). */
export function putArchive(ctx: EngineContext, ref: string, path: string, tar: AsyncIterable<Buffer>, opts: ExtractOptions = {}): Promise<void> {
  return withRoot(ctx, ref, (root) => {
    if (!statPath(root, path)) throw noSuchPath(path, ref);
    return extractArchive(root, path, tar, opts);
  });
}

/** The root of a container by reference, for a caller that does several things in it (`nsbox cp`); close it after. */
export async function openContainerRoot(ctx: EngineContext, ref: string): Promise<{ root: RootDir; record: ContainerRecord }> {
  const record = await ctx.store.get(ref);
  return { root: await openRecordRoot(ctx, record), record };
}
