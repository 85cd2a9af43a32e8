/** What the engine's parts share: the store, the event emitter, and where a container's bundle is. */
import { join } from 'node:path';
import type { ContainerStore } from './container-store.js';
import type { RemovalClaims } from './removal-claims.js';
import type { StoreLayout } from '../storage/layout.js';
import type { Owner } from './owners.js';
import type { PreparedCgroups } from './prepared-cgroups.js';
import type { SpareShims } from '../runtime/spare-shims.js';

export interface EngineEvent {
  type: 'container' | 'image' | 'volume' | 'network';
  action: string;
  id: string;
  attributes: Record<string, string>;
  time: Date;
}

export interface EngineContext {
  readonly store: ContainerStore;
  readonly root: string;
  /** Emits a container event, its attributes docker's (name, image) and `extra`. */
  emit(action: string, r: { id: string; name?: string; image?: { ref: string } | undefined }, extra?: Record<string, string>): void;
  emitEvent(e: EngineEvent): void;
  /** Emits 'die' for the record's exit, unless it was told already. */
  emitDie(r: { id: string; name?: string; image?: { ref: string } | undefined; finishedAt?: string | undefined; exitCode: number | null; signal: string | null }): void;
  /** Reports what went wrong off the caller's path (a --rm removal after the exit, an exec's release). */
  warn(what: string, e: unknown): void;
  /** The --rm containers this engine removes itself when they exit. */
  readonly claims: RemovalClaims;
  /** The process whose containers, networks and volumes these are (owners.ts); none for the CLI and the daemon. */
  readonly owner?: Owner;
  /** Shims started ahead for this engine's starts, while a long-lived caller keeps them (Engine.keepSpareShims). */
  spares?: SpareShims;
  /** Cgroups made ahead of starts, while a long-lived caller keeps them (Engine.keepCgroupsAhead). */
  prepared?: PreparedCgroups;
}

/** `<store>/containers/<id>/shim`: the shim's directory for every start of the container. */
export const containerBundle = (layout: StoreLayout, id: string): string => join(layout.container(id), 'shim');
export const bundlePath = (ctx: Pick<EngineContext, 'store'>, id: string): string => containerBundle(ctx.store.layout, id);
