/**
 * `EventLog`: the engine's events in docker's `/events` form, kept for a while so that `since` can
 * look back, and passed on live to each `/events` stream.
 */
import type { EngineEvent } from '../engine/engine.js';

export interface DockerEvent {
  status: string;
  id: string;
  from?: string;
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
}

export function dockerEvent(e: EngineEvent): DockerEvent {
  const ms = e.time.getTime();
  return {
    status: e.action,
    id: e.id,
    ...(e.type === 'container' && e.attributes['image'] ? { from: e.attributes['image'] } : {}),
    Type: e.type,
    Action: e.action,
    Actor: { ID: e.id, Attributes: e.attributes },
    scope: 'local',
    time: Math.floor(ms / 1000),
    timeNano: ms * 1_000_000,
  };
}

/** docker's event filters: type, event/action, container/image (id, prefix or name), label. */
const FUZZY_EVENTS = new Set(['health_status', 'exec_create', 'exec_start']);

export function eventMatches(e: DockerEvent, filters: Map<string, string[]>): boolean {
  const any = (key: string, test: (v: string) => boolean) => {
    const wanted = filters.get(key);
    return !wanted || wanted.length === 0 || wanted.some(test);
  };
  const names = (v: string) => e.Actor.ID === v || e.Actor.ID.startsWith(v) || e.Actor.Attributes['name'] === v;
  return (
    any('type', (v) => v === e.Type) &&
    // docker's #25798: these three match their `name: detail` actions by prefix.
    any('event', (v) => v === e.Action || (FUZZY_EVENTS.has(v) && e.Action.startsWith(v))) &&
    any('container', (v) => e.Type === 'container' && names(v)) &&
    any('image', (v) => e.Actor.Attributes['image'] === v || (e.Type === 'image' && names(v))) &&
    any('label', (v) => {
      const [k, val] = v.split('=');
      return k !== undefined && k in e.Actor.Attributes && (val === undefined || e.Actor.Attributes[k] === val);
    })
  );
}

export class EventLog {
  readonly #kept: DockerEvent[] = [];
  readonly #listeners = new Set<(e: DockerEvent) => void>();
  readonly #max: number;

  constructor(max = 1000) {
    this.#max = max;
  }

  add(e: EngineEvent): void {
    const d = dockerEvent(e);
    this.#kept.push(d);
    if (this.#kept.length > this.#max) this.#kept.shift();
    for (const l of this.#listeners) l(d);
  }

  /** Events at or after `since` (unix seconds). */
  since(since: number): DockerEvent[] {
    return this.#kept.filter((e) => e.timeNano / 1e9 >= since);
  }

  subscribe(listener: (e: DockerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
