/**
 * `buildImage`: a Dockerfile and its context into an image in the store. The file is parsed whole
 * first (a bad instruction fails before anything runs); the global ARGs are read; the stages the
 * target needs (through FROM, COPY --from and RUN --mount from=) are built, each as soon as the
 * stages it needs are, from an image in the store (pulled when missing), `scratch` or a previous
 * stage; the target stage's config, layers and
 * history are then written as an OCI image under the tags. Everything is done holding the store's
 * lease, so no garbage collection takes the layers made on the way.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { join } from 'node:path';
import { NotFoundError, ValidationError, isCode } from '../errors.js';
import { Image } from '../image/image.js';
import type { Credentials } from '../image/registry/index.js';
import { parseReference } from '../image/reference.js';
import { ImageConfigSchema, type ImageConfig } from '../image/registry/manifest.js';
import { hostPlatform } from '../image/registry/platform.js';
import { commitImage } from '../image/commit.js';
import { sealManifest, type ProvenanceInput } from '../image/provenance.js';
import { contextDigest, gitRevision } from './build-provenance.js';
import { parseNetworkMode } from '../network/index.js';
import { defaultRunRoot } from '../runtime/run-root.js';
import { sha256, Store } from '../storage/index.js';
import { unpackLayer } from '../storage/unpack.js';
import { fsError } from '../storage/errors.js';
import { expandWord, keyValuePairs } from './dockerfile/expand.js';
import { parseDockerfile, splitNode, type DockerfileNode } from './dockerfile/parse.js';
import { executeNode, flagsOf, type StepContext } from './instructions.js';
import { LayeredRoot } from './layered-root.js';
import { ContextDir, StageTree, type SourceTree } from './source-tree.js';
import { configBytes as configOf, hashKey, stepId, type BuildEnv, type BuildProgress, type StageState } from './stage-state.js';
import { BuildCache } from './step-layer.js';
import { FileDigests } from './file-digests.js';
import { HistoryCache } from './history-cache.js';
import { BuildRunDir, sweepBuildRunDirs } from './build-run-dir.js';
import { StagePrinter } from './stage-printer.js';
import type { BuildFacts } from './build-plan.js';

export type { BuildProgress } from './stage-state.js';

export interface BuildOptions {
  /** The build context: a directory, or a stream of a tar of one (plain or gzipped). */
  context: string | AsyncIterable<Uint8Array>;
  /** The Dockerfile: a path relative to the context (default `Dockerfile`), or absolute. */
  dockerfile?: string;
  /** The Dockerfile's text, instead of a file. */
  dockerfileText?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  /** The stage to build (by name); default the last. */
  target?: string;
  /** Labels added to the image's config. */
  labels?: Record<string, string>;
  noCache?: boolean;
  /** Fetch every base image (FROM, COPY --from, RUN --mount from=) from its registry even when it is in the store (docker's --pull). */
  pull?: boolean;
  /**
   * Images whose build cache this build may use (docker's --cache-from): their inline cache
   * metadata, written by a build with the build arg BUILDKIT_INLINE_CACHE=1, names each step's
   * cache key; a step with that key takes that image's layer. From the store, else pulled.
   */
  cacheFrom?: string[];
  /** Credentials for those pulls by registry host (`POST /build`'s X-Registry-Config); else the usual docker config. */
  registryAuth?: Record<string, Credentials>;
  /**
   * Reproducible builds (BuildKit's SOURCE_DATE_EPOCH, also taken from the build arg of that name):
   * seconds since the epoch for every time in the config and history, and the latest file time in
   * new layers. Two builds of the same context then give the same image.
   */
  sourceDateEpoch?: number;
  /**
   * RUN --mount=type=secret values by id: the bytes (a string is UTF-8), or `{ file }` / `{ env }`
   * to read them from (read once, at the start). Never in a layer, the history or the cache key.
   */
  secrets?: Record<string, string | Uint8Array | { file: string } | { env: string }>;
  /** RUN's network: 'none' (default) or 'host'. */
  network?: string;
  /** The store (default $NSBOX_ROOT, /var/lib/nsbox as root). */
  root?: string;
  onProgress?: (e: BuildProgress) => void;
  /**
   * Give each stage's events as they come (each carrying its `stage`), for a live view of stages
   * running at once; by default a later stage's events are held until the stages before it have
   * finished, so the events come in file order, as docker's legacy builder prints them.
   */
  liveProgress?: boolean;
}

