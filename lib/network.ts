/**
 * The SDK's `Network`: a network of the store as an object, docker's way. `Network.create({ name,
 * subnet?, internal?, ipv6? })`, `Network.get/list/remove/prune`, and `network.inspect()` in the
 * shape `docker network inspect` prints. A network record touches no kernel state; its bridge is
 * made when the first container attaches.
 */
import { ignoreNotFound } from './errors.js';
import { OwnerIndex, ownerLabels, ownerOf, thisProcess } from './engine/owners.js';
import { ContainerStore } from './engine/container-store.js';
import { NetworkStore } from './network/network-store.js';
import { networkContainerJson, networkJson, type NetworkContainerJson, type NetworkJson } from './network/network-json.js';
import { macForIp } from './network/ipam.js';
import { parseCidr } from './network/cidr.js';
import type { CreateNetworkOptions, NetworkFilters } from './network/network-store.js';
import { NetworkStateSchema, type NetworkRecord } from './network/schemas.js';
import { refuseRootlessNetworkCreate } from './network/rootless-container.js';
import { isPrivileged } from './privilege.js';

export interface NetworkDeps {
  /** The store's root (default: NSBOX_ROOT, /var/lib/nsbox as root, else under XDG_DATA_HOME). */
  root?: string;
  /**
   * create(): the network is this process's (label `nsbox.owner`) and is removed at the first
   * engine open after it ends, however it ends (lib/engine/owners.ts). Default true; false (the
   * CLI's `network create`) keeps it until removed, as docker's.
   */
  owned?: boolean;
}

/** A container record's network state, where the engine keeps it (absent on records made before networking). */
function stateOf(record: object) {
  const r = NetworkStateSchema.safeParse((record as { network?: { state?: unknown } }).network?.state);
  return r.success ? r.data : undefined;
}

/**
 * The containers attached to `n`, as inspect's `Containers`: the name and endpoint from each
 * container's record, the address from the network's IPAM (the truth for who holds what).
 */
export async function networkContainers(store: NetworkStore, n: NetworkRecord): Promise<Record<string, NetworkContainerJson>> {
  const containers = new ContainerStore({ root: store.layout.root });
  const prefixLength = parseCidr(n.subnet).prefix;
  const out: Record<string, NetworkContainerJson> = {};
  for (const e of await store.ipam.endpoints(n.id)) {
    // a container whose record is gone while IPAM still lists it (repair frees the address): no name
    const record = await containers.get(e.containerId).catch(ignoreNotFound);
    const endpoint = record && stateOf(record)?.endpoints.find((x) => x.networkId === n.id);
    out[e.containerId] = networkContainerJson({
      name: record?.name ?? '',
      ipAddress: e.ipAddress,
      prefixLength,
      macAddress: endpoint?.macAddress ?? macForIp(e.ipAddress),
      ...(endpoint ? { endpointId: endpoint.endpointId } : {}),
      ...(endpoint?.ipv6Address ? { ipv6Address: endpoint.ipv6Address, ipv6PrefixLength: endpoint.ipv6PrefixLength ?? 64 } : {}),
    });
  }
  return out;
}

/** A removed network's owner note goes too (a stale one would be harmless: the label guards the reaper). */
function forgetOwned(store: NetworkStore, removed: NetworkRecord): void {
  const owner = ownerOf(removed.labels);
  if (owner) new OwnerIndex(store.layout.root).forget('network', removed.name, owner);
}

export class Network {
  readonly record: NetworkRecord;
  readonly #store: NetworkStore;

  private constructor(store: NetworkStore, record: NetworkRecord) {
    this.#store = store;
    this.record = record;
  }

  get id(): string {
    return this.record.id;
  }
  get name(): string {
    return this.record.name;
  }
  get subnet(): string {
    return this.record.subnet;
  }
  get gateway(): string {
    return this.record.gateway;
  }

  static #open(deps: NetworkDeps): Promise<NetworkStore> {
    return NetworkStore.open(deps.root === undefined ? {} : { root: deps.root });
  }

  /** A new bridge network (zod-validated options; docker's rules for names, subnets and gateways). */
  static async create(options: CreateNetworkOptions, deps: NetworkDeps = {}): Promise<Network> {
    if (!isPrivileged()) refuseRootlessNetworkCreate(options.name);
    const store = await Network.#open(deps);
    if (deps.owned === false) return new Network(store, await store.create(options));
    const owner = thisProcess();
    const index = new OwnerIndex(store.layout.root);
    // Noted before it exists: a kill between the two leaves a note for nothing, never a network without one.
    index.note('network', options.name, {}, owner);
    try {
      return new Network(store, await store.create({ ...options, labels: { ...(options.labels ?? {}), ...ownerLabels(owner) } }));
    } catch (e) {
      index.forget('network', options.name, owner);
      throw e;
    }
  }

  /** By name, id or unique id prefix; `bridge` is created on first use. */
  static async get(ref: string, deps: NetworkDeps = {}): Promise<Network> {
    const store = await Network.#open(deps);
    if (ref === 'bridge') return new Network(store, await store.ensureDefault());
    return new Network(store, await store.get(ref));
  }

  static async list(filters: NetworkFilters = {}, deps: NetworkDeps = {}): Promise<Network[]> {
    const store = await Network.#open(deps);
    return (await store.list(filters)).map((r) => new Network(store, r));
  }

  /** Removes a network no container is attached to. */
  static async remove(ref: string, deps: NetworkDeps = {}): Promise<void> {
    const store = await Network.#open(deps);
    forgetOwned(store, await store.remove(ref));
  }

  /** Removes every unused user network (filters: label, until); the names removed. */
  static async prune(filters: Pick<NetworkFilters, 'label' | 'until'> = {}, deps: NetworkDeps = {}): Promise<string[]> {
    return (await (await Network.#open(deps)).prune(filters)).map((n) => n.name);
  }

  async remove(): Promise<void> {
    forgetOwned(this.#store, await this.#store.remove(this.id));
  }

  /** The containers attached, by id: their address on this network. */
  async endpoints(): Promise<{ containerId: string; ipAddress: string }[]> {
    return this.#store.ipam.endpoints(this.id);
  }

  /** What `docker network inspect` prints for it (one object). */
  async inspect(): Promise<NetworkJson> {
    const record = await this.#store.get(this.id);
    return networkJson(record, await networkContainers(this.#store, record));
  }
}
