/**
 * What a build stage has made so far: the image config (container config, history, diff ids), the
 * layers, the ARGs it declared, and its cache key chain. Plus the shapes of the build's options
 * and progress events, shared by the builder's parts.
 */
import { createHash } from 'node:crypto';
import { ImageConfigSchema, type ImageConfig } from '../image/registry/manifest.js';
import type { NetworkMode } from '../network/index.js';
import type { Store } from '../storage/index.js';
import type { FileDigests } from './file-digests.js';
import type { BuiltLayer } from './step-layer.js';

/**
 * A progress event. `stage` is the index of the stage it comes from (none for the global ARGs,
 * warnings of the whole build and 'exporting'): with stages running at once, it tells a stage's
 * events apart. A step that BuildKit shows as a vertex of its own (FROM, RUN, COPY, ADD, WORKDIR)
 * carries `vertex`: its stage's label (undefined in a one-stage build) and its number among the
 * stage's vertices, as BuildKit's `[stage-1 2/3]`.
 */
export type BuildProgress = (
  | { type: 'step'; step: number; total: number; instruction: string; vertex?: { stage: string | undefined; n: number; of: number } }
  | { type: 'cached' }
  | { type: 'running'; container: string }
  | { type: 'output'; data: Buffer }
  | { type: 'removed'; container: string }
  | { type: 'stepDone'; id: string }
  | { type: 'warning'; message: string }
  /** The target stage is being written as an image (after its last step). */
  | { type: 'exporting' }
  /** The stage failed with this error (the build's first; the other stages are then stopped). */
  | { type: 'failed'; message: string }
) & { stage?: number };

export interface StageState {
  index: number;
  name: string | undefined;
  config: ImageConfig;
  layers: BuiltLayer[];
  /** ARGs declared in this stage, with their values (undefined: declared without one). */
  args: Map<string, string | undefined>;
  /** Whether CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
  cacheKey: string;
  /** Each history entry's cache key (null for the base image's): the inline cache metadata, when asked for. */
  stepKeys: Array<string | null>;
  /** False after the first step that missed the cache (or with noCache). */
  cacheOk: boolean;
  /** The image the stage's chain of FROMs starts at (for provenance); none for scratch. */
  base?: { name: string; digest: string };
}

export interface BuildEnv {
  store: Store;
  escape: string;
  buildArgs: Record<string, string>;
  /** Global ARGs (before the first FROM) with their values. */
  globalArgs: Map<string, string | undefined>;
  /** Build args some ARG consumed. */
  usedArgs: Set<string>;
  network: NetworkMode;
  /** RUN --mount=type=secret values by id: kept in memory, never in a key, a layer or the history. */
  secrets: ReadonlyMap<string, Buffer>;
  noCache: boolean;
  /** This build's run directory (build-run-dir.ts): its RUN containers, secrets and bind copies. */
  runRoot: string;
  /** This build's temp names in the store's tmp directory start with it, so a sweep finds a killed build's. */
  tmpPrefix: string;
  created: () => string;
  clampMtime?: number;
  /** The sources' file digests, remembered by stat across builds. */
  digests?: FileDigests;
  progress: (e: BuildProgress) => void;
  /** Told of each cache lookup a step makes (a build plan's `---> Using cache` lines: build-plan.ts). */
  noteLookup?: () => void;
  /** Aborted when another stage of the build failed: a running step stops (its container killed). */
  signal?: AbortSignal;
}

export const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

export const hashKey = (...parts: unknown[]) => `sha256:${createHash('sha256').update(JSON.stringify(parts)).digest('hex')}`;

/** name → value of the config's Env. */
export function envMap(config: ImageConfig): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of config.config?.Env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) m.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return m;
}

/** The variables an instruction's words are expanded with: the declared ARGs under the ENV. */
export function expansionEnv(state: StageState): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of state.args) if (v !== undefined) m.set(k, v);
  for (const [k, v] of envMap(state.config)) m.set(k, v);
  return m;
}

/** The ARGs (with values) a RUN sees as environment variables, minus those ENV sets. */
export function runArgs(state: StageState): Array<[string, string]> {
  const env = envMap(state.config);
  return [...state.args].filter((kv): kv is [string, string] => kv[1] !== undefined && !env.has(kv[0])).sort(([a], [b]) => (a < b ? -1 : 1));
}

/**
 * The image config the stage has made so far, as it is written: created at its last step's time,
 * so that a build that was all cache hits makes the same config, the same image.
 */
export function configBytes(state: StageState): { parsed: ImageConfig; bytes: Buffer } {
  const created = state.config.history?.at(-1)?.created ?? state.config.created ?? new Date(0).toISOString();
  const parsed = ImageConfigSchema.parse({ ...state.config, created });
  return { parsed, bytes: Buffer.from(JSON.stringify(parsed)) };
}

/** The id docker shows for the image a step leaves: its config's digest (the last step's is the image's). */
export function stepId(state: StageState): string {
  return `sha256:${createHash('sha256').update(configBytes(state).bytes).digest('hex')}`;
}
