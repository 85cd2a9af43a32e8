/**
 * A container's networking as the engine runs it: set up (lib/network) before each start from the
 * record's `network.options`, its `NetworkState` kept in the record, torn down when it stops, exits
 * (on the next touch when no engine watched it) or is removed. Records without `network` (made
 * before networking) keep what their `namespaces.net` says (none or host).
 *
 * The host ports are bound here (lib/network/ports.ts) and handed to the container's shim, which
 * holds them for as long as it lives (`--hold-fds`): nothing else can take them while the container
 * runs, through restarts of its restart policy and of `nsbox serve`, and they are free the moment
 * the shim is gone. A port another running container has is refused here from the records first,
 * naming that container.
 *
 * Without root there is no bridge: each start attaches pasta to the container's own network
 * namespace (lib/network/rootless-container.ts), run by the spawner (the shim, or the foreground
 * CLI) as the runtime's `netHelper`; pasta binds the published ports itself. Teardown ends it by
 * its pid file in the container's network directory.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NsboxError, NetworkConflictError, ignoreNotFound } from '../errors.js';
import { releasePorts, type PortProxy } from '../network/ports.js';
import { setupContainerNetwork, teardownContainerNetwork } from '../network/container-network.js';
import { NetworkStore } from '../network/network-store.js';
import { repairNetworking, type NetworkRepair } from '../network/repair.js';
import { setupRootlessNetwork } from '../network/rootless-container.js';
import { helperLog, helperPid, stopRootlessHelper } from '../network/rootless-net.js';
import { isPrivileged } from '../privilege.js';
import type { ContainerOptions } from '../runtime/options.js';
import { netnsDir } from '../network/sandbox.js';
import type { NetworkState } from '../network/schemas.js';
import type { Mount } from '../runtime/options.js';
import { defaultRunRoot } from '../runtime/run-root.js';
import { existsSync } from 'node:fs';
import { isRunning } from './container-status.js';
import type { EngineContext } from './engine-context.js';
import type { ContainerRecord } from './records.js';
import { liveInProcessIds } from './owner-reap.js';
import { bundleOf, containerPid } from './shim-control.js';

/** Where netns files, DNS configs and the like live: the run root (tmpfs), as the SDK's. */
export const networkRunRoot = (): string => defaultRunRoot();

const stores = new Map<string, Promise<NetworkStore>>();
export function networkStore(root: string): Promise<NetworkStore> {
  let s = stores.get(root);
  if (!s) {
    s = NetworkStore.open({ root });
    // A failed open is seen by whoever awaits it; forgetting it lets the next call try again.
    s.catch(() => stores.delete(root));
    stores.set(root, s);
  }
  return s;
}

export interface StartNetwork {
  /** The runtime's namespaces.net. */
  net: boolean | string;
  mounts: Mount[];
  state: NetworkState;
  fds: number[];
  proxies: PortProxy[];
  /** Without root: pasta, for the runtime's netHelper. */
  netHelper?: { argv: [string, ...string[]]; pidFile: string };
}

/** The container's options with its networking: its netns, the files bound in, pasta without root. */
export function withNetwork(o: ContainerOptions, net: StartNetwork | undefined): Partial<ContainerOptions> {
  if (!net) return {};
  return { namespaces: { ...(o.namespaces ?? {}), net: net.net }, mounts: [...(o.mounts ?? []), ...net.mounts], ...(net.netHelper ? { netHelper: net.netHelper } : {}) };
}

/** The container's network directory: its /etc files, pasta's pid file, the relays' target. */
export const networkDir = (ctx: EngineContext, id: string): string => join(ctx.store.layout.container(id), 'network');

/** A rootless container's pasta, when one is left (its pid file says so): ended, and its file removed. */
const stopHelper = async (ctx: EngineContext, id: string): Promise<void> => {
  if (!isPrivileged()) await stopRootlessHelper(networkDir(ctx, id));
};

/** The netns of a running container, for `container:<id>`: its sandbox, else its init's. */
async function netnsOf(ctx: EngineContext, ref: string): Promise<string | undefined> {
  const other = await ctx.store.get(ref);
  if (!isRunning(other)) return undefined;
  if (other.network?.state?.sandboxKey) return other.network.state.sandboxKey;
  const pid = other.supervisor?.kind === 'process' ? other.supervisor.pid : bundleOf(other) ? containerPid(bundleOf(other)!) : undefined;
  return pid ? `/proc/${pid}/ns/net` : undefined;
}

/** A published host port another running container has: refused (docker's words). */
async function checkPorts(ctx: EngineContext, r: ContainerRecord): Promise<void> {
  const asked = r.network?.options.ports.filter((p) => p.hostPort !== 0) ?? [];
  if (!asked.length) return;
  for (const o of await ctx.store.list({ all: false })) {
    if (o.id === r.id || !isRunning(o)) continue;
    for (const p of o.network?.state?.ports ?? []) {
      const clash = asked.find((a) => a.hostPort === p.hostPort && a.protocol === p.protocol && (!a.hostIp || !p.hostIp || a.hostIp === p.hostIp));
      if (clash) throw new NetworkConflictError(`Bind for ${clash.hostIp || '0.0.0.0'}:${clash.hostPort} failed: port is already allocated (container ${o.name})`);
    }
  }
}

