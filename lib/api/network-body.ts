/**
 * The networking part of `POST /containers/create`'s body into the network layer's
 * `NetworkOptions`: `HostConfig.NetworkMode` (`default`/`bridge`/`none`/`host`/`container:<id>`/a
 * network's name), `NetworkingConfig.EndpointsConfig` (Aliases, IPAMConfig.IPv4Address,
 * MacAddress), `HostConfig.PortBindings`/`PublishAllPorts`, `Dns`/`DnsSearch`/`DnsOptions`,
 * `ExtraHosts`, `Hostname`, `ExposedPorts`. docker's conflicts are refused with docker's words.
 */
import { isIP } from 'node:net';
import * as z from 'zod';
import { ValidationError } from '../errors.js';
import { parseDockerPortBindings, parsePortKey, portKey } from '../network/port-spec.js';
import { DEFAULT_NETWORK, NetworkOptionsSchema, USER_ALIAS_ONLY, USER_IP_ONLY, type ExtraHost, type NetworkAttachment, type NetworkOptions } from '../network/schemas.js';

const strings = z.array(z.string()).nullish();

const EndpointSchema = z
  .looseObject({
    Aliases: strings,
    IPAMConfig: z.looseObject({ IPv4Address: z.string().nullish(), IPv6Address: z.string().nullish() }).nullish(),
    MacAddress: z.string().nullish(),
  })
  .nullish();

export const NetworkBodySchema = z.looseObject({
  Hostname: z.string().nullish(),
  MacAddress: z.string().nullish(),
  ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
  HostConfig: z
    .looseObject({
      NetworkMode: z.string().nullish(),
      PortBindings: z.record(z.string(), z.array(z.looseObject({ HostIp: z.string().nullish(), HostPort: z.string().nullish() })).nullish()).nullish(),
      PublishAllPorts: z.boolean().nullish(),
      Dns: strings,
      DnsSearch: strings,
      DnsOptions: strings,
      ExtraHosts: strings,
    })
    .nullish(),
  NetworkingConfig: z.looseObject({ EndpointsConfig: z.record(z.string(), EndpointSchema).nullish() }).nullish(),
});
export type NetworkBody = z.input<typeof NetworkBodySchema>;

export interface NetworkRequest {
  network: NetworkOptions;
  /** `ExposedPorts` of the body (`--expose`), as `80/tcp` keys: with the image's, what `-P` publishes. */
  exposedPorts: string[];
  /** What docker would warn about (ports given to a host-mode container are dropped). */
  warnings: string[];
}

const conflict = (what: string, field: string) => new ValidationError(`conflicting options: ${what} and the network mode`, field);

/** `host:ip` (or docker 25's `host=ip`); the IP may be `host-gateway`. */
export function parseExtraHost(text: string): ExtraHost {
  const sep = text.includes('=') ? text.indexOf('=') : text.indexOf(':');
  const host = text.slice(0, sep);
  let ip = text.slice(sep + 1);
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (sep <= 0 || (ip !== 'host-gateway' && isIP(ip) === 0)) {
    throw new ValidationError(`invalid IP address in add-host: "${text}" (host:ip, the IP an address or host-gateway)`, 'ExtraHosts');
  }
  return { host, ip };
}

function modeOf(text: string | null | undefined): Pick<NetworkOptions, 'mode'> & { container?: string; network?: string } {
  const m = text || 'default';
  if (m === 'none' || m === 'host') return { mode: m };
  if (m.startsWith('container:')) {
    const container = m.slice('container:'.length);
    if (!container) throw new ValidationError('invalid network mode container: a container name or id is needed', 'HostConfig.NetworkMode');
    return { mode: 'container', container };
  }
  return { mode: 'bridge', network: m === 'default' ? DEFAULT_NETWORK : m };
}