/** The instructions BuildKit shows as steps of their own (the others only change the config). */
const VERTEX_KEYWORDS = new Set(['FROM', 'RUN', 'COPY', 'ADD', 'WORKDIR']);

interface Stage {
  index: number;
  name: string | undefined;
  from: DockerfileNode;
  nodes: DockerfileNode[];
}

/**
 * Builds; returns the image (its id is the config's digest). `facts`, when given, is filled in with
 * what the build read and wrote, for the quick build's plan (build-plan.ts).
 */
export async function buildImage(options: BuildOptions, facts?: BuildFacts): Promise<Image> {
  const store = new Store(options.root === undefined ? {} : { root: options.root });
  await store.blobs.init();
  await store.layers.init();
  await mkdir(store.layout.tmpDir, { recursive: true });
  const names = (options.tags ?? []).map((t) => parseReference(t).toString());
  const network = parseNetworkMode(options.network === 'default' ? 'none' : options.network);
  // what killed builds left (their run directories, cgroups and temp files), then this build's own
  const runBase = join(defaultRunRoot(), 'build');
  await sweepBuildRunDirs(runBase, store.layout.tmpDir);
  const runDir = BuildRunDir.claim(runBase);
  let contextDir: string;
  let spooled: string | undefined;
  try {
    if (typeof options.context === 'string') contextDir = path.resolve(options.context);
    else {
      spooled = join(store.layout.tmpDir, `${runDir.tmpPrefix}context`);
      await mkdir(spooled, { mode: 0o700 });
      contextDir = spooled;
      await unpackLayer(options.context as AsyncIterable<Buffer>, spooled, { name: 'build context', preserveOwners: false });
    }
    const text = options.dockerfileText ?? (await readDockerfile(contextDir, options.dockerfile ?? 'Dockerfile'));
    const image = await store.withLease(() => build(store, contextDir, text, names, network, runDir, options, facts));
    return image;
  } finally {
    if (spooled) await rm(spooled, { recursive: true, force: true });
    runDir.release();
  }
}

async function readDockerfile(dir: string, file: string): Promise<string> {
  const p = path.resolve(dir, file);
  try {
    return await readFile(p, 'utf8');
  } catch (err) {
    if (!isCode(err, 'ENOENT', 'ENOTDIR')) throw fsError(err, 'failed to read dockerfile', p);
    throw new NotFoundError(`failed to read dockerfile: open ${file}: no such file or directory`, { path: p });
  }
}

