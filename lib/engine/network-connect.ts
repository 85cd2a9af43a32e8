/**
 * docker's `network connect` / `network disconnect` for the engine's containers. The network joins
 * (or leaves) what the container asks for (`network.options.networks`), so every later start has
 * it, as docker keeps it in the container's config; a running container also gets (or loses) the
 * endpoint at once: an address, a veth `ethN`, its DNS names. A created container is only
 * recorded: docker-compose connects its services' other networks between create and start.
 * Also `rename`, whose DNS names move on the networks of a running container.
 */
import { InvalidStateError, NetworkConflictError, NotFoundError, ValidationError } from '../errors.js';
import { joinNetwork, leaveNetwork, renameEndpoints } from '../network/container-network.js';
import { DEFAULT_NETWORK, NetworkAttachmentSchema, type NetworkRecord } from '../network/schemas.js';
import { refuseRootlessConnect } from '../network/rootless-container.js';
import { isPrivileged } from '../privilege.js';
import { isRunning } from './container-status.js';
import type { EngineContext } from './engine-context.js';
import { networkDir, networkRunRoot, networkStore } from './networking.js';
import type { ContainerRecord } from './records.js';
import { canonicalName } from './names.js';

export interface ConnectOptions {
  aliases?: string[];
  ipv4Address?: string;
  ipv6Address?: string;
}

/** docker's refusals for containers whose network mode has no networks to add to (runconfig's errors). */
function checkMode(r: ContainerRecord): void {
  const mode = r.network?.options.mode ?? (r.options.namespaces?.net === false ? 'host' : 'none');
  if (mode === 'host') throw new InvalidStateError('container cannot be disconnected from host network or connected to host network');
  if (mode === 'container') throw new InvalidStateError('container sharing network namespace with another container or host cannot be connected to any other network');
  if (mode === 'none') throw new InvalidStateError('container cannot be connected to multiple networks with one of the networks in private (none) mode');
}

const names = (n: NetworkRecord) => [n.name, n.id];

/** The first `ethN` the container's namespace does not have yet. */
function freeInterface(r: ContainerRecord): string {
  const used = new Set((r.network?.state?.endpoints ?? []).map((e, i) => e.ifname ?? `eth${i}`));
  let i = 0;
  while (used.has(`eth${i}`)) i++;
  return `eth${i}`;
}

async function networkOf(ctx: EngineContext, ref: string): Promise<NetworkRecord> {
  const store = await networkStore(ctx.root);
  return ref === DEFAULT_NETWORK ? store.ensureDefault() : store.get(ref);
}

/** Connects `ref` to `network`; the record as it is after. */
export async function connectNetwork(ctx: EngineContext, ref: string, network: string, opts: ConnectOptions = {}): Promise<{ record: ContainerRecord; network: NetworkRecord }> {
  if (!isPrivileged()) refuseRootlessConnect('connect');
  const n = await networkOf(ctx, network);
  const store = await networkStore(ctx.root);
  const attachment = NetworkAttachmentSchema.parse({ network: n.name, aliases: opts.aliases ?? [], ...(opts.ipv4Address ? { ipv4Address: opts.ipv4Address } : {}), ...(opts.ipv6Address ? { ipv6Address: opts.ipv6Address } : {}) });
  if (n.name === DEFAULT_NETWORK && attachment.aliases.length) throw new ValidationError('network-scoped alias is supported only for containers in user defined networks', 'EndpointConfig.Aliases');
  if (n.name === DEFAULT_NETWORK && (attachment.ipv4Address || attachment.ipv6Address)) throw new ValidationError('user specified IP address is supported on user defined networks only', 'EndpointConfig.IPAMConfig');
  const record = await ctx.store.update(ref, async (r) => {
    if (r.network?.options.mode === 'none' && r.network.options.unasked && !isRunning(r)) {
      // The default none, never started: the container joins this network alone (not also
      // docker's bridge, which nsbox makes only when asked).
      const { unasked: _, ...rest } = r.network.options;
      r.network.options = { ...rest, mode: 'bridge', networks: [] };
    }
    checkMode(r);
    const o = r.network!.options;
    const state = r.network!.state;
    const asked = o.networks.some((a) => names(n).includes(a.network));
    const live = isRunning(r) && state?.sandboxKey !== undefined;
    if (asked || (live && state!.endpoints.some((e) => e.networkId === n.id))) {
      throw new NetworkConflictError(`endpoint with name ${r.name} already exists in network ${n.name}`);
    }
    if (live) await joinNetwork({ id: r.id, name: r.name, runRoot: networkRunRoot(), dir: networkDir(ctx, r.id) }, state!, attachment, store, freeInterface(r));
    o.networks.push(attachment);
  });
  ctx.emitEvent({ type: 'network', action: 'connect', id: n.id, attributes: { container: record.id, name: n.name, type: n.driver }, time: new Date() });
  return { record, network: n };
}

/**
 * Disconnects `ref` from `network`. `force` (docker's) also takes a network that is gone from
 * the container's list. As docker, the last network may go too (the container keeps lo only, and
 * starts so until it is connected again), and a running container's first one: its published
 * ports and default route move to the next (leaveNetwork).
 */
export async function disconnectNetwork(ctx: EngineContext, ref: string, network: string, opts: { force?: boolean } = {}): Promise<ContainerRecord> {
  if (!isPrivileged()) refuseRootlessConnect('disconnect');
  let n: NetworkRecord | undefined;
  try {
    n = await networkOf(ctx, network);
  } catch (e) {
    if (!(e instanceof NotFoundError) || !opts.force) throw e;
  }
  const store = await networkStore(ctx.root);
  const refs = n ? names(n) : [network];
  const record = await ctx.store.update(ref, async (r) => {
    checkMode(r);
    const o = r.network!.options;
    const state = r.network!.state;
    const i = o.networks.findIndex((a) => refs.includes(a.network));
    const live = isRunning(r) ? (state?.endpoints ?? []).findIndex((e) => refs.includes(e.networkName) || refs.includes(e.networkId)) : -1;
    if (i < 0 && live < 0) throw new NotFoundError(`container ${r.id} is not connected to network ${n?.name ?? network}`);
    if (live >= 0) await leaveNetwork({ id: r.id, name: r.name, runRoot: networkRunRoot(), dir: networkDir(ctx, r.id) }, state!, live, store);
    if (i >= 0) o.networks.splice(i, 1);
  });
  if (n) ctx.emitEvent({ type: 'network', action: 'disconnect', id: n.id, attributes: { container: record.id, name: n.name, type: n.driver }, time: new Date() });
  return record;
}

/**
 * docker rename (here for the DNS names it moves): the record's name, and on the user networks of
 * a running container the names its DNS server answers. docker-compose renames a container it
 * recreates before it removes it.
 */
export async function renameContainer(ctx: EngineContext, ref: string, name: string): Promise<ContainerRecord> {
  const to = canonicalName(name);
  const old = await ctx.store.get(ref);
  if (old.name === to) throw new ValidationError(`Renaming a container with the same name as its current name`, 'name');
  const record = await ctx.store.rename(ref, to);
  const state = record.network?.state;
  if (isRunning(record) && state?.endpoints.length) await renameEndpoints({ id: record.id, name: to, runRoot: networkRunRoot() }, state, await networkStore(ctx.root));
  ctx.emit('rename', record, { oldName: `/${old.name}` });
  return record;
}
