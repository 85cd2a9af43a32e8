/**
 * A container's networking in docker's shapes, from what it asked for (`NetworkOptions`) and what it
 * got (`NetworkState`, absent while it is not running): inspect's `HostConfig.NetworkMode`,
 * `HostConfig.PortBindings` and `NetworkSettings` (`Ports`, `Networks`, and the top-level
 * IPAddress/Gateway/MacAddress docker fills for the default `bridge` network only), and the
 * `/containers/json` summary's `Ports` and `NetworkSettings.Networks`.
 */
import { dockerPortBindings, dockerPortList, dockerPortMap, type DockerPort, type DockerPortMap } from '../network/docker-ports.js';
import { PSEUDO_NETWORKS } from '../network/network-json.js';
import { DEFAULT_NETWORK, type EndpointState, type NetworkOptions, type NetworkState } from '../network/schemas.js';

export interface ContainerNetworking {
  id: string;
  options: NetworkOptions;
  state?: NetworkState | undefined;
  /** Exposed ports (image `ExposedPorts` and `--expose`), `80/tcp` keys. */
  exposedPorts?: readonly string[];
  /** Network name → id, for the networks of a container that is not running (docker shows their ids). */
  networkIds?: Readonly<Record<string, string>>;
}

export interface EndpointSettingsJson {
  IPAMConfig: { IPv4Address?: string; IPv6Address?: string } | null;
  Links: null;
  Aliases: string[] | null;
  MacAddress: string;
  DriverOpts: null;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
}

/** `HostConfig.NetworkMode` as docker shows it: bridge, none, host, container:<id>, or the network's name. */
export function networkModeText(o: NetworkOptions): string {
  if (o.mode === 'container') return `container:${o.container}`;
  if (o.mode !== 'bridge') return o.mode;
  return o.networks[0]?.network ?? DEFAULT_NETWORK;
}

const empty = (networkId: string): EndpointSettingsJson => ({
  IPAMConfig: null,
  Links: null,
  Aliases: null,
  MacAddress: '',
  DriverOpts: null,
  NetworkID: networkId,
  EndpointID: '',
  Gateway: '',
  IPAddress: '',
  IPPrefixLen: 0,
  IPv6Gateway: '',
  GlobalIPv6Address: '',
  GlobalIPv6PrefixLen: 0,
});

function endpointJson(c: ContainerNetworking, name: string, e: EndpointState | undefined): EndpointSettingsJson {
  const asked = c.options.networks.find((a) => a.network === name || a.network === e?.networkId);
  // docker adds the short id to the aliases on user-defined networks (API < 1.45).
  const aliases = name === DEFAULT_NETWORK ? null : [...new Set([...(e?.aliases ?? asked?.aliases ?? []), c.id.slice(0, 12)])];
  const out: EndpointSettingsJson = {
    ...empty(e?.networkId ?? c.networkIds?.[name] ?? ''),
    IPAMConfig: asked?.ipv4Address || asked?.ipv6Address ? { ...(asked.ipv4Address ? { IPv4Address: asked.ipv4Address } : {}), ...(asked.ipv6Address ? { IPv6Address: asked.ipv6Address } : {}) } : null,
    Aliases: aliases,
  };
  if (!e) return out;
  return {
    ...out,
    MacAddress: e.macAddress,
    EndpointID: e.endpointId,
    Gateway: e.gateway,
    IPAddress: e.ipAddress,
    IPPrefixLen: e.prefixLength,
    ...(e.ipv6Address ? { GlobalIPv6Address: e.ipv6Address, GlobalIPv6PrefixLen: e.ipv6PrefixLength ?? 64, IPv6Gateway: e.ipv6Gateway ?? '' } : {}),
  };
}

/** `NetworkSettings.Networks`: one entry per network; none and host have theirs, container: none. */
export function networksJson(c: ContainerNetworking): Record<string, EndpointSettingsJson> {
  const o = c.options;
  if (o.mode === 'container') return {};
  if (o.mode === 'none' || o.mode === 'host') return { [o.mode]: empty(PSEUDO_NETWORKS.find((n) => n.Name === o.mode)!.Id) };
  const out: Record<string, EndpointSettingsJson> = {};
  const running = c.state?.endpoints ?? [];
  for (const a of o.networks) {
    const e = running.find((x) => x.networkName === a.network || x.networkId === a.network);
    out[e?.networkName ?? a.network] = endpointJson(c, e?.networkName ?? a.network, e);
  }
  // Networks connected after the start (connect) are in the state only.
  for (const e of running) if (!(e.networkName in out)) out[e.networkName] = endpointJson(c, e.networkName, e);
  return out;
}

/** `NetworkSettings.Ports`: published ports while it runs, exposed ones as null; {} when stopped, as docker. */
export function portsJson(c: ContainerNetworking): DockerPortMap {
  if (!c.state) return {};
  return dockerPortMap(c.state.ports, c.exposedPorts ?? []);
}

/** Inspect's `NetworkSettings`. */
export function networkSettingsJson(c: ContainerNetworking) {
  const networks = networksJson(c);
  const bridge = c.state?.endpoints.find((e) => e.networkName === DEFAULT_NETWORK);
  return {
    Bridge: '',
    SandboxID: c.state?.sandboxKey ? c.id : '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Ports: portsJson(c),
    SandboxKey: c.state?.sandboxKey ?? '',
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: bridge?.endpointId ?? '',
    Gateway: bridge?.gateway ?? '',
    GlobalIPv6Address: bridge?.ipv6Address ?? '',
    GlobalIPv6PrefixLen: bridge?.ipv6Address ? (bridge.ipv6PrefixLength ?? 64) : 0,
    IPAddress: bridge?.ipAddress ?? '',
    IPPrefixLen: bridge?.prefixLength ?? 0,
    IPv6Gateway: bridge?.ipv6Gateway ?? '',
    MacAddress: bridge?.macAddress ?? '',
    Networks: networks,
  };
}

/** Inspect's `HostConfig` networking fields. */
export function hostConfigNetworkJson(c: ContainerNetworking) {
  const o = c.options;
  return {
    NetworkMode: networkModeText(o),
    PortBindings: dockerPortBindings(o.ports),
    PublishAllPorts: o.publishAll,
    Dns: o.dns,
    DnsSearch: o.dnsSearch,
    DnsOptions: o.dnsOptions,
    ExtraHosts: o.extraHosts.length ? o.extraHosts.map((h) => `${h.host}:${h.ip}`) : null,
  };
}

/** `/containers/json`'s `Ports`: bound ports while it runs, then exposed ones; exposed only when stopped. */
export function summaryPorts(c: ContainerNetworking): DockerPort[] {
  return dockerPortList(c.state?.ports ?? [], c.exposedPorts ?? []);
}
