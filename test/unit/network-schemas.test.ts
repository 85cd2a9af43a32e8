/** lib/network: the shared model's schemas and their defaults. */
import test from 'ava';
import {
  EndpointStateSchema,
  NetworkAttachmentSchema,
  NetworkOptionsSchema,
  NetworkRecordSchema,
  NetworkStateSchema,
  PortBindingSchema,
  bridgeName,
} from '../../lib/network/index.js';

const id = 'a'.repeat(64);

test('NetworkOptions: {} parses to bridge on the default network, nothing published', (t) => {
  t.deepEqual(NetworkOptionsSchema.parse({}), {
    mode: 'bridge',
    networks: [{ network: 'bridge', aliases: [] }],
    ports: [],
    publishAll: false,
    dns: [],
    dnsSearch: [],
    dnsOptions: [],
    extraHosts: [],
  });
});

test('NetworkOptions: container mode needs its container, and only it takes one', (t) => {
  t.deepEqual(NetworkOptionsSchema.parse({ mode: 'container', container: 'abc' }).container, 'abc');
  t.false(NetworkOptionsSchema.safeParse({ mode: 'container' }).success);
  t.false(NetworkOptionsSchema.safeParse({ mode: 'host', container: 'abc' }).success);
  // every network disconnected, as docker allows: lo only until one is connected again
  t.true(NetworkOptionsSchema.safeParse({ mode: 'bridge', networks: [] }).success);
  t.false(NetworkOptionsSchema.safeParse({ mode: 'nat' }).success);
  t.false(NetworkOptionsSchema.safeParse({ colour: 1 }).success);
});

test('PortBinding and NetworkAttachment defaults and bounds', (t) => {
  t.deepEqual(PortBindingSchema.parse({ containerPort: 80 }), { containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: 0 });
  t.false(PortBindingSchema.safeParse({ containerPort: 0 }).success);
  t.false(PortBindingSchema.safeParse({ containerPort: 65536 }).success);
  t.false(PortBindingSchema.safeParse({ containerPort: 80, hostPort: 65536 }).success);
  t.false(PortBindingSchema.safeParse({ containerPort: 80, protocol: 'icmp' }).success);
  t.deepEqual(NetworkAttachmentSchema.parse({ network: 'n' }), { network: 'n', aliases: [] });
});

test('NetworkRecord and the bridge names', (t) => {
  const record = {
    id,
    name: 'mynet',
    driver: 'bridge',
    subnet: '172.18.0.0/16',
    gateway: '172.18.0.1',
    internal: false,
    ipv6: false,
    labels: {},
    options: {},
    created: '2026-12-06T02:00:00.000Z',
    bridge: bridgeName(id, 'mynet'),
  };
  t.is(NetworkRecordSchema.parse(record).bridge, 'nsbr-aaaaaaaaaa');
  t.is(bridgeName(id, 'bridge'), 'nsbox0');
  t.true(bridgeName(id, 'x').length <= 15);
  t.false(NetworkRecordSchema.safeParse({ ...record, id: 'x' }).success);
  t.false(NetworkRecordSchema.safeParse({ ...record, driver: 'macvlan' }).success);
});

test('NetworkState: bound ports have a real host port', (t) => {
  const endpoint = {
    networkId: id,
    networkName: 'bridge',
    endpointId: 'b'.repeat(64),
    ipAddress: '172.17.0.2',
    prefixLength: 16,
    gateway: '172.17.0.1',
    macAddress: '02:42:ac:11:00:02',
    aliases: [],
  };
  t.deepEqual(EndpointStateSchema.parse(endpoint), endpoint);
  t.deepEqual(NetworkStateSchema.parse({}), { endpoints: [], ports: [] });
  const ok = NetworkStateSchema.safeParse({ endpoints: [endpoint], ports: [{ containerPort: 80, hostPort: 49153 }] });
  t.true(ok.success);
  t.false(NetworkStateSchema.safeParse({ ports: [{ containerPort: 80, hostPort: 0 }] }).success);
});