async function build(store: Store, contextDir: string, text: string, names: string[], network: 'none' | 'host', runDir: BuildRunDir, options: BuildOptions, facts: BuildFacts | undefined): Promise<Image> {
  const startedOn = new Date().toISOString();
  const df = parseDockerfile(text);
  // a cached ADD of a URL or a git repository still fetches it; --cache-from images are read each build
  if (facts && (options.cacheFrom?.length || df.nodes.some((n) => n.keyword === 'ADD' && /:\/\/|git@/.test(n.args)))) facts.unplannable = 'ADD of a URL, or --cache-from';
  const progress = options.onProgress ?? (() => undefined);
  for (const w of df.warnings) progress({ type: 'warning', message: w });
  const globalNodes: DockerfileNode[] = [];
  const stages: Stage[] = [];
  for (const node of df.nodes) {
    if (node.keyword === 'FROM') stages.push({ index: stages.length, name: undefined, from: node, nodes: [] });
    else if (stages.length === 0) {
      if (node.keyword !== 'ARG') throw new ValidationError(`Dockerfile:${node.line}: no build stage in current context (${node.keyword} before FROM; only ARG may come first)`, 'dockerfile');
      globalNodes.push(node);
    } else stages.at(-1)!.nodes.push(node);
  }
  if (stages.length === 0) throw new ValidationError('Dockerfile: no FROM instruction', 'dockerfile');
  const buildArgs = options.buildArgs ?? {};
  const sdeArg = buildArgs['SOURCE_DATE_EPOCH'];
  const sde = options.sourceDateEpoch ?? (sdeArg !== undefined && /^\d+$/.test(sdeArg) ? Number(sdeArg) : undefined);
  const env: BuildEnv = {
    store,
    escape: df.escape,
    buildArgs,
    globalArgs: new Map(),
    usedArgs: new Set(),
    network,
    secrets: await readSecrets(options.secrets ?? {}),
    noCache: options.noCache ?? false,
    runRoot: runDir.dir,
    tmpPrefix: runDir.tmpPrefix,
    created: () => new Date(sde === undefined ? Date.now() : sde * 1000).toISOString(),
    ...(sde === undefined ? {} : { clampMtime: sde }),
    digests: new FileDigests(store.buildCache.dir),
    progress,
  };
  for (const node of globalNodes) {
    for (const [k, v] of argPairs(node, env)) {
      env.globalArgs.set(k, buildArgs[k] ?? v);
      if (Object.hasOwn(buildArgs, k)) env.usedArgs.add(k);
    }
  }
  const metaEnv = new Map([...env.globalArgs].filter((kv): kv is [string, string] => kv[1] !== undefined));
  // FROM's words: the image (expanded with the global ARGs) and `AS name`
  const froms = stages.map((s) => {
    // --platform is accepted; the host's platform is what a base image resolves to
    flagsOf(s.from, ['platform']);
    const words = s.from.args.split(/\s+/).filter(Boolean);
    if (words.length !== 1 && !(words.length === 3 && words[1]!.toUpperCase() === 'AS')) {
      throw new ValidationError(`Dockerfile:${s.from.line}: FROM requires either one or three arguments (FROM image [AS name])`, 'dockerfile');
    }
    if (words.length === 3) {
      s.name = words[2]!.toLowerCase();
      if (!/^[a-z][a-z0-9-_.]*$/.test(s.name)) throw new ValidationError(`Dockerfile:${s.from.line}: invalid name for build stage: "${words[2]}"`, 'dockerfile');
    }
    const image = expandWord(words[0]!, metaEnv, df.escape);
    if (!image) throw new ValidationError(`Dockerfile:${s.from.line}: base name (${words[0]}) should not be blank`, 'dockerfile');
    return image;
  });
  const byName = (ref: string): Stage | undefined => stages.find((s) => s.name === ref.toLowerCase()) ?? (/^\d+$/.test(ref) ? stages[Number(ref)] : undefined);
  const target = options.target === undefined ? stages.at(-1)! : stages.find((s) => s.name === options.target!.toLowerCase());
  if (!target) throw new ValidationError(`failed to reach build target ${options.target} in Dockerfile`, 'target');

  // The stages the target needs, through FROM, COPY --from and RUN --mount from= (by name or
  // index): a DAG, since a stage may only name an earlier one.
  const deps = new Map<number, Set<number>>();
  const visit = (s: Stage) => {
    if (deps.has(s.index)) return;
    const mine = new Set<number>();
    deps.set(s.index, mine);
    const base = byName(froms[s.index]!);
    if (base && base.index < s.index) mine.add(base.index);
    for (const n of s.nodes) {
      // COPY --from= and RUN --mount=…,from=…
      const refs = n.flags.flatMap((f) => (f.startsWith('--from=') ? [f.slice(7)] : /^--mount=/i.test(f) ? [...f.matchAll(/(?:=|,)from=([^,]+)/g)].map((m) => m[1]!) : []));
      for (const from of refs) {
        const dep = byName(expandWord(from, metaEnv, df.escape));
        if (dep && dep.index < s.index) mine.add(dep.index);
      }
    }
    for (const d of mine) visit(stages[d]!);
  };
  visit(target);
  const order = stages.filter((s) => deps.has(s.index));
  const total = globalNodes.length + order.reduce((n, s) => n + 1 + s.nodes.length, 0);
  let step = 0;
  for (const node of globalNodes) progress({ type: 'step', step: ++step, total, instruction: node.original });
  // each stage's step numbers are those of a build in file order, whatever order the stages run in
  const firstStep = new Map<number, number>();
  for (const s of order) {
    firstStep.set(s.index, step);
    step += 1 + s.nodes.length;
  }

  const cache = new BuildCache(store);
  // one for the whole build: the stages and the provenance share its stats
  const context = new ContextDir(contextDir);
  const pulled = new Map<string, Promise<Image>>();
  const getImage = async (ref: string) => {
    const image = await imageFor(ref, options, pulled);
    // how Image.get found it (image.ts's lookUp), for the plan to check that it still does
    const refsKey = /^sha256:[0-9a-f]{64}$/.test(ref) ? ref : (parseReference(ref).digest ?? parseReference(ref).toString());
    facts?.images.push({ refsKey, digest: image.digest, config: image.id, names: [...image.names], chains: image.layers.map((l) => l.chainId) });
    return image;
  };
  const history = new HistoryCache();
  for (const ref of options.cacheFrom ?? []) await importCache(cache, history, ref, getImage, progress);
  // Independent stages run at once; the first failure aborts the others (their RUN containers
  // are killed and removed) and is the build's error once they have all stopped.
  const abort = new AbortController();
  const printer = options.liveProgress ? undefined : new StagePrinter(progress, order.map((s) => s.index));
  const multiStage = stages.length > 1;
  const running = new Map<number, Promise<StageState>>();
  const layerDirs = async (state: StageState): Promise<string[]> => {
    const top = state.layers.at(-1);
    return top ? store.layers.lowerDirs(top.chainId) : [];
  };
  const stageOf = (ref: string, self: Stage): Promise<StageState> | undefined => {
    const stage = byName(ref);
    if (!stage) return undefined;
    const p = stage.index < self.index ? running.get(stage.index) : undefined;
    if (!p) throw new ValidationError(`COPY --from=${ref}: stage ${ref} is not built before this one`, 'dockerfile');
    return p;
  };
  const buildStage = async (s: Stage): Promise<StageState> => {
    await Promise.all([...deps.get(s.index)!].map((d) => running.get(d)!));
    const signal = abort.signal;
    const sink = printer ? printer.sink(s.index) : progress;
    const stageProgress = (e: BuildProgress) => sink({ ...e, stage: s.index });
    // BuildKit's vertex numbers: FROM and the steps that make a filesystem change, per stage
    const vertexCount = 1 + s.nodes.filter((n) => VERTEX_KEYWORDS.has(n.keyword)).length;
    let vertexAt = 0;
    const vertex = (node: DockerfileNode) => (VERTEX_KEYWORDS.has(node.keyword) ? { vertex: { stage: multiStage ? s.name ?? `stage-${s.index}` : undefined, n: ++vertexAt, of: vertexCount } } : {});
    let n = firstStep.get(s.index)!;
    const stageEnv: BuildEnv = { ...env, progress: stageProgress, signal, ...(facts ? { noteLookup: () => facts.lookups.set(n, (facts.lookups.get(n) ?? 0) + 1) } : {}) };
    const ctx: StepContext = {
      env: stageEnv,
      cache,
      context,
      layerDirs,
      ...(history.size ? { history } : {}),
      fromTree: async (ref: string): Promise<SourceTree> => {
        const dep = stageOf(ref, s);
        if (dep) return new StageTree(`stage ${ref}`, new LayeredRoot(await layerDirs(await dep)));
        const image = await getImage(ref);
        return new StageTree(`image ${ref}`, new LayeredRoot(await image.layerDirs()));
      },
    };
    signal.throwIfAborted();
    stageProgress({ type: 'step', step: ++n, total, instruction: s.from.original, ...vertex(s.from) });
    // FROM names an earlier stage, else an image (`FROM alpine AS alpine` is the image)
    const prev = (byName(froms[s.index]!)?.index ?? s.index) < s.index ? stageOf(froms[s.index]!, s) : undefined;
    const state = await baseState(s, froms[s.index]!, prev ? await prev : undefined, getImage);
    withDefaultPath(state);
    if (sde !== undefined && !prev) state.cacheKey = hashKey(state.cacheKey, 'SOURCE_DATE_EPOCH', sde);
    stageProgress({ type: 'stepDone', id: stepId(state) });
    const triggers = state.config.config?.OnBuild ?? [];
    if (triggers.length) {
      // a trigger's step output comes between FROM's lines: not what a plan's events can give
      if (facts) facts.unplannable = 'ONBUILD triggers';
      state.config = { ...state.config, config: { ...state.config.config, OnBuild: null } };
      for (const t of triggers) {
        signal.throwIfAborted();
        stageProgress({ type: 'warning', message: `# Executing 1 build trigger: ${t}` });
        await executeNode(splitNode(t, s.from.line, s.from.line), state, ctx);
      }
    }
    for (const node of s.nodes) {
      signal.throwIfAborted();
      stageProgress({ type: 'step', step: ++n, total, instruction: node.original, ...vertex(node) });
      await executeNode(node, state, ctx);
      stageProgress({ type: 'stepDone', id: stepId(state) });
    }
    return state;
  };
  let failure: { error: unknown } | undefined;
  for (const s of order) {
    const p = buildStage(s);
    running.set(s.index, p);
    p.then(
      () => printer?.finish(s.index),
      (error: unknown) => {
        // the first error is the build's; the others are the aborts it caused
        if (!failure) {
          failure = { error };
          progress({ type: 'failed', stage: s.index, message: error instanceof Error ? error.message : String(error) });
          abort.abort(error);
        }
      },
    );
  }
  await Promise.allSettled(running.values());
  env.digests?.save();
  printer?.flushAll();
  if (failure) throw failure.error;
  const unused = Object.keys(buildArgs).filter((k) => !env.usedArgs.has(k) && k !== 'SOURCE_DATE_EPOCH' && k !== 'BUILDKIT_INLINE_CACHE' && !['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'].includes(k));
  if (unused.length) progress({ type: 'warning', message: `[Warning] One or more build-args [${unused.join(' ')}] were not consumed` });
  const final = await running.get(target.index)!;
  // BuildKit's switch for inline cache metadata: each step's cache key, for a later --cache-from
  if (/^(1|true)$/i.test(buildArgs['BUILDKIT_INLINE_CACHE'] ?? '')) final.config = { ...final.config, [INLINE_CACHE_KEY]: final.stepKeys };
  if (options.labels && Object.keys(options.labels).length) {
    final.config = { ...final.config, config: { ...final.config.config, Labels: { ...(final.config.config?.Labels ?? {}), ...options.labels } } };
  }
  const git = await gitRevision(contextDir);
  if (facts) {
    facts.git = git;
    facts.cache = cache.touched;
    for (const p of running.values()) for (const l of (await p).layers) facts.chains.add(l.chainId);
  }
  const provenance: ProvenanceInput = {
    kind: 'build',
    created: final.config.created ?? startedOn,
    startedOn,
    author: final.config.author,
    dockerfile: {
      digest: sha256(Buffer.from(text)),
      path: options.dockerfileText !== undefined ? '-' : options.dockerfile ?? 'Dockerfile',
      instructions: df.nodes.map((n) => n.original),
    },
    buildArgs,
    context: { digest: await contextDigest(context, env.digests), ...(typeof options.context === 'string' ? { uri: `file://${contextDir}` } : {}) },
    base: final.base,
    source: final.config.config?.Labels?.['org.opencontainers.image.source'] ?? git.source,
    revision: final.config.config?.Labels?.['org.opencontainers.image.revision'] ?? git.revision,
    ...(options.target ? { parameters: { target: options.target } } : {}),
  };
  env.digests?.save();
  progress({ type: 'exporting' });
  return writeImage(store, final, names, options.root, provenance, facts);
}

