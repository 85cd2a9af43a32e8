/**
 * `NetworkStore`: the networks of a store root, shared by every process that opens it (CLIs, the
 * daemon, SDK users). Each network is `<root>/networks/<id>.json`, written atomically; creation,
 * removal and repair hold `networks.lock` exclusively (allocation holds it shared), so names stay
 * unique and subnets never overlap whichever processes race. Creating a network touches no kernel
 * state: its bridge is made when the first container attaches, and goes with the network.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import * as z from 'zod';
import { InvalidStateError, NetworkConflictError, NotFoundError, NsboxError, ValidationError, reportCleanupError } from '../errors.js';
import { native } from '../native.js';
import { withLock, writeFileAtomic } from '../storage/atomic.js';
import { isCode } from '../storage/errors.js';
import { StoreLayout, defaultRoot } from '../storage/layout.js';
import { contains, formatCidr, formatIp, lastAddress, parseCidr, parseIp, sizeOf, type Cidr } from './cidr.js';
import { removeBridge } from './bridge.js';
import { Ipam, readNetworkRecord } from './ipam.js';
import { matchesNetworkFilters, type NetworkFilters } from './network-filters.js';
import { DEFAULT_NETWORK, bridgeName, type NetworkRecord } from './schemas.js';
import { collision, defaultPools, ipv6Pools, pickSubnet, readRoutes, routeTaken, userPools } from './subnet-pools.js';

export type { NetworkFilters } from './network-filters.js';

export interface NetworkStoreOptions {
  /** The store's root (default: NSBOX_ROOT, /var/lib/nsbox as root, else under XDG_DATA_HOME). */
  root?: string;
  /** Where the routes are read from (default /proc/net: the namespace this process runs in). */
  procNet?: string;
  now?: () => Date;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Networks docker has from the start; only `bridge` is a record here, host and none are modes. */
export const PREDEFINED_NETWORKS = ['bridge', 'host', 'none'] as const;

export const CreateNetworkOptionsSchema = z
  .object({
    name: z.string().regex(NAME, 'must match [a-zA-Z0-9][a-zA-Z0-9_.-]*'),
    driver: z.literal('bridge').default('bridge'),
    subnet: z.string().optional(),
    gateway: z.string().optional(),
    subnet6: z.string().optional(),
    gateway6: z.string().optional(),
    internal: z.boolean().default(false),
    ipv6: z.boolean().default(false),
    labels: z.record(z.string(), z.string()).default({}),
    options: z.record(z.string(), z.string()).default({}),
  })
  .strict();
export type CreateNetworkOptions = z.input<typeof CreateNetworkOptionsSchema>;

function parseOptions(input: unknown): z.output<typeof CreateNetworkOptionsSchema> {
  const r = CreateNetworkOptionsSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.map(String).join('.') || 'network';
  if (field === 'driver') throw new ValidationError(`plugin "${(input as { driver?: unknown }).driver}" not found: nsbox has the bridge driver`, field, r.error);
  throw new ValidationError(`invalid network options: ${field}: ${issue.message}`, field, r.error);
}

/** The gateway: the one given (a host of the subnet), else the subnet's first address. */
function gatewayOf(subnet: Cidr, given: string | undefined, field: string): string {
  if (given === undefined) return formatIp(subnet.family, subnet.base + 1n);
  const ip = parseIp(given);
  if (!ip) throw new ValidationError(`invalid gateway "${given}"`, field);
  const broadcast = subnet.family === 4 ? lastAddress(subnet) : -1n;
  if (!contains(subnet, ip.family, ip.value) || ip.value === subnet.base || ip.value === broadcast) {
    throw new ValidationError(`no matching subnet for gateway ${given}: it is not a host address of ${formatCidr(subnet)}`, field);
  }
  return formatIp(ip.family, ip.value);
}

export class NetworkStore {
  readonly layout: StoreLayout;
  readonly ipam: Ipam;
  readonly #procNet: string;
  readonly #now: () => Date;

  constructor(opts: NetworkStoreOptions = {}) {
    this.layout = new StoreLayout(opts.root ?? defaultRoot());
    this.ipam = new Ipam(this.layout);
    this.#procNet = opts.procNet ?? '/proc/net';
    this.#now = opts.now ?? (() => new Date());
  }

