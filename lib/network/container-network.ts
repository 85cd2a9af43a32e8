/**
 * A container's networking, set up before its start and torn down at its stop: what the runtime is
 * handed (`namespaces.net`: true for `none`, false for `host`, a netns path otherwise), the files
 * bound into it, the host ports held for it, and the `NetworkState` the engine records. `attach` /
 * `detach` add or remove one network of a running container (connect / disconnect).
 *
 * The network records and addresses come from the store (lib/network/network-store.ts, its Ipam);
 * this module only asks it through the small interface below.
 */
import { NsboxError, ValidationError, ignoreNotFound, reportCleanupError } from '../errors.js';
import type { Mount } from '../runtime/options.js';
import { ensureBridge } from './bridge.js';
import { addDnsEntry, removeDnsEntry } from './dns.js';
import { attachEndpoint, defaultRoutes, detachEndpoint, type EndpointAddress } from './endpoint.js';
import { writeNetworkFiles } from './files.js';
import { holdPorts, proxiesFor, publishPorts, releasePorts, unpublishPorts, type PortProxy } from './ports.js';
import { proxyTargetFile, writeProxyTarget } from './proxy-target.js';
import { createSandbox, netnsPath, removeSandbox } from './sandbox.js';
import { DEFAULT_NETWORK, type EndpointState, type NetworkAttachment, type NetworkOptions, type NetworkRecord, type NetworkState, type PortBinding } from './schemas.js';
import { createHash } from 'node:crypto';
import { native } from '../native.js';

/** What this module needs of the network store. */
export interface NetworkStoreLike {
  get(ref: string): Promise<NetworkRecord>;
  ensureDefault(): Promise<NetworkRecord>;
  ipam: {
    allocate(networkId: string, containerId: string, requested?: string, requested6?: string): Promise<EndpointAddress>;
    release(networkId: string, containerId: string): Promise<boolean>;
  };
}

export interface ContainerRef {
  id: string;
  /** The container's name (DNS on user networks), without a leading '/'. */
  name?: string;
  runRoot: string;
  /**
   * The container's network directory (SetupRequest's `dir`): a connect or disconnect that moves
   * the published ports points the [::1] relays there (proxy-target.ts).
   */
  dir?: string;
}

export interface SetupRequest extends ContainerRef {
  options: NetworkOptions;
  store: NetworkStoreLike;
  /** The container's directory: /etc/hosts, /etc/hostname and /etc/resolv.conf are written there. */
  dir: string;
  hostname: string;
  /** `container:` mode: the other container's sandbox key. */
  joinNetns?: string;
  /** What it had before (a restart): the same host ports are taken again. */
  previous?: NetworkState;
}

export interface ContainerNetwork {
  /** The runtime's `namespaces.net`. */
  net: boolean | string;
  state: NetworkState;
  /** Bind mounts of the files written (empty for none and host). */
  mounts: Mount[];
  /** Sockets holding the published host ports: keep them open while the container runs. */
  fds: number[];
  /** Among them, the IPv6 TCP ones a proxy answers on (::1, which DNAT cannot serve). */
  proxies: PortProxy[];
}

const endpointId = (containerId: string, networkId: string) => createHash('sha256').update(`${containerId}/${networkId}`).digest('hex');
const isUserNetwork = (n: NetworkRecord) => n.name !== DEFAULT_NETWORK;
/** Names the DNS server answers for a container on a user network (docker: name, aliases, short id). */
const dnsNames = (c: ContainerRef, aliases: readonly string[]) => [...(c.name ? [c.name] : []), ...aliases, c.id.slice(0, 12)];

/** Joins one network: bridge, address, veth, DNS entry. The address is released again on failure. */
export async function attach(c: ContainerRef, sandboxKey: string, attachment: NetworkAttachment, store: NetworkStoreLike, ifname: string, primary: boolean): Promise<EndpointState> {
  const network = attachment.network === DEFAULT_NETWORK ? await store.ensureDefault() : await store.get(attachment.network);
  if (!isUserNetwork(network) && attachment.aliases.length) {
    throw new ValidationError('network-scoped aliases are only supported for user-defined networks', 'aliases');
  }
  await ensureBridge(network);
  if (!isUserNetwork(network) && (attachment.ipv4Address || attachment.ipv6Address)) {
    throw new ValidationError('user specified IP address is supported on user defined networks only', 'ipAddress');
  }
  const address = await store.ipam.allocate(network.id, c.id, attachment.ipv4Address, attachment.ipv6Address);
  try {
    await attachEndpoint({ containerId: c.id, netns: sandboxKey, network, address, ifname, primary });
    if (isUserNetwork(network)) await addDnsEntry(c.runRoot, network, { ...dnsAddresses(address), containerId: c.id, names: dnsNames(c, attachment.aliases) });
  } catch (err) {
    await detachEndpoint(c.id, network.id).catch(reportCleanupError(`detaching container ${c.id} from network ${network.name}`));
    await store.ipam.release(network.id, c.id).catch(reportCleanupError(`releasing the address of container ${c.id} on network ${network.name}`));
    throw err;
  }
  return {
    networkId: network.id,
    networkName: network.name,
    endpointId: endpointId(c.id, network.id),
    ipAddress: address.ipAddress,
    prefixLength: address.prefixLength,
    gateway: address.gateway,
    macAddress: address.macAddress,
    ...(address.ipv6Address ? { ipv6Address: address.ipv6Address, ipv6PrefixLength: address.ipv6PrefixLength ?? 64 } : {}),
    ...(address.ipv6Gateway ? { ipv6Gateway: address.ipv6Gateway } : {}),
    aliases: [...attachment.aliases],
    ifname,
  };
}

