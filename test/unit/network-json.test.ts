/** lib/network: networks in docker's JSON, and the Engine API's create body into the store's options. */
import test from 'ava';
import { ValidationError } from '../../lib/errors.js';
import { createOptionsOfBody, networkJson, pseudoNetwork, PSEUDO_NETWORKS, type NetworkRecord } from '../../lib/network/index.js';

const record: NetworkRecord = {
  id: 'a'.repeat(64),
  name: 'bridge',
  driver: 'bridge',
  subnet: '172.17.0.0/16',
  gateway: '172.17.0.1',
  internal: false,
  ipv6: false,
  labels: {},
  options: {},
  created: '2026-12-06T00:00:00.000Z',
  bridge: 'nsbox0',
};

test("networkJson: docker's fields; the default network's options name its bridge", (t) => {
  const j = networkJson(record);
  t.deepEqual(Object.keys(j), ['Name', 'Id', 'Created', 'Scope', 'Driver', 'EnableIPv6', 'IPAM', 'Internal', 'Attachable', 'Ingress', 'ConfigFrom', 'ConfigOnly', 'Containers', 'Options', 'Labels']);
  t.is(j.Options['com.docker.network.bridge.name'], 'nsbox0');
  t.is(j.Options['com.docker.network.bridge.default_bridge'], 'true');
  const user = networkJson({ ...record, name: 'u', ipv6: true, subnet6: 'fd00::/64', gateway6: 'fd00::1', options: { a: 'b' } });
  t.deepEqual(user.Options, { a: 'b' });
  t.deepEqual(user.IPAM.Config, [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }, { Subnet: 'fd00::/64', Gateway: 'fd00::1' }]);
});

test('host and none: fixed ids, found by name, id or prefix', (t) => {
  const host = PSEUDO_NETWORKS.find((n) => n.Name === 'host')!;
  t.is(pseudoNetwork('host'), host);
  t.is(pseudoNetwork(host.Id), host);
  t.is(pseudoNetwork(host.Id.slice(0, 12)), host);
  t.is(pseudoNetwork('web'), undefined);
  t.is(PSEUDO_NETWORKS.find((n) => n.Name === 'none')!.Driver, 'null');
});

test("the create body: docker CLI 28's, IPAM config of both families, and what nsbox refuses", (t) => {
  t.deepEqual(
    createOptionsOfBody({ Name: 'n', CheckDuplicate: true, Driver: 'bridge', Scope: '', EnableIPv6: null, IPAM: { Driver: 'default', Options: {}, Config: [] }, Internal: false, Attachable: false, Ingress: false, ConfigFrom: null, ConfigOnly: false, Options: {}, Labels: {} }),
    { name: 'n', driver: 'bridge', internal: false, ipv6: false, labels: {}, options: {} },
  );
  t.like(createOptionsOfBody({ Name: 'n', EnableIPv6: true, Internal: true, IPAM: { Config: [{ Subnet: 'fd00:1::/64' }, { Subnet: '10.0.0.0/24', Gateway: '10.0.0.254' }] } }), {
    subnet: '10.0.0.0/24',
    gateway: '10.0.0.254',
    subnet6: 'fd00:1::/64',
    ipv6: true,
    internal: true,
  });
  const cases: [unknown, RegExp][] = [
    [{}, /Name/],
    [{ Name: 'n', Driver: 'overlay' }, /plugin "overlay" not found/],
    [{ Name: 'n', IPAM: { Driver: 'dhcp' } }, /IPAM driver "dhcp" not found/],
    [{ Name: 'n', Ingress: true }, /swarm/],
    [{ Name: 'n', IPAM: { Config: [{ Subnet: '10.0.0.0/16', IPRange: '10.0.1.0/24' }] } }, /IPRange is not supported/],
    [{ Name: 'n', IPAM: { Config: [{ Gateway: '10.0.0.1' }] } }, /every ip-range or gateway must have a corresponding subnet/],
    [{ Name: 'n', IPAM: { Config: [{ Subnet: '10.0.0.0/16' }, { Subnet: '10.1.0.0/16' }] } }, /more than one IPv4 subnet/],
    [{ Name: 'n', Labels: { a: 1 } }, /Labels/],
  ];
  for (const [body, message] of cases) t.throws(() => createOptionsOfBody(body), { instanceOf: ValidationError, message }, JSON.stringify(body));
});