async function readSecrets(given: NonNullable<BuildOptions['secrets']>): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const [id, v] of Object.entries(given)) {
    if (typeof v === 'string' || v instanceof Uint8Array) out.set(id, Buffer.from(v));
    else if ('file' in v) {
      try {
        out.set(id, await readFile(v.file));
      } catch (e) {
        throw new NotFoundError(`secret ${id}: cannot read ${v.file}: ${(e as Error).message}`, { path: v.file });
      }
    } else {
      const value = process.env[v.env];
      if (value === undefined) throw new NotFoundError(`secret ${id}: environment variable ${v.env} is not set`, { path: v.env });
      out.set(id, Buffer.from(value));
    }
  }
  return out;
}

function argPairs(node: DockerfileNode, env: BuildEnv): Array<[string, string | undefined]> {
  const vars = new Map([...env.globalArgs].filter((kv): kv is [string, string] => kv[1] !== undefined));
  return node.args.split(/\s+/).filter(Boolean).map((w): [string, string | undefined] => {
    if (!w.includes('=')) return [w, undefined];
    const [[k, v]] = keyValuePairs(w, vars, env.escape, 'ARG', false) as [[string, string]];
    return [k, v];
  });
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** As BuildKit (and buildah) do: a base without PATH in its Env gets the default one. */
function withDefaultPath(state: StageState): void {
  const env = state.config.config?.Env ?? [];
  if (env.some((e) => e.startsWith('PATH='))) return;
  state.config = { ...state.config, config: { ...state.config.config, Env: [DEFAULT_PATH, ...env] } };
}

/** A base image: from the store, else (or always, with `pull`) from its registry, once per build. */
async function imageFor(ref: string, options: BuildOptions, pulled: Map<string, Promise<Image>>): Promise<Image> {
  const where = options.root === undefined ? {} : { root: options.root };
  const auth = authFor(ref, options.registryAuth);
  const pull = () => Image.pull(ref, { ...where, ...(auth ? { auth } : {}) });
  if (options.pull) {
    let p = pulled.get(ref);
    if (!p) pulled.set(ref, (p = pull()));
    return p;
  }
  try {
    return await Image.get(ref, where);
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
    return pull();
  }
}

/**
 * The inline cache metadata's field in the image config: the cache key of each history entry
 * (null for the base image's), in history order. Not BuildKit's `moby.buildkit.cache.v0`, whose
 * keys are BuildKit's own: only an nsbox build reads these.
 */
const INLINE_CACHE_KEY = 'io.nsbox.build.cache.v0';
const inlineCacheSchema = z.array(z.string().nullable());

/**
 * A --cache-from image's steps: as cache entries when it has inline cache metadata (a history
 * entry's key, time and layer, its blob pulled with the image), and in any case as a candidate
 * for matching by history (history-cache.ts).
 */
async function importCache(cache: BuildCache, byHistory: HistoryCache, ref: string, getImage: (ref: string) => Promise<Image>, progress: (e: BuildProgress) => void): Promise<void> {
  let image: Image;
  try {
    image = await getImage(ref);
  } catch (e) {
    // as BuildKit does: a cache source that cannot be had is a warning, the build goes on without it
    progress({ type: 'warning', message: `WARNING: --cache-from ${ref}: ${(e as Error).message}` });
    return;
  }
  const parsed = inlineCacheSchema.safeParse(image.config[INLINE_CACHE_KEY]);
  const history = image.config.history ?? [];
  const layers = image.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, diffId: l.diffId, chainId: l.chainId }));
  byHistory.add({ history, diffIds: image.config.rootfs.diff_ids, layers });
  if (!parsed.success || parsed.data.length !== history.length) return;
  let n = 0;
  for (const [i, h] of history.entries()) {
    const layer = h.empty_layer ? null : image.layers[n++];
    const key = parsed.data[i];
    if (key === null || key === undefined || layer === undefined) continue;
    cache.import(key, { layer: layer && { digest: layer.digest, mediaType: layer.mediaType, size: layer.size, diffId: layer.diffId, chainId: layer.chainId }, created: h.created ?? new Date(0).toISOString() });
  }
}

