/** The Engine API's container networking: the create body into NetworkOptions, and back to docker's inspect/ps shapes. */
import test from 'ava';
import { ValidationError } from '../../lib/errors.js';
import { networkRequestOf, parseExtraHost } from '../../lib/api/network-body.js';
import { hostConfigNetworkJson, networkModeText, networkSettingsJson, networksJson, summaryPorts } from '../../lib/api/network-settings.js';
import { NetworkOptionsSchema, PSEUDO_NETWORKS } from '../../lib/network/index.js';

const id = 'c'.repeat(64);
const netId = 'a'.repeat(64);
const userNetId = 'b'.repeat(64);

test("what the docker CLI sends for a plain run: the default bridge network, nothing published", (t) => {
  const r = networkRequestOf({ HostConfig: { NetworkMode: 'default', PortBindings: {}, Dns: [], DnsOptions: [], DnsSearch: [], ExtraHosts: null }, NetworkingConfig: { EndpointsConfig: { default: {} } } });
  t.deepEqual(r.network, NetworkOptionsSchema.parse({}));
  t.deepEqual(r.warnings, []);
  t.deepEqual(networkRequestOf({}).network, NetworkOptionsSchema.parse({}));
  t.deepEqual(networkRequestOf({ HostConfig: { NetworkMode: 'bridge' } }).network.networks, [{ network: 'bridge', aliases: [] }]);
});

test('-p, -P, --expose, --dns, --add-host, --hostname, --network NAME --network-alias --ip', (t) => {
  const r = networkRequestOf({
    Hostname: 'web',
    ExposedPorts: { '80/tcp': {}, '53/udp': {} },
    HostConfig: {
      NetworkMode: 'mynet',
      PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
      PublishAllPorts: true,
      Dns: ['10.0.0.53'],
      DnsSearch: ['example.com'],
      DnsOptions: ['ndots:2'],
      ExtraHosts: ['db:10.0.0.5', 'gw:host-gateway', 'six:::1'],
    },
    NetworkingConfig: { EndpointsConfig: { other: { Aliases: ['x'] }, mynet: { Aliases: ['api', 'web'], IPAMConfig: { IPv4Address: '10.1.0.9' } } } },
  });
  t.deepEqual(r.network, {
    mode: 'bridge',
    networks: [
      { network: 'mynet', aliases: ['api', 'web'], ipv4Address: '10.1.0.9' },
      { network: 'other', aliases: ['x'] },
    ],
    ports: [
      { containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: 8080 },
      { containerPort: 53, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 0 },
    ],
    publishAll: true,
    dns: ['10.0.0.53'],
    dnsSearch: ['example.com'],
    dnsOptions: ['ndots:2'],
    extraHosts: [
      { host: 'db', ip: '10.0.0.5' },
      { host: 'gw', ip: 'host-gateway' },
      { host: 'six', ip: '::1' },
    ],
    hostname: 'web',
  });
  t.deepEqual(r.exposedPorts, ['80/tcp', '53/udp']);
});

test('none, host and container: modes, with docker\'s conflicts', (t) => {
  t.like(networkRequestOf({ HostConfig: { NetworkMode: 'none' } }).network, { mode: 'none', networks: [] });
  const host = networkRequestOf({ HostConfig: { NetworkMode: 'host', PortBindings: { '80/tcp': [{ HostPort: '80' }] } } });
  t.like(host.network, { mode: 'host', ports: [] });
  t.deepEqual(host.warnings, ['Published ports are discarded when using host network mode']);
  t.like(networkRequestOf({ HostConfig: { NetworkMode: 'container:abc' } }).network, { mode: 'container', container: 'abc', networks: [] });
  const cases: [unknown, RegExp][] = [
    [{ HostConfig: { NetworkMode: 'container:abc', PortBindings: { '80/tcp': [{}] } } }, /^conflicting options: port publishing and the network mode$/],
    [{ HostConfig: { NetworkMode: 'container:abc', Dns: ['1.1.1.1'] } }, /dns and the network mode/],
    [{ HostConfig: { NetworkMode: 'container:abc', ExtraHosts: ['a:1.2.3.4'] } }, /custom host-to-IP mapping/],
    [{ Hostname: 'h', HostConfig: { NetworkMode: 'container:abc' } }, /hostname and the network mode/],
    [{ HostConfig: { NetworkMode: 'container:' } }, /a container name or id is needed/],
    [{ HostConfig: { NetworkMode: 'none' }, NetworkingConfig: { EndpointsConfig: { mynet: {} } } }, /cannot be connected to networks other than its none network mode/],
    [{ NetworkingConfig: { EndpointsConfig: { default: { Aliases: ['a'] } } } }, /network-scoped alias is supported only for containers in user defined networks/],
    [{ HostConfig: { NetworkMode: 'bridge' }, NetworkingConfig: { EndpointsConfig: { bridge: { IPAMConfig: { IPv4Address: '172.17.0.9' } } } } }, /user specified IP address is supported on user defined networks only/],
    [{ HostConfig: { NetworkMode: 'n' }, NetworkingConfig: { EndpointsConfig: { n: { IPAMConfig: { IPv4Address: 'x' } } } } }, /invalid IPv4 address: x/],
    [{ HostConfig: { NetworkMode: 'none' }, NetworkingConfig: { EndpointsConfig: { none: { IPAMConfig: { IPv4Address: '10.0.0.9' } } } } }, /^user specified IP address is supported on user defined networks only$/],
    [{ HostConfig: { NetworkMode: 'host' }, NetworkingConfig: { EndpointsConfig: { host: { IPAMConfig: { IPv6Address: 'fd00::9' } } } } }, /^user specified IP address is supported on user defined networks only$/],
    [{ HostConfig: { NetworkMode: 'container:abc' }, NetworkingConfig: { EndpointsConfig: { container: { IPAMConfig: { IPv4Address: '10.0.0.9' } } } } }, /^user specified IP address is supported on user defined networks only$/],
    [{ HostConfig: { NetworkMode: 'none' }, NetworkingConfig: { EndpointsConfig: { none: { Aliases: ['a'] } } } }, /^network-scoped alias is supported only for containers in user defined networks$/],
    [{ HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '70000' }] } } }, /invalid HostPort "70000"/],
    [{ HostConfig: { Dns: ['dns.example'] } }, /invalid IP address in dns: "dns.example"/],
    [{ HostConfig: { ExtraHosts: ['nohost'] } }, /invalid IP address in add-host: "nohost"/],
    [{ ExposedPorts: { 'x/tcp': {} } }, /invalid port "x\/tcp"/],
    [{ HostConfig: { NetworkMode: 5 } }, /invalid create body: HostConfig.NetworkMode/],
  ];
  for (const [body, message] of cases) t.throws(() => networkRequestOf(body), { instanceOf: ValidationError, message }, JSON.stringify(body));
  t.deepEqual(parseExtraHost('a=1.2.3.4'), { host: 'a', ip: '1.2.3.4' });
  t.deepEqual(parseExtraHost('a:[::1]'), { host: 'a', ip: '::1' });
});