/** Before a start: the previous run's networking undone, then set up again (same host ports). */
export async function setupNetworkFor(ctx: EngineContext, r: ContainerRecord): Promise<StartNetwork | undefined> {
  const options = r.network?.options;
  if (!options || options.mode === 'none' || options.mode === 'host') return undefined;
  const previous = r.network?.state;
  if (!isPrivileged()) {
    await stopHelper(ctx, r.id);
    await checkPorts(ctx, r);
    const dir = networkDir(ctx, r.id);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const s = setupRootlessNetwork({ dir, hostname: r.options.hostname ?? options.hostname ?? r.id.slice(0, 12), options, ...(previous ? { previous } : {}) });
    return { ...s, fds: [], proxies: [] };
  }
  const store = await networkStore(ctx.root);
  const runRoot = networkRunRoot();
  if (previous) await teardownContainerNetwork({ id: r.id, runRoot, name: r.name }, previous, store).catch((e: unknown) => ctx.warn(`network teardown of ${r.id}`, e));
  await checkPorts(ctx, r);
  const joinNetns = options.mode === 'container' ? await netnsOf(ctx, options.container!) : undefined;
  if (options.mode === 'container' && !joinNetns) throw new NsboxError(`cannot join network of a non running container: ${options.container!}`, { code: 'ERR_INVALID_STATE' });
  const dir = networkDir(ctx, r.id);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const setup = await setupContainerNetwork({
    id: r.id,
    name: r.name,
    runRoot,
    dir,
    store,
    options,
    hostname: r.options.hostname ?? options.hostname ?? r.id.slice(0, 12),
    ...(joinNetns ? { joinNetns } : {}),
    ...(previous ? { previous } : {}),
  });
  return { net: setup.net, mounts: setup.mounts, state: setup.state, fds: setup.fds, proxies: setup.proxies };
}

/** A start that failed in pasta (rootless): its error with why, from pasta's log. */
export function explainStartError(ctx: EngineContext, r: ContainerRecord, n: StartNetwork | undefined, e: unknown): unknown {
  if (!n?.netHelper || !(e instanceof NsboxError) || e.syscall !== 'net helper') return e;
  const why = helperLog(networkDir(ctx, r.id));
  return why ? new NsboxError(`${e.message}: pasta could not set up the container's network: ${why}`, { code: e.code, cause: e }) : e;
}

/** Undoes a start's setup that did not become a running container. */
export async function abandonNetwork(ctx: EngineContext, r: ContainerRecord, n: StartNetwork): Promise<void> {
  if (n.netHelper) return stopHelper(ctx, r.id);
  await teardownContainerNetwork({ id: r.id, runRoot: networkRunRoot(), name: r.name }, n.state, await networkStore(ctx.root), n.fds);
}

export const releaseHeldPorts = (n: StartNetwork | undefined): void => releasePorts(n?.fds ?? []);

/**
 * After the container stopped or exited, or before it goes: its namespace, veths, addresses, DNAT
 * elements and DNS entries. The record keeps the state's ports (a restart takes them again) but
 * without a sandbox. Idempotent.
 */
export async function teardownNetworkOf(ctx: EngineContext, r: ContainerRecord): Promise<void> {
  const state = r.network?.state;
  if (!state || isRunning(r)) return;
  await stopHelper(ctx, r.id);
  if (!state.sandboxKey && !state.endpoints.length) return;
  await teardownContainerNetwork({ id: r.id, runRoot: networkRunRoot(), name: r.name }, state, await networkStore(ctx.root));
  await ctx.store
    .update(r.id, (x) => {
      if (x.network?.state && !isRunning(x)) x.network.state = { endpoints: [], ports: x.network.state.ports };
    })
    // removed meanwhile (an auto-remove container): no record left to clear
    .catch(ignoreNotFound);
}

/** Removal: everything of the network, the files written for it too. */
export async function removeNetworkOf(ctx: EngineContext, r: ContainerRecord): Promise<void> {
  await stopHelper(ctx, r.id);
  const state = r.network?.state;
  if (state && (state.sandboxKey || state.endpoints.length)) {
    await teardownContainerNetwork({ id: r.id, runRoot: networkRunRoot(), name: r.name }, state, await networkStore(ctx.root));
  }
  rmSync(networkDir(ctx, r.id), { recursive: true, force: true });
}

/**
 * Where the store repairs itself (`nsbox serve` start, `system prune`): networking left by
 * containers that are not running goes. Nothing is done where no container ever had a namespace of
 * its own under this run root (no nft or link listing in a namespace nsbox never touched).
 */
export async function repairNetworkingOf(ctx: EngineContext): Promise<NetworkRepair | undefined> {
  if (!isPrivileged()) return repairRootless(ctx);
  const runRoot = networkRunRoot();
  if (!existsSync(netnsDir(runRoot))) return undefined;
  const live = (await ctx.store.list({ all: true })).filter(isRunning).map((r) => r.id);
  // In-process SDK containers have no record: their owners' notes say which still run.
  live.push(...(await liveInProcessIds(ctx.root)));
  return repairNetworking(runRoot, await networkStore(ctx.root), live);
}

/**
 * Without root: a pasta left running for a container that is not (its shim or CLI killed, and
 * pasta somehow not with it) is ended, and stale pid files go. Nothing else is made outside.
 */
async function repairRootless(ctx: EngineContext): Promise<NetworkRepair> {
  const helpers: string[] = [];
  for (const r of await ctx.store.list({ all: true })) {
    if (isRunning(r) || !existsSync(join(networkDir(ctx, r.id), 'pasta.pid'))) continue;
    if (helperPid(networkDir(ctx, r.id)) !== undefined) helpers.push(r.id);
    await stopHelper(ctx, r.id);
  }
  return { netns: [], links: [], dnsEntries: 0, addresses: 0, portRules: 0, helpers };
}
