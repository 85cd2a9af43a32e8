/**
 * `run`'s networking flags into the network layer's options, through the same mapping as the API's
 * create body (lib/api/network-body.ts): `--network bridge|none|host|NAME|container:<id>`,
 * `--network-alias`, `--ip`, `--ip6`, `-p/--publish`, `-P/--publish-all`, `--dns`, `--dns-search`,
 * `--dns-option`, `--add-host`, `--hostname`.
 *
 * The default mode is `none` (a namespace of its own with lo only), not docker's `bridge`: a bridge
 * is made in the network namespace the engine runs in, and nsbox does not make one there unless
 * asked. Asking is `--network bridge` (or a network's name), or publishing a port (`-p`, `-P`),
 * which makes no sense without one. NSBOX_DEFAULT_NETWORK=bridge makes `bridge` the default.
 */
import { networkRequestOf } from '../api/network-body.js';
import { dockerPortBindings } from '../network/docker-ports.js';
import { parsePortSpecs, publishAllPorts } from '../network/port-spec.js';
import { defaultNetworkMode } from '../network/network-mode.js';
import type { NetworkOptions } from '../network/schemas.js';
import { flag, value, values, type FlagSpec, type Parsed } from './args.js';

export const NETWORK_FLAGS: FlagSpec[] = [
  { names: ['network', 'net'], kind: 'value' },
  { names: ['network-alias', 'net-alias'], kind: 'list' },
  { names: ['ip'], kind: 'value' },
  { names: ['ip6'], kind: 'value' },
  { names: ['publish', 'p'], kind: 'list' },
  { names: ['publish-all', 'P'], kind: 'bool' },
  { names: ['expose'], kind: 'list' },
  { names: ['dns'], kind: 'list' },
  { names: ['dns-search'], kind: 'list' },
  { names: ['dns-option', 'dns-opt'], kind: 'list' },
  { names: ['add-host'], kind: 'list' },
];

export interface CliNetwork {
  network: NetworkOptions;
  warnings: string[];
}

export function networkFrom(p: Parsed): CliNetwork {
  const publish = values(p, 'publish');
  const publishAll = flag(p, 'publish-all');
  const mode = value(p, 'network') ?? (publish.length || publishAll ? 'bridge' : defaultNetworkMode());
  const aliases = values(p, 'network-alias');
  const ip = value(p, 'ip');
  const ip6 = value(p, 'ip6');
  const name = mode === 'none' || mode === 'host' || mode.startsWith('container:') ? undefined : mode;
  const expose = values(p, 'expose').map((e) => (e.includes('/') ? e : `${e}/tcp`));
  const r = networkRequestOf({
    ...(value(p, 'hostname') ? { Hostname: value(p, 'hostname') } : {}),
    ExposedPorts: Object.fromEntries(expose.map((e) => [e, {}])),
    HostConfig: {
      NetworkMode: mode,
      PortBindings: dockerPortBindings(parsePortSpecs(publish)),
      PublishAllPorts: publishAll,
      Dns: values(p, 'dns'),
      DnsSearch: values(p, 'dns-search'),
      DnsOptions: values(p, 'dns-option'),
      ExtraHosts: values(p, 'add-host'),
    },
    // Under the mode's own name for none, host and container:, which have no addresses or aliases to
    // give: refused there as docker refuses them, never dropped.
    ...(aliases.length || ip || ip6
      ? { NetworkingConfig: { EndpointsConfig: { [name ?? (mode.startsWith('container:') ? 'container' : mode)]: { Aliases: aliases, ...(ip || ip6 ? { IPAMConfig: { ...(ip ? { IPv4Address: ip } : {}), ...(ip6 ? { IPv6Address: ip6 } : {}) } } : {}) } } } }
      : {}),
  });
  // --expose ports join the image's for -P.
  if (r.network.publishAll) r.network.ports = publishAllPorts(r.exposedPorts, r.network.ports);
  return { network: r.network, warnings: r.warnings };
}