const endpoint = (name: string, networkId: string, ip: string, prefix: number, aliases: string[] = []) => ({
  networkId,
  networkName: name,
  endpointId: 'e'.repeat(64),
  ipAddress: ip,
  prefixLength: prefix,
  gateway: ip.replace(/\.\d+$/, '.1'),
  macAddress: '02:42:ac:11:00:02',
  aliases,
});

test('inspect of a running container on the default bridge: top-level address, Ports, Networks', (t) => {
  const options = NetworkOptionsSchema.parse({ ports: [{ containerPort: 80, hostPort: 8080 }] });
  const c = {
    id,
    options,
    exposedPorts: ['80/tcp', '443/tcp'],
    state: { sandboxKey: '/run/nsbox/netns/x', endpoints: [endpoint('bridge', netId, '172.17.0.2', 16)], ports: [{ containerPort: 80, protocol: 'tcp' as const, hostIp: '', hostPort: 8080 }] },
  };
  const s = networkSettingsJson(c);
  t.like(s, { IPAddress: '172.17.0.2', IPPrefixLen: 16, Gateway: '172.17.0.1', MacAddress: '02:42:ac:11:00:02', EndpointID: 'e'.repeat(64), SandboxKey: '/run/nsbox/netns/x' });
  t.deepEqual(s.Ports, { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }, { HostIp: '::', HostPort: '8080' }], '443/tcp': null });
  t.deepEqual(s.Networks, {
    bridge: {
      IPAMConfig: null, Links: null, Aliases: null, MacAddress: '02:42:ac:11:00:02', DriverOpts: null, NetworkID: netId, EndpointID: 'e'.repeat(64),
      Gateway: '172.17.0.1', IPAddress: '172.17.0.2', IPPrefixLen: 16, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
    },
  });
  t.deepEqual(hostConfigNetworkJson(c), {
    NetworkMode: 'bridge', PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] }, PublishAllPorts: false, Dns: [], DnsSearch: [], DnsOptions: [], ExtraHosts: null,
  });
  t.deepEqual(summaryPorts(c), [
    { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
    { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
    { PrivatePort: 443, Type: 'tcp' },
  ]);
});

test('a user network: no top-level address, aliases with the short id; stopped: empty endpoints with the network id', (t) => {
  const options = NetworkOptionsSchema.parse({ networks: [{ network: 'mynet', aliases: ['api'], ipv4Address: '10.1.0.9' }] });
  const running = networkSettingsJson({ id, options, state: { endpoints: [endpoint('mynet', userNetId, '10.1.0.9', 24, ['api'])], ports: [] } });
  t.is(running.IPAddress, '');
  t.like(running.Networks['mynet'], { IPAMConfig: { IPv4Address: '10.1.0.9' }, Aliases: ['api', id.slice(0, 12)], IPAddress: '10.1.0.9', NetworkID: userNetId });
  const stopped = networkSettingsJson({ id, options, exposedPorts: ['80/tcp'], networkIds: { mynet: userNetId } });
  t.deepEqual(stopped.Ports, {});
  t.like(stopped.Networks['mynet'], { NetworkID: userNetId, IPAddress: '', EndpointID: '', Aliases: ['api', id.slice(0, 12)] });
  t.deepEqual(summaryPorts({ id, options, exposedPorts: ['80/tcp'] }), [{ PrivatePort: 80, Type: 'tcp' }]);
  t.is(networkModeText(options), 'mynet');
});

test('none, host and container: modes in inspect', (t) => {
  const none = networksJson({ id, options: NetworkOptionsSchema.parse({ mode: 'none', networks: [] }) });
  t.deepEqual(Object.keys(none), ['none']);
  t.is(none['none']!.NetworkID, PSEUDO_NETWORKS.find((n) => n.Name === 'none')!.Id);
  t.deepEqual(Object.keys(networksJson({ id, options: NetworkOptionsSchema.parse({ mode: 'host' }) })), ['host']);
  const joined = NetworkOptionsSchema.parse({ mode: 'container', container: 'abc', networks: [] });
  t.deepEqual(networksJson({ id, options: joined }), {});
  t.is(networkModeText(joined), 'container:abc');
});
