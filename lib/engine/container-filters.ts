/**
 * docker's container filters, for `nsbox ps --filter` and `GET /containers/json` alike: id (a
 * prefix), name (a substring), status, health, ancestor (the image by name, name:tag or id), network
 * (by name or id prefix), label (every one must match, as docker's MatchKVList: compose asks for
 * project=…, service=… and oneoff=… at once). Other keys than label: any of the values matches.
 * Works on a full record or a listing's summary (unread fields are passed through).
 */
import { ValidationError } from '../errors.js';
import { parseReference } from '../image/reference.js';
import { matchesLabels } from '../network/network-filters.js';
import { matchesHealthFilter } from './health.js';
import type { ContainerSummary } from './record-summary.js';

export const CONTAINER_FILTERS = ['id', 'name', 'status', 'health', 'ancestor', 'network', 'label'] as const;
const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];
const HEALTH = ['starting', 'healthy', 'unhealthy', 'none'];

type Filterable = Pick<ContainerSummary, 'id' | 'name' | 'state' | 'image' | 'supervisor'> & { options?: unknown; network?: unknown };

/** Rejects what docker rejects: an unknown key, a status or health docker does not have. */
export function checkContainerFilters(filters: Map<string, string[]>): void {
  for (const [k, vs] of filters) {
    if (!(CONTAINER_FILTERS as readonly string[]).includes(k)) throw new ValidationError(`invalid filter '${k}'`, 'filter');
    if (k === 'status') for (const v of vs) if (!STATUSES.includes(v)) throw new ValidationError(`invalid filter 'status=${v}'`, 'filter');
    if (k === 'health') for (const v of vs) if (!HEALTH.includes(v)) throw new ValidationError(`invalid filter 'health=${v}'`, 'filter');
  }
}

const repoOf = (ref: string): string | undefined => {
  try {
    return parseReference(ref).name;
  } catch (e) {
    // not a reference (an id, a path): matched otherwise
    if (e instanceof ValidationError) return undefined;
    throw e;
  }
};

/** ancestor=busybox, busybox:1, docker.io/library/busybox:1, sha256:…, or an id prefix. */
function matchesAncestor(image: { ref: string; digest: string } | undefined, v: string): boolean {
  if (!image) return false;
  const hex = v.replace(/^sha256:/, '');
  if (/^[0-9a-f]{6,64}$/.test(hex) && image.digest.replace(/^sha256:/, '').startsWith(hex)) return true;
  if (image.ref === v) return true;
  const [mine, wanted] = [repoOf(image.ref), repoOf(v)];
  if (!mine || !wanted || mine !== wanted) return false;
  // a name without a tag matches every tag; with one, that tag
  return !/[:@][^/]*$/.test(v) || parseReference(image.ref).toString() === parseReference(v).toString();
}

/** The networks the container is on (running) or asked for (created, stopped): names and ids. */
function networksOf(r: Filterable): string[] {
  const n = r.network as { options?: { networks?: Array<{ network: string }> }; state?: { endpoints?: Array<{ networkName: string; networkId: string }> } } | undefined;
  return [...(n?.state?.endpoints ?? []).flatMap((e) => [e.networkName, e.networkId]), ...(n?.options?.networks ?? []).map((x) => x.network)];
}

export function matchesContainerFilters(r: Filterable, filters: Map<string, string[]>): boolean {
  const any = (key: string, test: (v: string) => boolean) => {
    const wanted = filters.get(key);
    return !wanted || wanted.length === 0 || wanted.some(test);
  };
  const labels = (r.options as { labels?: Record<string, string> } | undefined)?.labels ?? {};
  return (
    any('id', (v) => r.id.startsWith(v)) &&
    any('name', (v) => r.name.includes(v.replace(/^\//, ''))) &&
    any('status', (v) => v === r.state) &&
    any('health', (v) => matchesHealthFilter(r, v)) &&
    any('ancestor', (v) => matchesAncestor(r.image, v)) &&
    any('network', (v) => networksOf(r).some((n) => n === v || (/^[0-9a-f]{6,}$/.test(v) && n.startsWith(v)))) &&
    matchesLabels(labels, filters.get('label') ?? [])
  );
}
