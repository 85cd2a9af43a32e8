/**
 * Networks in docker's shapes: `GET /networks/{id}` and `docker network inspect` (the same JSON),
 * the entries of `GET /networks`, and the `host` and `none` networks docker lists beside `bridge`
 * (here they are modes, not records: their ids are fixed). The Engine API's create body is read here
 * into the store's options.
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { ValidationError } from '../errors.js';
import { parseIp } from './cidr.js';
import type { CreateNetworkOptions } from './network-store.js';
import { DEFAULT_NETWORK, type NetworkRecord } from './schemas.js';

/** One attached container in inspect's `Containers`. */
export interface NetworkContainerJson {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  IPv4Address: string;
  IPv6Address: string;
}

export interface NetworkJson {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local';
  Driver: string;
  EnableIPv6: boolean;
  IPAM: { Driver: 'default'; Options: Record<string, string> | null; Config: { Subnet: string; Gateway: string }[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<string, NetworkContainerJson>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

/** The options docker shows for its default network, with nsbox's bridge name. */
function optionsOf(n: NetworkRecord): Record<string, string> {
  if (n.name !== DEFAULT_NETWORK) return { ...n.options };
  return {
    'com.docker.network.bridge.default_bridge': 'true',
    'com.docker.network.bridge.enable_icc': 'true',
    'com.docker.network.bridge.enable_ip_masquerade': 'true',
    'com.docker.network.bridge.name': n.bridge,
    ...n.options,
  };
}

export function networkJson(n: NetworkRecord, containers: Record<string, NetworkContainerJson> = {}): NetworkJson {
  const config = [{ Subnet: n.subnet, Gateway: n.gateway }];
  if (n.subnet6) config.push({ Subnet: n.subnet6, Gateway: n.gateway6 ?? '' });
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: n.ipv6,
    IPAM: { Driver: 'default', Options: n.name === DEFAULT_NETWORK ? null : {}, Config: config },
    Internal: n.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: optionsOf(n),
    Labels: { ...n.labels },
  };
}

const fixedId = (name: string) => createHash('sha256').update(`nsbox-network-${name}`).digest('hex');

/** docker's `host` and `none` networks: modes in nsbox, listed as docker lists them. */
export const PSEUDO_NETWORKS: readonly NetworkJson[] = (['host', 'none'] as const).map((name) => ({
  Name: name,
  Id: fixedId(name),
  Created: '1970-01-01T00:00:00Z',
  Scope: 'local',
  Driver: name === 'host' ? 'host' : 'null',
  EnableIPv6: false,
  IPAM: { Driver: 'default', Options: null, Config: [] },
  Internal: false,
  Attachable: false,
  Ingress: false,
  ConfigFrom: { Network: '' },
  ConfigOnly: false,
  Containers: {},
  Options: {},
  Labels: {},
}));

/** The pseudo network `ref` names (by name, id or unique id prefix), if any. */
export function pseudoNetwork(ref: string): NetworkJson | undefined {
  return PSEUDO_NETWORKS.find((n) => n.Name === ref || n.Id === ref || (ref.length >= 1 && /^[0-9a-f]+$/.test(ref) && n.Id.startsWith(ref)));
}

/** Inspect's entry for one container: its address with the prefix length, as docker writes it. */
export function networkContainerJson(e: {
  name: string;
  endpointId?: string;
  macAddress?: string;
  ipAddress: string;
  prefixLength: number;
  ipv6Address?: string;
  ipv6PrefixLength?: number;
}): NetworkContainerJson {
  return {
    Name: e.name,
    EndpointID: e.endpointId ?? '',
    MacAddress: e.macAddress ?? '',
    IPv4Address: `${e.ipAddress}/${e.prefixLength}`,
    IPv6Address: e.ipv6Address ? `${e.ipv6Address}/${e.ipv6PrefixLength ?? 64}` : '',
  };
}

const str = z.string().nullish();
const NetworkCreateBodySchema = z
  .object({
    Name: z.string({ error: 'a network name is required' }).min(1, 'a network name is required'),
    CheckDuplicate: z.boolean().nullish(),
    Driver: str,
    Scope: str,
    EnableIPv6: z.boolean().nullish(),
    IPAM: z
      .looseObject({
        Driver: str,
        Options: z.record(z.string(), z.string()).nullish(),
        Config: z.array(z.looseObject({ Subnet: str, IPRange: str, Gateway: str, AuxiliaryAddresses: z.record(z.string(), z.string()).nullish() })).nullish(),
      })
      .nullish(),
    Internal: z.boolean().nullish(),
    Attachable: z.boolean().nullish(),
    Ingress: z.boolean().nullish(),
    ConfigOnly: z.boolean().nullish(),
    Options: z.record(z.string(), z.string()).nullish(),
    Labels: z.record(z.string(), z.string()).nullish(),
  })
  .loose();

/** `POST /networks/create`'s body as the store's options; what nsbox cannot do is a 400, not ignored. */
export function createOptionsOfBody(input: unknown): CreateNetworkOptions {
  const r = NetworkCreateBodySchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.map(String).join('.') || 'body';
    throw new ValidationError(`invalid network create body: ${field}: ${issue.message}`, field, r.error);
  }
  const b = r.data;
  const driver = b.Driver || 'bridge';
  if (driver !== 'bridge') throw new ValidationError(`plugin "${driver}" not found: nsbox has the bridge driver`, 'Driver');
  if (b.IPAM?.Driver && b.IPAM.Driver !== 'default') throw new ValidationError(`IPAM driver "${b.IPAM.Driver}" not found: nsbox has the default one`, 'IPAM.Driver');
  if (b.Ingress || b.ConfigOnly) throw new ValidationError('ingress and config-only networks are swarm features nsbox does not have', 'Ingress');
  const out: CreateNetworkOptions = {
    name: b.Name,
    driver: 'bridge',
    internal: b.Internal ?? false,
    ipv6: b.EnableIPv6 ?? false,
    labels: b.Labels ?? {},
    options: b.Options ?? {},
  };
  for (const c of b.IPAM?.Config ?? []) {
    if (c.IPRange && c.IPRange !== c.Subnet) throw new ValidationError(`IPRange ${c.IPRange}: nsbox allocates from the whole subnet (IPRange is not supported)`, 'IPAM.Config.IPRange');
    if (c.AuxiliaryAddresses && Object.keys(c.AuxiliaryAddresses).length > 0) {
      throw new ValidationError('AuxiliaryAddresses are not supported', 'IPAM.Config.AuxiliaryAddresses');
    }
    if (!c.Subnet) {
      if (c.Gateway) throw new ValidationError('every ip-range or gateway must have a corresponding subnet', 'IPAM.Config.Gateway');
      continue;
    }
    const family = parseIp(c.Subnet.split('/')[0] ?? '')?.family;
    const [subnetKey, gatewayKey] = family === 6 ? (['subnet6', 'gateway6'] as const) : (['subnet', 'gateway'] as const);
    if (out[subnetKey] !== undefined) throw new ValidationError(`more than one IPv${family ?? 4} subnet: nsbox networks have one of each family`, 'IPAM.Config');
    out[subnetKey] = c.Subnet;
    if (c.Gateway) out[gatewayKey] = c.Gateway;
  }
  return out;
}