const dnsAddresses = (a: Pick<EndpointAddress, 'ipAddress' | 'ipv6Address'>) => ({ ipAddress: a.ipAddress, ...(a.ipv6Address ? { ipv6Address: a.ipv6Address } : {}) });

/**
 * Leaves one network: DNS entry, veth, address. Each step tolerates what is already gone.
 * `withNamespace`: the container's namespace is going too, and its veth with it (the kernel deletes
 * the pair in the background when the namespace is freed, where RTM_DELLINK waits ~25 ms here for
 * an RCU grace period).
 */
export async function detach(c: ContainerRef, endpoint: Pick<EndpointState, 'networkId' | 'networkName'>, store: NetworkStoreLike, withNamespace = false): Promise<void> {
  // NotFoundError: the network is gone, its DNS file and bridge with it
  const network: NetworkRecord | undefined = await store.get(endpoint.networkId).catch(ignoreNotFound);
  if (network && isUserNetwork(network)) await removeDnsEntry(c.runRoot, network, c.id);
  if (!withNamespace) await detachEndpoint(c.id, endpoint.networkId);
  await store.ipam.release(endpoint.networkId, c.id);
}

/**
 * A running container joins a network (docker's connect) as `ifname`. With no other network (all
 * were disconnected) it becomes the primary one: the default route, and the published ports.
 */
export async function joinNetwork(c: ContainerRef, state: NetworkState, attachment: NetworkAttachment, store: NetworkStoreLike, ifname: string): Promise<EndpointState> {
  const primary = state.endpoints.length === 0;
  const ep = await attach(c, state.sandboxKey!, attachment, store, ifname, primary);
  if (primary && state.ports.length) {
    try {
      await publishPorts(state.ports, ep);
      if (c.dir) writeProxyTarget(c.dir, ep);
    } catch (err) {
      await detach(c, ep, store).catch(reportCleanupError(`detaching container ${c.id} from network ${ep.networkName}`));
      throw err;
    }
  }
  state.endpoints.push(ep);
  return ep;
}

/**
 * A running container leaves the network of `state.endpoints[index]` (docker's disconnect). When it
 * is the primary one, the published ports and the default route move to the next network (as
 * docker moves its gateway endpoint); with no network left the ports stay held but go nowhere.
 */
export async function leaveNetwork(c: ContainerRef, state: NetworkState, index: number, store: NetworkStoreLike): Promise<void> {
  const ep = state.endpoints[index]!;
  if (index === 0 && state.ports.length) {
    await unpublishPorts(state.ports, ep);
    // until the next network (if any) has them, the relays refuse rather than reach the old address
    if (c.dir) writeProxyTarget(c.dir, undefined);
  }
  await detach(c, ep, store);
  state.endpoints.splice(index, 1);
  const next = state.endpoints[0];
  if (index !== 0 || !next) return;
  const network = await store.get(next.networkId);
  if (!network.internal) await native.netlink(defaultRoutes(next, state.sandboxKey!));
  if (state.ports.length) {
    await publishPorts(state.ports, next);
    if (c.dir) writeProxyTarget(c.dir, next);
  }
}

/** A running container renamed (docker's rename): its DNS names on user networks follow. */
export async function renameEndpoints(c: ContainerRef, state: NetworkState, store: NetworkStoreLike): Promise<void> {
  for (const e of state.endpoints) {
    const network = await store.get(e.networkId);
    if (!isUserNetwork(network)) continue;
    await addDnsEntry(c.runRoot, network, { ...dnsAddresses(e), containerId: c.id, names: dnsNames(c, e.aliases) });
  }
}

