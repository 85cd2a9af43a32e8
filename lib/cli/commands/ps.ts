/**
 * nsbox ps [-a] [-q] [-n N] [--no-trunc] [--filter k=v]…: the engine's container records,
 * reconciled as they are read; docker's filters (engine/container-filters.ts). Read without loading the engine (engine/container-list.ts) unless a record needs it.
 */
import { readContainerList } from '../../engine/container-list.js';
import { exitCodeOf, timeAgo } from '../../engine/container-status.js';
import { containerStatusText } from '../../engine/health.js';
import type { ContainerSummary } from '../../engine/record-summary.js';
import { displayPorts, dockerPortList } from '../../network/docker-ports.js';
import { parseReference } from '../../image/reference.js';
import { filterMap, flag, parseArgs, value, values } from '../args.js';
import { checkContainerFilters, matchesContainerFilters } from '../../engine/container-filters.js';
import { shortId, table, writeOut } from '../output.js';

async function list(all: boolean): Promise<ContainerSummary[]> {
  const records = await readContainerList({ all });
  if (records) return records;
  const { openEngine } = await import('../open-engine.js');
  return (await openEngine()).list({ all });
}

export default async function ps(argv: string[]): Promise<number> {
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
  checkContainerFilters(filters);
  let records = await list(flag(p, 'all') || last !== undefined || filters.has('status'));
  if (filters.size) records = records.filter((r) => matchesContainerFilters(r, filters));
  if (last !== undefined) records = records.slice(0, Number(last));
  const full = flag(p, 'no-trunc');
  const id = (r: ContainerSummary) => (full ? r.id : shortId(r.id));
  if (flag(p, 'quiet')) {
    writeOut(records.map((r) => `${id(r)}\n`).join(''));
    return 0;
  }
  const command = (r: ContainerSummary) => {
    const c = [...r.entrypoint, ...r.command].join(' ');
    return `"${full || c.length <= 20 ? c : `${c.slice(0, 19)}…`}"`;
  };
  // docker's PORTS: the published ports of a running container (the nft table is IPv4: 0.0.0.0 only).
  const ports = (r: ContainerSummary) => (r.state === 'running' || r.state === 'paused' ? displayPorts(dockerPortList(r.network?.state?.ports ?? [], [], { ipv6: false })) : '');
  const image = (r: ContainerSummary) => (r.image ? parseReference(r.image.ref).familiar : (r.rootfs ?? ''));
  if (value(p, 'format') === 'json') {
    // docker's `--format json`: one object a line, its fields as docker names them.
    const line = (r: ContainerSummary) => ({ ID: id(r), Image: image(r), Command: command(r), CreatedAt: r.created, RunningFor: timeAgo(r.created), Status: containerStatusText(r), State: r.state, Names: r.name, Ports: ports(r), ExitCode: r.state === 'exited' ? exitCodeOf(r) : 0 });
    writeOut(records.map((r) => `${JSON.stringify(line(r))}\n`).join(''));
    return 0;
  }
  writeOut(
    table(
      ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
      records.map((r) => [id(r), image(r), command(r), timeAgo(r.created), containerStatusText(r), ports(r), r.name]),
    ),
  );
  return 0;
}