/** The body's networking as `NetworkOptions` (schema-checked), the exposed ports, and docker's warnings. */
export function networkRequestOf(input: unknown): NetworkRequest {
  const r = NetworkBodySchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.map(String).join('.') || 'body';
    throw new ValidationError(`invalid create body: ${field}: ${issue.message}`, field, r.error);
  }
  const body = r.data;
  const hc = body.HostConfig ?? {};
  const warnings: string[] = [];
  const mode = modeOf(hc.NetworkMode);
  let ports = parseDockerPortBindings(hc.PortBindings);
  const exposedPorts = Object.keys(body.ExposedPorts ?? {}).map((k) => portKey(parsePortKey(k)));
  const dns = hc.Dns ?? [];
  for (const d of dns) if (isIP(d) === 0) throw new ValidationError(`invalid IP address in dns: "${d}"`, 'HostConfig.Dns');
  const extraHosts = (hc.ExtraHosts ?? []).map(parseExtraHost);
  const endpoints = Object.entries(body.NetworkingConfig?.EndpointsConfig ?? {}).map(([name, e]) => [name === 'default' ? DEFAULT_NETWORK : name, e ?? {}] as const);

  if (mode.mode === 'container') {
    if (ports.length || hc.PublishAllPorts) throw conflict('port publishing', 'HostConfig.PortBindings');
    if (dns.length) throw conflict('dns', 'HostConfig.Dns');
    if (extraHosts.length) throw conflict('custom host-to-IP mapping', 'HostConfig.ExtraHosts');
    if (body.Hostname) throw conflict('hostname', 'Hostname');
  }
  if (mode.mode === 'host' && (ports.length || hc.PublishAllPorts)) {
    warnings.push('Published ports are discarded when using host network mode');
    ports = [];
  }

  const networks: NetworkAttachment[] = [];
  if (mode.mode === 'bridge') {
    const primary = mode.network!;
    const ordered = [...endpoints.filter(([n]) => n === primary), ...endpoints.filter(([n]) => n !== primary)];
    if (!ordered.some(([n]) => n === primary)) ordered.unshift([primary, {}]);
    for (const [name, e] of ordered) {
      const aliases = e.Aliases ?? [];
      const ipv4Address = e.IPAMConfig?.IPv4Address || undefined;
      const ipv6Address = e.IPAMConfig?.IPv6Address || undefined;
      if (name === DEFAULT_NETWORK && aliases.length) {
        throw new ValidationError(USER_ALIAS_ONLY, 'NetworkingConfig.EndpointsConfig.Aliases');
      }
      if (name === DEFAULT_NETWORK && (ipv4Address || ipv6Address)) {
        throw new ValidationError(USER_IP_ONLY, 'NetworkingConfig.EndpointsConfig.IPAMConfig');
      }
      if (ipv4Address && isIP(ipv4Address) !== 4) throw new ValidationError(`invalid IPv4 address: ${ipv4Address}`, 'NetworkingConfig.EndpointsConfig.IPAMConfig.IPv4Address');
      if (ipv6Address && isIP(ipv6Address) !== 6) throw new ValidationError(`invalid IPv6 address: ${ipv6Address}`, 'NetworkingConfig.EndpointsConfig.IPAMConfig.IPv6Address');
      networks.push({ network: name, aliases, ...(ipv4Address ? { ipv4Address } : {}), ...(ipv6Address ? { ipv6Address } : {}) });
    }
  } else if (endpoints.some(([n]) => n !== mode.mode && n !== DEFAULT_NETWORK)) {
    throw new ValidationError(`container cannot be connected to networks other than its ${mode.mode} network mode`, 'NetworkingConfig.EndpointsConfig');
  } else {
    // none, host and container: no network of the user's, so no address or alias on one (docker's refusals).
    for (const [, e] of endpoints) {
      if (e.IPAMConfig?.IPv4Address || e.IPAMConfig?.IPv6Address) {
        throw new ValidationError(USER_IP_ONLY, 'NetworkingConfig.EndpointsConfig.IPAMConfig');
      }
      if (e.Aliases?.length) throw new ValidationError(USER_ALIAS_ONLY, 'NetworkingConfig.EndpointsConfig.Aliases');
    }
  }

  const mac = body.MacAddress || endpoints.find(([, e]) => e.MacAddress)?.[1].MacAddress || undefined;
  const network = NetworkOptionsSchema.parse({
    mode: mode.mode,
    ...(mode.container ? { container: mode.container } : {}),
    networks,
    ports,
    publishAll: mode.mode === 'host' ? false : (hc.PublishAllPorts ?? false),
    dns,
    dnsSearch: hc.DnsSearch ?? [],
    dnsOptions: hc.DnsOptions ?? [],
    extraHosts,
    ...(body.Hostname ? { hostname: body.Hostname } : {}),
    ...(mac ? { macAddress: mac } : {}),
  });
  return { network, exposedPorts, warnings };
}
