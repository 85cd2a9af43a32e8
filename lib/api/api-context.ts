/** What the route handlers share: the engine, the daemon's exec instances and its event log. */
import type { EventEmitter } from 'node:events';
import type { Engine } from '../engine/engine.js';
import type { EventLog } from './event-log.js';
import type { ExecInstances } from '../engine/exec-instances.js';

export interface ApiContext {
  readonly engine: Engine;
  readonly execs: ExecInstances;
  readonly events: EventLog;
  /**
   * Containers an attach client waits on (attached before start, as `docker run` does): their start
   * asks the shim to keep the output for the attach.
   */
  readonly attachWaiters: Map<string, number>;
  /**
   * `(id, bundle)` as soon as a start's shim runs the container, before the engine's record says
   * so: the attach clients waiting for it connect to the shim then (its output and exit wait for them).
   */
  readonly shimStarts: EventEmitter;
  /** nsbox's version (package.json). */
  readonly version: string;
}
