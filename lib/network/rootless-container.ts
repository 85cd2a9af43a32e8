/**
 * Rootless networking of the engine's containers (the CLI, `nsbox serve`), as podman runs it: the
 * container's own user namespace owns its network namespace, and pasta, attached to it by the
 * spawner before the container runs (rootless-net.ts), gives it outbound networking and forwards
 * its published ports. The spawner is the shim for a detached container and the CLI for a
 * foreground one; pasta is its child and dies with it (a kill -9 included). The shim ends it when
 * the container exits (a restart gets a new one on the same host ports); the engine's teardown ends
 * what is left by its pid file, and its repair does so for containers that are not running.
 *
 * There is no bridge without root, so no user-defined networks, no `container:` mode, no aliases
 * and no `--ip`: each is a clear error before anything is made.
 */
import { InvalidStateError, ValidationError } from '../errors.js';
import type { Mount } from '../runtime/options.js';
import { holdPorts, releasePorts } from './ports.js';
import { prepareRootlessNetwork } from './rootless-net.js';
import { portsToHold } from './container-network.js';
import { DEFAULT_NETWORK, type BoundPort, type NetworkOptions, type NetworkState } from './schemas.js';

const WHY = 'a rootless container has a user namespace of its own and its network through pasta, with no bridge to join';

/** A ValidationError for what a rootless container cannot have. Checked at create, and before each start. */
export function checkRootlessNetwork(o: NetworkOptions): void {
  if (o.mode === 'container') {
    throw new ValidationError(`network container:${o.container}: without root a container cannot join another's network namespace (${WHY})`, 'network');
  }
  if (o.mode !== 'bridge') return;
  if (o.ports.some((p) => p.protocol === 'sctp')) throw new ValidationError('rootless networking (pasta) publishes tcp and udp ports, not sctp', 'ports');
  const other = o.networks.find((a) => a.network !== DEFAULT_NETWORK);
  if (other) throw new ValidationError(`network ${other.network}: user-defined networks need root (${WHY}); without root use the default network`, 'network');
  const a = o.networks[0];
  if (a?.aliases.length) throw new ValidationError('network-scoped aliases are only supported for user-defined networks, which need root', 'aliases');
  if (a?.ipv4Address || a?.ipv6Address) throw new ValidationError('user specified IP address is supported on user defined networks only, which need root', 'ip');
}

/**
 * `network create` without root: refused at once (the SDK, the CLI, the API), rather than a
 * network no container could join, which a compose project would find only at container create.
 */
export function refuseRootlessNetworkCreate(name: string): never {
  throw new InvalidStateError(`network create ${name}: user-defined networks need root (${WHY}); without root containers use the default network`);
}

/** docker's network connect/disconnect, refused without root. */
export function refuseRootlessConnect(action: 'connect' | 'disconnect'): never {
  throw new InvalidStateError(`network ${action}: without root a container keeps the network it was started with (${WHY})`);
}

export interface RootlessSetupRequest {
  /** The container's network directory: /etc files, pasta's pid file and log. */
  dir: string;
  hostname: string;
  options: NetworkOptions;
  /** The host ports a previous run had for random ones: taken again (a restart keeps its ports). */
  previous?: NetworkState;
}

export interface RootlessSetup {
  net: true;
  mounts: Mount[];
  state: NetworkState;
  /** The runtime's netHelper option: pasta's command line and pid file. */
  netHelper: { argv: [string, ...string[]]; pidFile: string };
}

/**
 * Before a start: host ports chosen (bound once here and let go, so a busy port is a
 * PortInUseError naming its holder rather than pasta's failure; with SO_REUSEADDR, as pasta binds,
 * so the connections of a restart's previous pasta in TIME_WAIT do not count), /etc files
 * written, pasta's command line. pasta binds the ports itself, on IPv4 and IPv6 ([::1] included).
 */
export function setupRootlessNetwork(r: RootlessSetupRequest): RootlessSetup {
  const o = r.options;
  checkRootlessNetwork(o);
  const tried = holdPorts(portsToHold(o.ports, r.previous), true, true);
  releasePorts(tried.fds);
  const ports: BoundPort[] = tried.ports;
  const p = prepareRootlessNetwork({ dir: r.dir, hostname: r.hostname, ports, extraHosts: o.extraHosts, dns: o.dns, dnsSearch: o.dnsSearch, dnsOptions: o.dnsOptions });
  return { net: true, mounts: p.mounts, state: { endpoints: [], ports: p.ports }, netHelper: p.netHelper };
}
