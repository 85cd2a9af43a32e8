/**
 * `--cache-from` images without inline cache metadata (an image pulled from a registry, built
 * elsewhere), matched step by step by their history, as docker's classic builder does: an image
 * is a candidate for the next step when the stage so far is its beginning (the same history
 * entries, times included, and the same layer diff ids), and the step is its next history entry
 * when that entry's `created_by` is the step's. The step then takes the entry's time and layer, so
 * a build that matches to its end gives the image itself.
 *
 * `created_by` names a RUN's command and build args, but not a COPY's or ADD's content, nor that
 * of a RUN's bind mount: such a step is made, and matches only when the layer it made has the
 * candidate's diff id (the caller compares); it then takes the candidate's time, so the steps
 * after it can still match.
 */
import type { ImageConfig } from '../image/registry/manifest.js';
import type { BuiltLayer } from './step-layer.js';
import type { StageState } from './stage-state.js';

type HistoryEntry = NonNullable<ImageConfig['history']>[number];

export interface HistoryCandidate {
  history: HistoryEntry[];
  diffIds: string[];
  /** The layer of each diff id, its blob in the store. */
  layers: BuiltLayer[];
}

export interface HistoryMatch {
  created: string;
  /** null for an entry with `empty_layer`. */
  layer: BuiltLayer | null;
}

const sameEntry = (a: HistoryEntry, b: HistoryEntry) => a.created_by === b.created_by && a.created === b.created && !!a.empty_layer === !!b.empty_layer;

export class HistoryCache {
  readonly #candidates: HistoryCandidate[] = [];

  get size(): number {
    return this.#candidates.length;
  }

  add(candidate: HistoryCandidate): void {
    this.#candidates.push(candidate);
  }

  /** The entry a candidate has for the step after `state` when its `created_by` is `createdBy`. */
  match(state: StageState, createdBy: string): HistoryMatch | undefined {
    const history = state.config.history ?? [];
    const diffIds = state.config.rootfs.diff_ids;
    for (const c of this.#candidates) {
      const next = c.history[history.length];
      if (!next || next.created_by !== createdBy || next.created === undefined) continue;
      if (!history.every((h, i) => sameEntry(h, c.history[i]!))) continue;
      if (c.diffIds.length < diffIds.length || !diffIds.every((d, i) => c.diffIds[i] === d)) continue;
      if (next.empty_layer) return { created: next.created, layer: null };
      const layer = c.layers[diffIds.length];
      if (layer) return { created: next.created, layer };
    }
    return undefined;
  }
}
