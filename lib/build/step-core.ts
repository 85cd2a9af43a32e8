/**
 * What every build step shares: its context (the build's environment, the cache, where COPY
 * reads from), flag parsing, the history entry, and the cache-or-make of a step: a metadata step,
 * a step whose layer is the diff of an upper directory over its parent, and a linked step
 * (`COPY --link`), whose layer is made over nothing and keyed without its parent, so that the
 * same layer is reused, rebased onto a changed parent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { ValidationError } from '../errors.js';
import { chainId as chainIdOf } from '../storage/index.js';
import type { DockerfileNode } from './dockerfile/parse.js';
import type { HistoryCache } from './history-cache.js';
import type { SourceTree } from './source-tree.js';
import { hashKey, type BuildEnv, type StageState } from './stage-state.js';
import { BuildCache, commitDiff, type BuiltLayer } from './step-layer.js';

export interface StepContext {
  env: BuildEnv;
  cache: BuildCache;
  context: SourceTree;
  /** A `--from=` source: a previous stage by name or index, or an image. */
  fromTree: (ref: string) => Promise<SourceTree>;
  layerDirs: (state: StageState) => Promise<string[]>;
  /** --cache-from images matched by their history. */
  history?: HistoryCache;
}

export const bad = (node: DockerfileNode, why: string) => new ValidationError(`Dockerfile:${node.line}: ${node.keyword} ${why}`, 'dockerfile');

/** `--name=value` flags; any other is docker's "Unknown flag". */
export function flagsOf(node: DockerfileNode, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of node.flags) {
    const m = /^--([A-Za-z][A-Za-z0-9-]*)(?:=([\s\S]*))?$/.exec(f)!;
    if (!allowed.includes(m[1]!)) throw bad(node, `: unknown flag: --${m[1]}`);
    out.set(m[1]!, (m[2] ?? 'true').replace(/^\x22([\s\S]*)\x22$/, '$1'));
  }
  return out;
}

export function history(state: StageState, created: string, createdBy: string, empty: boolean, key: string): void {
  state.stepKeys = [...state.stepKeys, key];
  state.config.history = [...(state.config.history ?? []), { created, created_by: createdBy, comment: 'buildkit.dockerfile.v0', ...(empty ? { empty_layer: true } : {}) }];
}

/**
 * The cache entry for `key` when the cache may still hit, else (given the step's `createdBy`) a
 * --cache-from image's history entry for it; a miss turns the cache off for the rest of the stage.
 */
export async function lookup(state: StageState, ctx: StepContext, key: string, createdBy?: string): Promise<{ layer: BuiltLayer | null; created: string } | undefined> {
  ctx.env.noteLookup?.();
  const hit = state.cacheOk && !ctx.env.noCache ? await ctx.cache.get(key) : undefined;
  const old = hit || ctx.env.noCache || createdBy === undefined ? undefined : ctx.history?.match(state, createdBy);
  if (hit || old) ctx.env.progress({ type: 'cached' });
  else state.cacheOk = false;
  // kept as this store's own entry, so the next build hits without --cache-from
  if (old) await ctx.cache.put(key, old.layer ?? undefined, old.created, 'cache-from');
  return hit ?? old;
}

/** A metadata step: keyed and timed through the cache like the others, no layer. */
export async function metaStep(state: StageState, ctx: StepContext, createdBy: string): Promise<void> {
  const key = hashKey(state.cacheKey, createdBy);
  const hit = await lookup(state, ctx, key, createdBy);
  const created = hit?.created ?? ctx.env.created();
  if (!hit) await ctx.cache.put(key, undefined, created, createdBy);
  state.cacheKey = key;
  history(state, created, createdBy, true, key);
}

/**
 * A step that makes a layer: from the cache when its key is there, else by `make` into a fresh
 * upper dir. `byContent`: `createdBy` does not tell the step's content (COPY, ADD, a RUN with a
 * bind mount), so a --cache-from image's history entry is taken only when the layer made has its
 * diff id.
 */