/** X-Registry-Config's entry for the reference's registry (keys as docker writes them: a host, or a URL). */
function authFor(ref: string, auths: Record<string, Credentials> | undefined): Credentials | undefined {
  if (!auths) return undefined;
  const domain = parseReference(ref).domain;
  const hostOf = (k: string) => k.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  const want = domain === 'docker.io' ? ['docker.io', 'index.docker.io', 'registry-1.docker.io'] : [domain];
  const key = Object.keys(auths).find((k) => want.includes(hostOf(k)));
  return key === undefined ? undefined : auths[key];
}

async function baseState(s: Stage, ref: string, prev: StageState | undefined, getImage: (ref: string) => Promise<Image>): Promise<StageState> {
  if (prev) return { ...structuredClone(prev), index: s.index, name: s.name, args: new Map(), cmdSet: false, cacheOk: prev.cacheOk };
  if (ref.toLowerCase() === 'scratch') {
    const platform = hostPlatform();
    const config: ImageConfig = ImageConfigSchema.parse({ architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}), config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] });
    return { index: s.index, name: s.name, config, layers: [], args: new Map(), cmdSet: false, cacheKey: hashKey('scratch', config.architecture), stepKeys: [], cacheOk: true };
  }
  const image = await getImage(ref);
  await image.unpack();
  const { [INLINE_CACHE_KEY]: _inline, ...config } = structuredClone(image.config);
  return {
    base: { name: image.names[0] ? parseReference(image.names[0]).familiar : ref, digest: image.digest },
    index: s.index,
    name: s.name,
    config: { ...config, config: config.config ?? {}, history: config.history ?? [] },
    layers: image.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, diffId: l.diffId, chainId: l.chainId })),
    args: new Map(),
    cmdSet: false,
    cacheKey: hashKey('image', image.id),
    stepKeys: (config.history ?? []).map(() => null),
    cacheOk: true,
  };
}

