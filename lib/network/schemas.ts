/**
 * The network layer's data, shared by its parts and by the engine: what a container asks for
 * (`NetworkOptions`, with its published ports and attachments), what a network is on disk
 * (`NetworkRecord`) and what a container got (`NetworkState`, kept in its record for inspect and
 * ps). Docker's model point by point; the docker API's spellings are mapped in lib/api.
 */
import * as z from 'zod';

import { PROTOCOLS } from './protocols.js';

export { PROTOCOLS, type Protocol } from './protocols.js';

const port = z.number().int().min(1).max(65535);
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

/** One published port: `hostIp` '' is every address, `hostPort` 0 a random port. */
export const PortBindingSchema = z
  .object({
    containerPort: port,
    protocol: z.enum(PROTOCOLS).default('tcp'),
    hostIp: z.string().default(''),
    hostPort: z.number().int().min(0).max(65535).default(0),
  })
  .strict();
export type PortBinding = z.output<typeof PortBindingSchema>;
export type PortBindingInput = z.input<typeof PortBindingSchema>;

/** One network a bridge-mode container joins, by name or id. */
export const NetworkAttachmentSchema = z
  .object({
    network: z.string().min(1),
    aliases: z.array(z.string().min(1)).default([]),
    ipv4Address: z.string().optional(),
    /** docker's --ip6 (IPAMConfig.IPv6Address): on an IPv6 network, instead of the IPv4 address's twin. */
    ipv6Address: z.string().optional(),
  })
  .strict();
export type NetworkAttachment = z.output<typeof NetworkAttachmentSchema>;

export const NETWORK_OPTION_MODES = ['none', 'host', 'bridge', 'container'] as const;

export const ExtraHostSchema = z.object({ host: z.string().min(1), ip: z.string().min(1) }).strict();
export type ExtraHost = z.output<typeof ExtraHostSchema>;

/**
 * What a container asks of the network layer. `bridge` joins `networks` (the first is the primary
 * one: its gateway is the default route); `container` shares the netns of `container`.
 */
export const NetworkOptionsSchema = z
  .object({
    mode: z.enum(NETWORK_OPTION_MODES).default('bridge'),
    container: z.string().min(1).optional(),
    networks: z.array(NetworkAttachmentSchema).default([{ network: 'bridge', aliases: [] }]),
    ports: z.array(PortBindingSchema).default([]),
    publishAll: z.boolean().default(false),
    dns: z.array(z.string()).default([]),
    dnsSearch: z.array(z.string()).default([]),
    dnsOptions: z.array(z.string()).default([]),
    extraHosts: z.array(ExtraHostSchema).default([]),
    hostname: z.string().optional(),
    macAddress: z.string().optional(),
    /**
     * `none` is nsbox's default here, not asked for (docker's container would be on `bridge`):
     * a `network connect` before the first start puts it in bridge mode on that network instead
     * of refusing, as testcontainers' aliases and compose's extra networks need.
     */
    unasked: z.boolean().optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.mode === 'container' && !o.container) {
      ctx.addIssue({ code: 'custom', path: ['container'], message: 'mode container needs the container whose network to share' });
    }
    if (o.mode !== 'container' && o.container !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['container'], message: `only mode container takes a container (mode is ${o.mode})` });
    }
    // bridge mode with no network: every one was disconnected (docker allows it); lo only.
  });
export type NetworkOptions = z.output<typeof NetworkOptionsSchema>;
export type NetworkOptionsInput = z.input<typeof NetworkOptionsSchema>;

/** docker's refusals of an address or an alias on a network that is not user-defined (bridge, none, host, container:). */
export const USER_IP_ONLY = 'user specified IP address is supported on user defined networks only';
export const USER_ALIAS_ONLY = 'network-scoped alias is supported only for containers in user defined networks';

/** The default network's name and bridge device (docker's `bridge` is `docker0`). */
export const DEFAULT_NETWORK = 'bridge';
export const DEFAULT_BRIDGE = 'nsbox0';

/** The bridge device of a network: `nsbox0` for the default one, `nsbr-` + 10 hex of the id otherwise (≤ 15 chars). */
export function bridgeName(id: string, name: string): string {
  return name === DEFAULT_NETWORK ? DEFAULT_BRIDGE : `nsbr-${id.slice(0, 10)}`;
}

/** A network as the store keeps it (`<root>/networks/<id>.json`). */
export const NetworkRecordSchema = z
  .object({
    id: hex64,
    name: z.string().min(1),
    driver: z.literal('bridge'),
    subnet: z.string(),
    gateway: z.string(),
    internal: z.boolean(),
    ipv6: z.boolean(),
    subnet6: z.string().optional(),
    gateway6: z.string().optional(),
    labels: z.record(z.string(), z.string()),
    options: z.record(z.string(), z.string()),
    created: z.iso.datetime({ offset: true }),
    bridge: z.string().min(1).max(15),
  })
  .strict();
export type NetworkRecord = z.output<typeof NetworkRecordSchema>;

/** A container's endpoint on one network, as the engine records it. */
export const EndpointStateSchema = z
  .object({
    networkId: hex64,
    networkName: z.string(),
    endpointId: hex64,
    ipAddress: z.string(),
    prefixLength: z.number().int().min(0).max(128),
    gateway: z.string(),
    macAddress: z.string(),
    aliases: z.array(z.string()),
    ipv6Address: z.string().optional(),
    ipv6PrefixLength: z.number().int().min(0).max(128).optional(),
    ipv6Gateway: z.string().optional(),
    /** The interface in the container (`eth0`…); records written before it was kept had `eth<index>`. */
    ifname: z.string().optional(),
  })
  .strict();
export type EndpointState = z.output<typeof EndpointStateSchema>;

/** A published port as bound: the host port actually held (never 0). */
export const BoundPortSchema = PortBindingSchema.extend({ hostPort: port });
export type BoundPort = z.output<typeof BoundPortSchema>;

/** What a container got of the network layer: its netns, its endpoints, its bound ports. */
export const NetworkStateSchema = z
  .object({
    sandboxKey: z.string().optional(),
    endpoints: z.array(EndpointStateSchema).default([]),
    ports: z.array(BoundPortSchema).default([]),
  })
  .strict();
export type NetworkState = z.output<typeof NetworkStateSchema>;
