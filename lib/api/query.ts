/** Query parameters as docker reads them: booleans, integers, and the JSON `filters` argument. */
import * as z from 'zod';
import { ApiError } from './api-error.js';

/** docker's boolean: absent, '', '0', 'false', 'no' are false; anything else is true. */
export function boolParam(q: URLSearchParams, name: string, fallback = false): boolean {
  const v = q.get(name);
  if (v === null) return fallback;
  return !['', '0', 'false', 'no', 'False', 'FALSE'].includes(v);
}

/** An integer parameter; undefined when absent or empty; 400 when not a number. */
export function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new ApiError(400, `invalid value for ${name}: ${JSON.stringify(v)} is not an integer`);
  return n;
}

// `{"name":{"web":true}}`, or the legacy `{"name":["web"]}`.
const FiltersSchema = z.record(z.string(), z.union([z.record(z.string(), z.boolean()), z.array(z.string())]));

/** The `filters` parameter as name → values. */
export function filtersParam(q: URLSearchParams): Map<string, string[]> {
  const raw = q.get('filters');
  const out = new Map<string, string[]>();
  if (!raw) return out;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    // SyntaxError, all JSON.parse throws: the client's bad JSON
    throw new ApiError(400, `invalid filter: ${raw}`);
  }
  const r = FiltersSchema.safeParse(json);
  if (!r.success) throw new ApiError(400, `invalid filter: ${raw}`);
  for (const [k, v] of Object.entries(r.data)) {
    out.set(k, Array.isArray(v) ? v : Object.entries(v).filter(([, on]) => on).map(([x]) => x));
  }
  return out;
}

/** A point in time as docker takes it in since/until: unix seconds (fractions allowed) or RFC 3339. */
export function timeParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new ApiError(400, `invalid value for ${name}: ${JSON.stringify(v)}`);
  return t / 1000;
}

/** docker's answer to a filter an endpoint does not have: 400, never the filter ignored (a reaper would remove everything). */
export function checkFilterKeys(filters: Map<string, string[]>, allowed: readonly string[]): void {
  for (const k of filters.keys()) if (!allowed.includes(k)) throw new ApiError(400, `invalid filter '${k}'`);
}

