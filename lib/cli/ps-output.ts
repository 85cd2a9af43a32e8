/**
 * `nsbox ps [-a] [-q] [-n N] [--no-trunc] [--format json] [--filter k=v]…`'s arguments and output, over a list of
 * container summaries from `source`: the full command (commands/ps.ts) and the quick one
 * (quick/ps.ts) print what it makes alike.
 */
import { exitCodeOf, statusText, timeAgo } from '../engine/container-status.js';
import type { ContainerSummary } from '../engine/record-summary.js';
import type { HealthStatus } from '../runtime/bundle.js';
import { displayPorts, dockerPortList, hasIpv6 } from '../network/docker-ports.js';
import { parseReference } from '../image/reference.js';
import { filterMap, flag, parseArgs, value, values } from './args.js';
import { shortId, table } from './output.js';

export interface PsSource {
  /** Running and paused containers, or all; undefined when this source cannot answer. */
  list(all: boolean): Promise<ContainerSummary[] | undefined>;
  /** The health status the Status column shows (undefined: none). */
  health(r: ContainerSummary): HealthStatus | undefined;
  /** docker's --filter (engine/container-filters.ts); without it, a --filter is more than this source answers. */
  filters?: { check(filters: Map<string, string[]>): void; matches(r: ContainerSummary, filters: Map<string, string[]>): boolean };
}

/** What `ps` prints, or undefined when `source` cannot answer. */
export async function psOutput(argv: string[], source: PsSource): Promise<string | undefined> {
  const p = parseArgs(argv, [
    { names: ['all', 'a'], kind: 'bool' },
    { names: ['quiet', 'q'], kind: 'bool' },
    { names: ['last', 'n'], kind: 'value' },
    { names: ['no-trunc'], kind: 'bool' },
    { names: ['format'], kind: 'value' },
    { names: ['filter', 'f'], kind: 'list' },
  ]);
  const last = value(p, 'last');
  const filters = filterMap(values(p, 'filter'));
  if (filters.size && !source.filters) return undefined;
  source.filters?.check(filters);
  let records = await source.list(flag(p, 'all') || last !== undefined || filters.has('status'));
  if (!records) return undefined;
  if (filters.size) records = records.filter((r) => source.filters!.matches(r, filters));
  if (last !== undefined) records = records.slice(0, Number(last));
  const full = flag(p, 'no-trunc');
  const id = (r: ContainerSummary) => (full ? r.id : shortId(r.id));
  if (flag(p, 'quiet')) {
    return records.map((r) => `${id(r)}\n`).join('');
  }
  const now = Date.now();
  const status = (r: ContainerSummary) => statusText(r, now, source.health(r));
  const command = (r: ContainerSummary) => {
    const c = [...r.entrypoint, ...r.command].join(' ');
    return `"${full || c.length <= 20 ? c : `${c.slice(0, 19)}…`}"`;
  };
  // docker's PORTS: the published ports of a running container (every address: 0.0.0.0, and [::]
  // when the container has an IPv6 address, where nsbox holds and forwards them on IPv6 too).
  const ports = (r: ContainerSummary) => (r.state === 'running' || r.state === 'paused' ? displayPorts(dockerPortList(r.network?.state?.ports ?? [], [], { ipv6: hasIpv6(r.network?.state) })) : '');
  const image = (r: ContainerSummary) => (r.image ? parseReference(r.image.ref).familiar : (r.rootfs ?? ''));
  if (value(p, 'format') === 'json') {
    // docker's `--format json`: one object a line, its fields as docker names them.
    const line = (r: ContainerSummary) => ({ ID: id(r), Image: image(r), Command: command(r), CreatedAt: r.created, RunningFor: timeAgo(r.created), Status: status(r), State: r.state, Names: r.name, Ports: ports(r), ExitCode: r.state === 'exited' ? exitCodeOf(r) : 0 });
    return records.map((r) => `${JSON.stringify(line(r))}\n`).join('');
  }
  return table(
    ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
    records.map((r) => [id(r), image(r), command(r), timeAgo(r.created), status(r), ports(r), r.name]),
  );
}
