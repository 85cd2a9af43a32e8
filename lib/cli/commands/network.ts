/**
 * nsbox network create|ls|inspect|rm|prune|connect|disconnect: docker's network commands over the
 * store's networks (lib/network/network-store.ts); connect and disconnect go through the engine
 * (lib/engine/network-connect.ts). `host` and `none` are listed as docker lists them; they are modes.
 */
import { createInterface } from 'node:readline/promises';
import { NotFoundError, ValidationError } from '../../errors.js';
import { Network } from '../../network.js';
import { PSEUDO_NETWORKS, pseudoNetwork, type NetworkJson } from '../../network/network-json.js';
import { matchesPseudoNetwork, type NetworkFilters } from '../../network/network-filters.js';
import { NetworkStore } from '../../network/network-store.js';
import { flag, parseArgs, value, values } from '../args.js';
import { formatRows } from '../format-template.js';
import { openEngine } from '../open-engine.js';
import { shortId, table } from '../output.js';

/** `--filter key=value`s as the store's filters (docker's keys). */
function filtersOf(specs: string[]): NetworkFilters & { scope?: string[] } {
  const f: Record<string, string[]> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new ValidationError(`bad format of filter (expected name=value): ${spec}`, 'filter');
    (f[spec.slice(0, eq)] ??= []).push(spec.slice(eq + 1));
  }
  const out: NetworkFilters & { scope?: string[] } = {};
  for (const [k, v] of Object.entries(f)) {
    if (k === 'dangling') {
      const b = v.at(-1)!;
      if (!['true', 'false', '1', '0'].includes(b)) throw new ValidationError(`invalid filter 'dangling=${b}'`, 'filter');
      out.dangling = b === 'true' || b === '1';
    } else if (['name', 'id', 'label', 'driver', 'type', 'scope', 'until'].includes(k)) {
      (out as Record<string, string[]>)[k] = v;
    } else throw new ValidationError(`invalid filter '${k}'`, 'filter');
  }
  return out;
}

async function create(rest: string[]): Promise<number> {
  const p = parseArgs(
    rest,
    [
      { names: ['driver', 'd'], kind: 'value' },
      { names: ['subnet'], kind: 'list' },
      { names: ['gateway'], kind: 'list' },
      { names: ['ip-range'], kind: 'list' },
      { names: ['internal'], kind: 'bool' },
      { names: ['ipv6'], kind: 'bool' },
      { names: ['attachable'], kind: 'bool' },
      { names: ['label'], kind: 'list' },
      { names: ['opt', 'o'], kind: 'list' },
      { names: ['ipam-driver'], kind: 'value' },
    ],
    { stopAtPositional: false },
  );
  if (p.positional.length !== 1) throw new ValidationError('"nsbox network create" requires exactly 1 argument.', 'name');
  const driver = value(p, 'driver') ?? 'bridge';
  if (driver !== 'bridge') throw new ValidationError(`plugin "${driver}" not found: nsbox has the bridge driver`, 'driver');
  if (values(p, 'ip-range').length) throw new ValidationError('--ip-range is not supported: nsbox allocates from the whole subnet', 'ip-range');
  const ipam = value(p, 'ipam-driver');
  if (ipam && ipam !== 'default') throw new ValidationError(`IPAM driver "${ipam}" not found: nsbox has the default one`, 'ipam-driver');
  const kv = (list: string[], what: string) =>
    Object.fromEntries(
      list.map((s) => {
        const eq = s.indexOf('=');
        if (what === 'opt' && eq <= 0) throw new ValidationError(`invalid ${what} "${s}": must be key=value`, what);
        return eq < 0 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
      }),
    );
  const subnets = values(p, 'subnet');
  const gateways = values(p, 'gateway');
  const v6 = (s: string) => s.includes(':');
  const [s4, s6] = [subnets.filter((s) => !v6(s)), subnets.filter(v6)];
  const [g4, g6] = [gateways.filter((s) => !v6(s)), gateways.filter(v6)];
  if (s4.length > 1 || s6.length > 1) throw new ValidationError('nsbox networks have one subnet of each family', 'subnet');
  const n = await Network.create({
    name: p.positional[0]!,
    internal: flag(p, 'internal'),
    ipv6: flag(p, 'ipv6'),
    labels: kv(values(p, 'label'), 'label'),
    options: kv(values(p, 'opt'), 'opt'),
    ...(s4[0] === undefined ? {} : { subnet: s4[0] }),
    ...(g4[0] === undefined ? {} : { gateway: g4[0] }),
    ...(s6[0] === undefined ? {} : { subnet6: s6[0] }),
    ...(g6[0] === undefined ? {} : { gateway6: g6[0] }),
  }, { owned: false });
  process.stdout.write(`${n.id}\n`);
  return 0;
}