async function writeImage(store: Store, state: StageState, names: string[], root: string | undefined, provenance: ProvenanceInput, facts?: BuildFacts): Promise<Image> {
  const { parsed: cfg, bytes: configBytes } = configOf(state);
  const configDigest = sha256(configBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: configBytes.length },
    layers: state.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  // the config's time (SOURCE_DATE_EPOCH's in a reproducible build), so the manifest stays reproducible
  const sealed = sealManifest(manifest, { ...provenance, created: cfg.created ?? provenance.created }, cfg, names);
  if (facts) {
    const { startedOn: _s, ...rest } = provenance;
    void _s;
    const platform = { os: cfg.os, architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) };
    facts.image = { manifest, platform, names, provenance: { ...rest, created: cfg.created ?? provenance.created }, configDigest, layers: state.layers.map((l) => ({ ...l })), created: cfg.created ?? provenance.created };
  }
  // An image already in place under every name (each name's journal ending at it) is left as it is:
  // a build that would make it again changes nothing (docker's legacy builder: the same id, the tags
  // already there), no new provenance, record or journal line.
  if (await inPlace(store, sealed.manifest.digest, configDigest, names, state.layers)) return Image.get(sealed.manifest.digest, root === undefined ? {} : { root });
  const loaded = await commitImage(
    store,
    {
      manifest: sealed.manifest,
      config: { bytes: configBytes, digest: configDigest, parsed: cfg },
      layers: state.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, member: { file: store.blobs.path(l.digest), digest: l.digest, size: l.size } })),
      extra: sealed.extra,
      names,
      index: sealed.index,
    },
    names,
    { by: 'build' },
  );
  return Image.get(loaded.digest, root === undefined ? {} : { root });
}

async function inPlace(store: Store, digest: string, config: string, names: string[], layers: Array<{ digest: string; chainId: string }>): Promise<boolean> {
  const entry = await store.images.get(digest);
  const index = entry?.record.index;
  if (!entry || entry.record.config !== config || !index || !names.every((n) => entry.names.includes(n))) return false;
  for (const n of names) if (!n.includes('@') && (await store.images.journal(n)).at(-1)?.digest !== digest) return false;
  for (const b of [digest, config, index, ...layers.map((l) => l.digest)]) if (!(await store.blobs.has(b))) return false;
  for (const l of layers) if (!(await store.layers.has(l.chainId))) return false;
  return true;
}
