/**
 * docker's network filters: values of one key are alternatives, keys all have to match. `name` and
 * `id` are unanchored regular expressions as docker's (a plain word is a substring), `label` is
 * `key` or `key=value`, `type` is `builtin` (the default network) or `custom`, `dangling` is
 * whether no container is attached, `until` a time (RFC 3339, Unix seconds or a Go duration ago).
 */
import { ValidationError } from '../errors.js';
import { DEFAULT_NETWORK, type NetworkRecord } from './schemas.js';
import { goDurationNs } from '../go-duration.js';

export interface NetworkFilters {
  name?: string[];
  id?: string[];
  label?: string[];
  driver?: string[];
  type?: string[];
  dangling?: boolean;
  until?: string[];
}

function matchesPattern(pattern: string, value: string): boolean {
  try {
    return new RegExp(pattern).test(value);
  } catch (err) {
    // SyntaxError: no regular expression (`web[`), matched as plain text
    if (!(err instanceof SyntaxError)) throw err;
    return value.includes(pattern);
  }
}

/** docker's `label` filter, for images, containers, networks and volumes: every `key` present and every `key=value` equal. */
export function matchesLabels(labels: Record<string, string> | null | undefined, wanted: readonly string[]): boolean {
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    const key = eq < 0 ? w : w.slice(0, eq);
    // Own keys only: `label=constructor` must not match every object through its prototype.
    return labels != null && Object.hasOwn(labels, key) && (eq < 0 || labels[key] === w.slice(eq + 1));
  });
}


/** docker's `until`: a time, Unix seconds, or a duration before now (`24h`, `1h30m`). */
export function parseUntil(text: string, now: Date = new Date()): Date {
  if (/^\d+(\.\d+)?$/.test(text)) return new Date(Number(text) * 1000);
  const ns = goDurationNs(text);
  if (ns !== undefined) return new Date(now.getTime() - ns / 1e6);
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new ValidationError(`invalid filter 'until=${text}': a time, Unix seconds or a duration such as 24h`, 'until');
  return new Date(t);
}

export function matchesNetworkFilters(n: NetworkRecord, f: NetworkFilters, inUse: boolean, now: Date = new Date()): boolean {
  const builtin = n.name === DEFAULT_NETWORK;
  if (f.name?.length && !f.name.some((p) => matchesPattern(p, n.name))) return false;
  if (f.id?.length && !f.id.some((p) => matchesPattern(p, n.id))) return false;
  if (f.label?.length && !matchesLabels(n.labels, f.label)) return false;
  if (f.driver?.length && !f.driver.includes(n.driver)) return false;
  if (f.type?.length) {
    for (const t of f.type) if (t !== 'custom' && t !== 'builtin') throw new ValidationError(`invalid filter: 'type'='${t}'`, 'type');
    if (!f.type.includes(builtin ? 'builtin' : 'custom')) return false;
  }
  if (f.dangling !== undefined && f.dangling !== (!inUse && !builtin)) return false;
  if (f.until?.length && !f.until.every((u) => Date.parse(n.created) < parseUntil(u, now).getTime())) return false;
  return true;
}

/**
 * docker's `host` and `none` networks (listed, never stored) through the same filters: they are
 * builtin, never dangling, and older than any `until`.
 */
export function matchesPseudoNetwork(n: { Name: string; Id: string; Labels: Record<string, string>; Driver: string }, f: NetworkFilters): boolean {
  if (f.name?.length && !f.name.some((p) => matchesPattern(p, n.Name))) return false;
  if (f.id?.length && !f.id.some((p) => matchesPattern(p, n.Id))) return false;
  if (f.label?.length && !matchesLabels(n.Labels, f.label)) return false;
  if (f.driver?.length && !f.driver.includes(n.Driver)) return false;
  if (f.type?.length && !f.type.includes('builtin')) return false;
  return f.dangling !== true && !f.until?.length;
}