async function ls(rest: string[]): Promise<number> {
  const p = parseArgs(rest, [
    { names: ['quiet', 'q'], kind: 'bool' },
    { names: ['filter', 'f'], kind: 'list' },
    { names: ['format'], kind: 'value' },
    { names: ['no-trunc'], kind: 'bool' },
  ]);
  const filters = filtersOf(values(p, 'filter'));
  if (filters.scope?.length && !filters.scope.includes('local')) return 0;
  const { scope: _scope, ...storeFilters } = filters;
  const store = await NetworkStore.open();
  await store.ensureDefault();
  const all: { id: string; name: string; driver: string; ipv6: boolean; internal: boolean; labels: Record<string, string>; created: string }[] = [...(await store.list(storeFilters)).map((r) => ({ id: r.id, name: r.name, driver: r.driver as string, ipv6: r.ipv6, internal: r.internal, labels: r.labels, created: r.created }))];
  for (const n of PSEUDO_NETWORKS) {
    if (matchesPseudoNetwork(n, filters)) all.push({ id: n.Id, name: n.Name, driver: n.Driver, ipv6: false, internal: false, labels: {}, created: n.Created });
  }
  all.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  const id = (s: string) => (flag(p, 'no-trunc') ? s : shortId(s));
  if (flag(p, 'quiet')) {
    process.stdout.write(all.map((n) => `${id(n.id)}\n`).join(''));
    return 0;
  }
  const format = value(p, 'format');
  if (format) {
    const rows = all.map((n) => ({
      ID: id(n.id),
      Name: n.name,
      Driver: n.driver,
      Scope: 'local',
      IPv6: String(n.ipv6),
      Internal: String(n.internal),
      Labels: Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(','),
      CreatedAt: n.created,
    }));
    process.stdout.write(formatRows(format, rows, { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', Labels: 'LABELS', CreatedAt: 'CREATED AT' }));
    return 0;
  }
  process.stdout.write(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], all.map((n) => [id(n.id), n.name, n.driver, 'local'])));
  return 0;
}

async function inspect(rest: string[]): Promise<number> {
  const p = parseArgs(rest, [{ names: ['format', 'f'], kind: 'value' }, { names: ['verbose', 'v'], kind: 'bool' }], { stopAtPositional: false });
  if (p.positional.length === 0) throw new ValidationError('"nsbox network inspect" requires at least 1 argument.', 'network');
  const out: NetworkJson[] = [];
  let failed = 0;
  for (const ref of p.positional) {
    try {
      out.push(pseudoNetwork(ref) ?? (await (await Network.get(ref)).inspect()));
    } catch (e) {
      failed++;
      process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
    }
  }
  const format = value(p, 'format');
  if (format) process.stdout.write(formatRows(format, out as unknown as Record<string, unknown>[], {}));
  else process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
  return failed ? 1 : 0;
}

async function rm(rest: string[]): Promise<number> {
  const p = parseArgs(rest, [{ names: ['force', 'f'], kind: 'bool' }], { stopAtPositional: false });
  if (p.positional.length === 0) throw new ValidationError('"nsbox network rm" requires at least 1 argument.', 'network');
  let failed = 0;
  for (const ref of p.positional) {
    try {
      const pseudo = pseudoNetwork(ref);
      if (pseudo) throw new ValidationError(`${pseudo.Name} is a pre-defined network and cannot be removed`, 'network');
      await Network.remove(ref);
      process.stdout.write(`${ref}\n`);
    } catch (e) {
      if (e instanceof NotFoundError && flag(p, 'force')) continue;
      failed++;
      process.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

async function prune(rest: string[]): Promise<number> {
  const p = parseArgs(rest, [{ names: ['force', 'f'], kind: 'bool' }, { names: ['filter'], kind: 'list' }]);
  const f = filtersOf(values(p, 'filter'));
  const extra = Object.keys(f).filter((k) => k !== 'label' && k !== 'until');
  if (extra.length) throw new ValidationError(`invalid filter '${extra[0]}': prune takes label and until`, 'filter');
  if (!flag(p, 'force')) {
    process.stdout.write('WARNING! This will remove all custom networks not used by at least one container.\n');
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question('Are you sure you want to continue? [y/N] ').finally(() => rl.close());
    if (!/^y(es)?$/i.test(answer.trim())) return 0;
  }
  const names = await Network.prune(f);
  if (names.length) process.stdout.write(`Deleted Networks:\n${names.map((n) => `${n}\n`).join('')}`);
  return 0;
}

/** docker network connect [--alias A]... [--ip IP] NETWORK CONTAINER: at once when it runs, and at each later start. */
async function connect(rest: string[]): Promise<number> {
  const p = parseArgs(
    rest,
    [
      { names: ['alias'], kind: 'list' },
      { names: ['ip'], kind: 'value' },
      { names: ['ip6'], kind: 'value' },
      { names: ['link'], kind: 'list' },
      { names: ['link-local-ip'], kind: 'list' },
      { names: ['driver-opt'], kind: 'list' },
    ],
    { stopAtPositional: false },
  );
  if (p.positional.length !== 2) throw new ValidationError('"nsbox network connect" requires exactly 2 arguments: NETWORK CONTAINER', 'network');
  for (const f of ['link', 'link-local-ip'] as const) {
    if (values(p, f).length || value(p, f)) throw new ValidationError(`--${f} is not supported by nsbox's network connect`, f);
  }
  const [net, container] = p.positional as [string, string];
  const ip = value(p, 'ip');
  const ip6 = value(p, 'ip6');
  await (await openEngine()).connect(container, net, { aliases: values(p, 'alias'), ...(ip ? { ipv4Address: ip } : {}), ...(ip6 ? { ipv6Address: ip6 } : {}) });
  return 0;
}

/** docker network disconnect [-f] NETWORK CONTAINER. */
async function disconnect(rest: string[]): Promise<number> {
  const p = parseArgs(rest, [{ names: ['force', 'f'], kind: 'bool' }], { stopAtPositional: false });
  if (p.positional.length !== 2) throw new ValidationError('"nsbox network disconnect" requires exactly 2 arguments: NETWORK CONTAINER', 'network');
  const [net, container] = p.positional as [string, string];
  await (await openEngine()).disconnect(container, net, { force: flag(p, 'force') });
  return 0;
}

export default async function network(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create':
      return create(rest);
    case 'ls':
    case 'list':
      return ls(rest);
    case 'inspect':
      return inspect(rest);
    case 'rm':
    case 'remove':
      return rm(rest);
    case 'prune':
      return prune(rest);
    case 'connect':
      return connect(rest);
    case 'disconnect':
      return disconnect(rest);
    default:
      throw new ValidationError(`"nsbox network" takes create, ls, inspect, rm, prune, connect or disconnect${sub ? `, not ${sub}` : ''}`, 'command');
  }
}