export async function layerStep(state: StageState, ctx: StepContext, createdBy: string, extraKey: unknown[], make: (upper: string) => Promise<void>, upperFrom?: (fn: (upper: string) => Promise<BuiltLayer | undefined>) => Promise<BuiltLayer | undefined>, byContent = false): Promise<void> {
  const { env, cache } = ctx;
  const key = hashKey(state.cacheKey, createdBy, ...extraKey);
  const hit = await lookup(state, ctx, key, byContent ? undefined : createdBy);
  const candidate = hit || !byContent || env.noCache ? undefined : ctx.history?.match(state, createdBy);
  let layer: BuiltLayer | undefined;
  let created = hit?.created ?? env.created();
  const parent = state.layers.at(-1)?.chainId;
  // a hit from a --cache-from image may have been made over other bytes of the same parent step
  if (hit) layer = hit.layer ? await placeLayer(env, parent, hit.layer) : undefined;
  else {
    const commit = (upper: string) => commitDiff(env.store, upper, parent, { tmpPrefix: env.tmpPrefix, adopt: true, ...(env.clampMtime === undefined ? {} : { clampMtime: env.clampMtime }) });
    if (upperFrom) layer = await upperFrom(commit);
    else {
      const upper = await mkdtemp(path.join(env.store.layout.tmpDir, `${env.tmpPrefix}upper-`));
      try {
        await make(upper);
        layer = await commit(upper);
      } finally {
        await rm(upper, { recursive: true, force: true });
      }
    }
    // the same layer as the --cache-from image's: its time too, so the steps after it may match it
    if (candidate && (candidate.layer?.diffId ?? null) === (layer?.diffId ?? null)) created = candidate.created;
    await cache.put(key, layer, created, createdBy);
  }
  state.cacheKey = key;
  addLayer(state, layer, created, createdBy, key);
}


function addLayer(state: StageState, layer: BuiltLayer | undefined, created: string, createdBy: string, key: string): void {
  if (layer) {
    state.layers = [...state.layers, layer];
    state.config = { ...state.config, rootfs: { type: 'layers', diff_ids: [...state.config.rootfs.diff_ids, layer.diffId] } };
  }
  history(state, created, createdBy, !layer, key);
}

/** `layer` (its blob) as a layer over `parent`: unpacked there unless that chain is in the store already. */
async function placeLayer(env: BuildEnv, parent: string | undefined, layer: BuiltLayer): Promise<BuiltLayer> {
  const chainId = chainIdOf(parent, layer.diffId);
  if (await env.store.layers.has(chainId)) return { ...layer, chainId };
  await env.store.layers.unpack(chainId, env.store.blobs.path(layer.digest), { diffId: layer.diffId, blobDigest: layer.digest, mediaType: layer.mediaType, ...(parent ? { parentChainId: parent } : {}) });
  return { ...layer, chainId };
}

/**
 * A linked step (BuildKit's `--link`): `make` writes into an empty upper directory that sees
 * nothing of the parent; the cache key is `linkKey` alone (no parent in it), so a hit made over
 * another parent is reused: its blob unpacked as a layer over this parent. The stage's key chain
 * still goes through the parent, so the steps after it are keyed as before.
 */
export async function linkStep(state: StageState, ctx: StepContext, createdBy: string, linkKey: string, make: (upper: string) => Promise<void>): Promise<void> {
  const { env, cache } = ctx;
  const parent = state.layers.at(-1)?.chainId;
  env.noteLookup?.();
  const hit = env.noCache ? undefined : await cache.get(linkKey, { blobOnly: true });
  let layer: BuiltLayer | undefined;
  let created = hit?.created ?? env.created();
  if (hit) {
    env.progress({ type: 'cached' });
    if (hit.layer) layer = await placeLayer(env, parent, hit.layer);
  } else {
    // a --cache-from image's entry for this step counts when the layer made is its layer (see layerStep)
    const candidate = env.noCache ? undefined : ctx.history?.match(state, createdBy);
    const upper = await mkdtemp(path.join(env.store.layout.tmpDir, `${env.tmpPrefix}upper-`));
    try {
      await make(upper);
      layer = await commitDiff(env.store, upper, parent, { tmpPrefix: env.tmpPrefix, adopt: true, ...(env.clampMtime === undefined ? {} : { clampMtime: env.clampMtime }) });
    } finally {
      await rm(upper, { recursive: true, force: true });
    }
    if (candidate && (candidate.layer?.diffId ?? null) === (layer?.diffId ?? null)) created = candidate.created;
    await cache.put(linkKey, layer, created, createdBy);
  }
  state.cacheKey = hashKey(state.cacheKey, createdBy, linkKey);
  addLayer(state, layer, created, createdBy, linkKey);
}