/** The ports to publish: as asked, with the host ports a previous run had when it asked for random ones. */
export function portsToHold(asked: readonly PortBinding[], previous: NetworkState | undefined): PortBinding[] {
  // the previous ports that fixed bindings ask for again are theirs, not a random one's
  const fixed = (p: PortBinding) => asked.some((b) => b.hostPort === p.hostPort && b.protocol === p.protocol && b.hostIp === p.hostIp);
  const prev = (previous?.ports ?? []).filter((p) => !fixed(p));
  return asked.map((b) => {
    if (b.hostPort !== 0) return b;
    const i = prev.findIndex((p) => p.containerPort === b.containerPort && p.protocol === b.protocol && p.hostIp === b.hostIp);
    if (i < 0) return b;
    const [p] = prev.splice(i, 1);
    return { ...b, hostPort: p!.hostPort };
  });
}

/** Sets up everything before the start. On failure nothing is left (what was done is undone). */
export async function setupContainerNetwork(r: SetupRequest): Promise<ContainerNetwork> {
  const o = r.options;
  if (o.mode === 'none') return { net: true, state: { endpoints: [], ports: [] }, mounts: [], fds: [], proxies: [] };
  if (o.mode === 'host') return { net: false, state: { endpoints: [], ports: [] }, mounts: [], fds: [], proxies: [] };
  if (o.mode === 'container') {
    if (!r.joinNetns) throw new NsboxError(`container ${o.container ?? ''} has no network namespace to share (is it running?)`, { code: 'ERR_INVALID_STATE' });
    return { net: r.joinNetns, state: { sandboxKey: r.joinNetns, endpoints: [], ports: [] }, mounts: [], fds: [], proxies: [] };
  }
  const state: NetworkState = { sandboxKey: await createSandbox(r.runRoot, r.id), endpoints: [], ports: [] };
  let fds: number[] = [];
  let proxies: PortProxy[] = [];
  try {
    for (const [i, a] of o.networks.entries()) state.endpoints.push(await attach(r, state.sandboxKey!, a, r.store, `eth${i}`, i === 0));
    // No network left (all disconnected, as docker allows): lo only, the ports kept for later.
    const primary = state.endpoints[0];
    if (primary) {
      const held = holdPorts(portsToHold(o.ports, r.previous), primary.ipv6Address !== undefined);
      fds = held.fds;
      proxies = proxiesFor(held, primary, proxyTargetFile(r.dir));
      state.ports = held.ports;
      await publishPorts(state.ports, primary);
    } else state.ports = r.previous?.ports ?? [];
    writeProxyTarget(r.dir, primary);
    // aardvark-dns answers a container for every network it is on, whichever server it asks.
    const dns = state.endpoints.find((e) => e.networkName !== DEFAULT_NETWORK);
    const mounts = writeNetworkFiles({
      dir: r.dir,
      hostname: r.hostname,
      ...(primary ? { ipAddress: primary.ipAddress, ...(primary.ipv6Address ? { ipv6Address: primary.ipv6Address } : {}) } : {}),
      aliases: o.networks[0]?.aliases ?? [],
      extraHosts: o.extraHosts,
      ...(dns && !o.dns.length ? { nameserver: dns.gateway } : {}),
      dns: o.dns,
      dnsSearch: o.dnsSearch,
      dnsOptions: o.dnsOptions,
    });
    return { net: state.sandboxKey!, state, mounts, fds, proxies };
  } catch (err) {
    await teardownContainerNetwork({ id: r.id, runRoot: r.runRoot, ...(r.name ? { name: r.name } : {}) }, state, r.store, fds).catch(reportCleanupError(`network teardown of container ${r.id}`));
    throw err;
  }
}

/**
 * Undoes a setup: ports unpublished and released, every endpoint detached, the namespace removed.
 * Idempotent (a second teardown, or one after a crash, finds things gone and goes on).
 */
export async function teardownContainerNetwork(c: ContainerRef, state: NetworkState | undefined, store: NetworkStoreLike, fds: readonly number[] = []): Promise<void> {
  releasePorts(fds);
  if (!state) return;
  const errors: unknown[] = [];
  const primary = state.endpoints[0];
  // (no primary: every network was disconnected, and the ports were unpublished then)
  if (primary && state.ports.length) await unpublishPorts(state.ports, primary).catch((e: unknown) => errors.push(e));
  // Only a namespace of its own: a `container:` one belongs to the other container. Unmounted
  // first: once the container's processes are gone too, the kernel frees it with its veths.
  const own = state.sandboxKey === netnsPath(c.runRoot, c.id);
  if (own) {
    try {
      removeSandbox(state.sandboxKey!);
    } catch (e) {
      errors.push(e);
    }
  }
  for (const ep of state.endpoints) await detach(c, ep, store, own).catch((e: unknown) => errors.push(e));
  if (errors.length) throw errors[0];
}