  static async open(opts: NetworkStoreOptions = {}): Promise<NetworkStore> {
    const store = new NetworkStore(opts);
    await mkdir(store.layout.networksDir, { recursive: true });
    return store;
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.layout.networksLock, fn);
  }

  /** Every network record, oldest first. */
  async #all(): Promise<NetworkRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.layout.networksDir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return [];
      throw err;
    }
    const out: NetworkRecord[] = [];
    for (const n of names) {
      const m = /^([0-9a-f]{64})\.json$/.exec(n);
      const record = m ? await readNetworkRecord(this.layout, m[1]!) : undefined;
      if (record) out.push(record);
    }
    return out.sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
  }

  async #create(o: z.output<typeof CreateNetworkOptionsSchema>, pools: () => Iterable<Cidr>): Promise<NetworkRecord> {
    const all = await this.#all();
    if ((PREDEFINED_NETWORKS as readonly string[]).includes(o.name) && (o.name !== DEFAULT_NETWORK || all.some((n) => n.name === o.name))) {
      throw new NetworkConflictError(`network with name ${o.name} already exists`);
    }
    if (all.some((n) => n.name === o.name)) throw new NetworkConflictError(`network with name ${o.name} already exists`);
    const id = randomBytes(32).toString('hex');
    const taken = all.flatMap((n) => [
      { cidr: parseCidr(n.subnet), what: `network ${n.name} (${n.subnet})` },
      ...(n.subnet6 ? [{ cidr: parseCidr(n.subnet6), what: `network ${n.name} (${n.subnet6})` }] : []),
    ]);
    const routes = routeTaken(await readRoutes(this.#procNet));
    const choose = (given: string | undefined, family: 4 | 6, field: string, candidates: () => Iterable<Cidr>): Cidr => {
      if (given !== undefined) {
        const c = parseCidr(given, field);
        if (c.family !== family) throw new ValidationError(`invalid ${field} ${given}: not an IPv${family} subnet`, field);
        if (family === 4 && c.prefix > 30) throw new ValidationError(`invalid ${field} ${given}: too small for a network (at most /30)`, field);
        const other = collision(c, taken);
        if (other) throw new NetworkConflictError(`Pool overlaps with other one on this address space: ${given} overlaps ${other}`);
        const route = collision(c, routes);
        if (route) throw new NetworkConflictError(`subnet ${given} overlaps ${route}`);
        return c;
      }
      const c = pickSubnet(candidates(), [...taken, ...routes]);
      if (!c) throw new NsboxError(`could not find an available, non-overlapping IPv${family} address pool among the defaults to assign to the network`, { code: 'EADDRNOTAVAIL' });
      return c;
    };
    if (o.gateway !== undefined && o.subnet === undefined) throw new ValidationError('a gateway needs the subnet it belongs to (--subnet)', 'gateway');
    if (o.gateway6 !== undefined && o.subnet6 === undefined) throw new ValidationError('an IPv6 gateway needs its IPv6 subnet', 'gateway6');
    if (o.subnet6 !== undefined && !o.ipv6) throw new ValidationError('an IPv6 subnet needs IPv6 enabled (--ipv6)', 'subnet6');
    const subnet = choose(o.subnet, 4, 'subnet', pools);
    const gateway = gatewayOf(subnet, o.gateway, 'gateway');
    const record: NetworkRecord = {
      id,
      name: o.name,
      driver: 'bridge',
      subnet: formatCidr(subnet),
      gateway,
      internal: o.internal,
      ipv6: o.ipv6,
      labels: o.labels,
      options: o.options,
      created: this.#now().toISOString(),
      bridge: bridgeName(id, o.name),
    };
    if (o.ipv6) {
      const subnet6 = choose(o.subnet6, 6, 'subnet6', () => ipv6Pools(id));
      // A container's IPv6 address has its IPv4 address's host part: the IPv6 subnet must hold them all.
      if (sizeOf(subnet6) < sizeOf(subnet)) {
        throw new ValidationError(`IPv6 subnet ${formatCidr(subnet6)} is smaller than the IPv4 subnet ${formatCidr(subnet)}: give a /${128 - (32 - subnet.prefix)} or larger`, 'subnet6');
      }
      record.subnet6 = formatCidr(subnet6);
      record.gateway6 = gatewayOf(subnet6, o.gateway6, 'gateway6');
    }
    await writeFileAtomic(this.layout.networkRecord(id), `${JSON.stringify(record, null, 2)}\n`);
    return record;
  }

  /**
   * A new network, with docker's rules: a unique name, a subnet that overlaps no other network and
   * no route (picked from docker's default pools when none is given), a gateway inside it.
   * Nothing is written when any of that fails.
   */
  async create(options: CreateNetworkOptions): Promise<NetworkRecord> {
    const o = parseOptions(options);
    if (o.name === DEFAULT_NETWORK) throw new NetworkConflictError(`network with name ${o.name} already exists`);
    await mkdir(this.layout.networksDir, { recursive: true });
    return this.#locked(() => this.#create(o, userPools));
  }

  /** The default `bridge` network, created on first use (172.17.0.0/16 unless something has it). */
  async ensureDefault(): Promise<NetworkRecord> {
    const find = async () => (await this.#all()).find((n) => n.name === DEFAULT_NETWORK);
    const found = await find();
    if (found) return found;
    await mkdir(this.layout.networksDir, { recursive: true });
    return this.#locked(async () => (await find()) ?? this.#create(parseOptions({ name: DEFAULT_NETWORK }), defaultPools));
  }

  /** By full id, by name, or by a unique id prefix (docker's order). */
  async get(ref: string): Promise<NetworkRecord> {
    const all = await this.#all();
    const hit = all.find((n) => n.id === ref) ?? all.find((n) => n.name === ref);
    if (hit) return hit;
    const prefixed = /^[0-9a-f]+$/.test(ref) ? all.filter((n) => n.id.startsWith(ref)) : [];
    if (prefixed.length === 1) return prefixed[0]!;
    if (prefixed.length > 1) throw new ValidationError(`network ${ref} is ambiguous (${prefixed.length} matches found based on ID prefix)`, 'network');
    throw new NotFoundError(`network ${ref} not found`);
  }

  /** The networks that pass docker's filters (name, id, label, driver, type, dangling). */
  async list(filters: NetworkFilters = {}): Promise<NetworkRecord[]> {
    const out: NetworkRecord[] = [];
    for (const n of await this.#all()) {
      const inUse = filters.dangling === undefined ? false : (await this.ipam.endpoints(n.id)).length > 0;
      if (matchesNetworkFilters(n, filters, inUse)) out.push(n);
    }
    return out;
  }

  async #remove(n: NetworkRecord): Promise<void> {
    await rm(this.layout.networkRecord(n.id), { force: true });
    await rm(this.layout.networkIps(n.id), { recursive: true, force: true });
    await rm(`${this.layout.networksDir}/${n.id}`, { recursive: true, force: true });
    // Its bridge and nft elements, when a container ever attached in this namespace. The record is
    // gone already: a failure here is reported, not the removal's.
    if (native.linkNames().includes(n.bridge)) await removeBridge(n).catch(reportCleanupError(`network ${n.name}: remove bridge ${n.bridge}`));
  }

  /** Removes a network no container is attached to (docker refuses too, and for `bridge`). */
  async remove(ref: string): Promise<NetworkRecord> {
    return this.#locked(async () => {
      const n = await this.get(ref);
      if (n.name === DEFAULT_NETWORK) throw new InvalidStateError(`${n.name} is a pre-defined network and cannot be removed`);
      if ((await this.ipam.endpoints(n.id)).length > 0) {
        throw new InvalidStateError(`error while removing network: network ${n.name} id ${n.id} has active endpoints`);
      }
      await this.#remove(n);
      return n;
    });
  }

  /** Removes every user network no container is attached to, that passes `filters` (label, until). */
  async prune(filters: Pick<NetworkFilters, 'label' | 'until'> = {}): Promise<NetworkRecord[]> {
    return this.#locked(async () => {
      const removed: NetworkRecord[] = [];
      for (const n of await this.#all()) {
        if (n.name === DEFAULT_NETWORK || !matchesNetworkFilters(n, filters, false, this.#now())) continue;
        if ((await this.ipam.endpoints(n.id)).length > 0) continue;
        await this.#remove(n);
        removed.push(n);
      }
      return removed;
    });
  }

  /** The containers attached to a network, by address. */
  async endpoints(ref: string): Promise<{ containerId: string; ipAddress: string }[]> {
    return this.ipam.endpoints((await this.get(ref)).id);
  }
}
