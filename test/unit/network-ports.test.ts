/** lib/network: published ports from docker's -p, -P and HostConfig.PortBindings, and back to docker's shapes. */
import test from 'ava';
import { ValidationError } from '../../lib/errors.js';
import {
  displayPorts,
  dockerPortBindings,
  dockerPortList,
  dockerPortMap,
  parseDockerPortBindings,
  parsePortKey,
  parsePortSpec,
  parsePortSpecs,
  portLines,
  publishAllPorts,
  type DockerPort,
} from '../../lib/network/index.js';

const b = (containerPort: number, hostPort = 0, hostIp = '', protocol: 'tcp' | 'udp' | 'sctp' = 'tcp') => ({
  containerPort,
  protocol,
  hostIp,
  hostPort,
});

test('-p: the short forms docker takes', (t) => {
  t.deepEqual(parsePortSpec('80'), [b(80)]);
  t.deepEqual(parsePortSpec('8080:80'), [b(80, 8080)]);
  t.deepEqual(parsePortSpec('127.0.0.1:8080:80'), [b(80, 8080, '127.0.0.1')]);
  t.deepEqual(parsePortSpec('127.0.0.1::80'), [b(80, 0, '127.0.0.1')]);
  t.deepEqual(parsePortSpec('8080:80/udp'), [b(80, 8080, '', 'udp')]);
  t.deepEqual(parsePortSpec('9000:9000/sctp'), [b(9000, 9000, '', 'sctp')]);
  t.deepEqual(parsePortSpec('0:80'), [b(80, 0)]);
  t.deepEqual(parsePortSpec('[::1]:8080:80'), [b(80, 8080, '::1')]);
  t.deepEqual(parsePortSpec('::1:8080:80'), [b(80, 8080, '::1')]);
  t.deepEqual(parsePortSpec('[::]::53/udp'), [b(53, 0, '::', 'udp')]);
});

test('-p: ranges pair up one to one; a container range alone gets random ports', (t) => {
  t.deepEqual(parsePortSpec('8000-8001:80-81'), [b(80, 8000), b(81, 8001)]);
  t.deepEqual(parsePortSpec('127.0.0.1:8000-8002:80-82/udp'), [
    b(80, 8000, '127.0.0.1', 'udp'),
    b(81, 8001, '127.0.0.1', 'udp'),
    b(82, 8002, '127.0.0.1', 'udp'),
  ]);
  t.deepEqual(parsePortSpec('80-81'), [b(80), b(81)]);
  t.deepEqual(parsePortSpecs(['80', '8080:8080/udp']), [b(80), b(8080, 8080, '', 'udp')]);
});

test('-p: the long form', (t) => {
  t.deepEqual(parsePortSpec('target=80,published=8080'), [b(80, 8080)]);
  t.deepEqual(parsePortSpec('published=53,target=53,protocol=udp,mode=host'), [b(53, 53, '', 'udp')]);
  t.deepEqual(parsePortSpec('target=80,host_ip=127.0.0.1'), [b(80, 0, '127.0.0.1')]);
  t.throws(() => parsePortSpec('published=80'), { instanceOf: ValidationError, message: /missing mandatory field "target"/ });
  t.throws(() => parsePortSpec('target=80,colour=red'), { instanceOf: ValidationError, message: /invalid field key "colour"/ });
});

test('-p: bad specs are ValidationErrors that name the text', (t) => {
  const cases: [string, RegExp][] = [
    ['8080:65536', /invalid containerPort "65536" in port spec "8080:65536"/],
    ['65536:80', /invalid hostPort "65536" in port spec "65536:80"/],
    ['0', /invalid containerPort "0"/],
    ['abc', /invalid containerPort "abc"/],
    ['8080:', /no port specified in port spec "8080:"/],
    ['', /no port specified/],
    ['80/icmp', /invalid proto "icmp" in port spec "80\/icmp"/],
    ['8000-8002:80-81', /invalid ranges specified for container and host ports: "8000-8002:80-81" \(2 container ports, 3 host ports\)/],
    ['8000-8001:80', /host port range for one container port is not supported: "8000-8001:80"/],
    ['81-80', /invalid containerPort "81-80"/],
    ['localhost:8080:80', /invalid IP address "localhost" in port spec "localhost:8080:80"/],
    ['1.2.3:8080:80', /invalid IP address "1.2.3"/],
    ['-1:80', /invalid hostPort "-1"/],
    ['80 ', /invalid containerPort "80 "/],
  ];
  for (const [spec, message] of cases) {
    const e = t.throws(() => parsePortSpec(spec), { instanceOf: ValidationError }, spec);
    t.regex(e.message, message, spec);
    t.is(e.field, 'publish');
  }
});

test('-P: every exposed port without a binding gets a random one, once', (t) => {
  t.deepEqual(publishAllPorts({ '80/tcp': {}, '53/udp': {}, '443/tcp': {} }), [b(80), b(53, 0, '', 'udp'), b(443)]);
  t.deepEqual(publishAllPorts(['80/tcp', '80', '81/tcp'], [b(80, 8080)]), [b(80, 8080), b(81)]);
  t.deepEqual(publishAllPorts(undefined), []);
  t.deepEqual(publishAllPorts(null, [b(1)]), [b(1)]);
  t.throws(() => publishAllPorts({ '70000/tcp': {} }), { instanceOf: ValidationError, message: /invalid port "70000\/tcp"/ });
});

test('port keys', (t) => {
  t.deepEqual(parsePortKey('80/tcp'), { containerPort: 80, protocol: 'tcp' });
  t.deepEqual(parsePortKey('53/UDP'), { containerPort: 53, protocol: 'udp' });
  t.deepEqual(parsePortKey('8080'), { containerPort: 8080, protocol: 'tcp' });
  t.throws(() => parsePortKey('x/tcp'), { instanceOf: ValidationError });
  t.throws(() => parsePortKey('80/foo'), { instanceOf: ValidationError, message: /invalid proto "foo"/ });
});

test("API HostConfig.PortBindings: HostPort '' and '0' are random, a missing list binds nothing", (t) => {
  t.deepEqual(
    parseDockerPortBindings({
      '80/tcp': [{ HostIp: '', HostPort: '8080' }, { HostIp: '127.0.0.1', HostPort: '' }],
      '53/udp': [{ HostPort: '0' }],
      '443/tcp': [{}],
      '9/tcp': null,
      '10/tcp': [],
      '22': [{ HostIp: '::1', HostPort: '2222' }],
    }),
    // '22' is an integer key: JavaScript enumerates it first.
    [b(22, 2222, '::1'), b(80, 8080), b(80, 0, '127.0.0.1'), b(53, 0, '', 'udp'), b(443)],
  );
  t.deepEqual(parseDockerPortBindings(undefined), []);
  t.deepEqual(parseDockerPortBindings(null), []);
  const e = t.throws(() => parseDockerPortBindings({ '80/tcp': [{ HostPort: '99999' }] }), { instanceOf: ValidationError });
  t.regex(e.message, /invalid HostPort "99999"/);
  t.is(e.field, 'HostConfig.PortBindings.80/tcp');
  t.throws(() => parseDockerPortBindings({ '80/tcp': [{ HostIp: 'nope', HostPort: '1' }] }), { message: /invalid IP address "nope"/ });
  t.throws(() => parseDockerPortBindings({ '80/tcp': [{ HostPort: '1-5' }] }), { message: /host port range for one container port/ });
  t.throws(() => parseDockerPortBindings({ 'http/tcp': [] }), { message: /invalid port "http\/tcp"/ });
});

const bound = [b(80, 8080), b(53, 5353, '127.0.0.1', 'udp')];

test('/containers/json Ports: each address of a binding, then exposed-only ports', (t) => {
  t.deepEqual(dockerPortList(bound, ['80/tcp', '443/tcp']), [
    { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
    { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
    { IP: '127.0.0.1', PrivatePort: 53, PublicPort: 5353, Type: 'udp' },
    { PrivatePort: 443, Type: 'tcp' },
  ]);
  t.deepEqual(dockerPortList([b(80, 8080)], [], { ipv6: false }), [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }]);
});

test("inspect's NetworkSettings.Ports and HostConfig.PortBindings", (t) => {
  t.deepEqual(dockerPortMap(bound, ['443/tcp', '80/tcp']), {
    '80/tcp': [
      { HostIp: '0.0.0.0', HostPort: '8080' },
      { HostIp: '::', HostPort: '8080' },
    ],
    '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }],
    '443/tcp': null,
  });
  t.deepEqual(dockerPortBindings([b(80, 8080), b(80), b(53, 0, '127.0.0.1', 'udp')]), {
    '80/tcp': [
      { HostIp: '', HostPort: '8080' },
      { HostIp: '', HostPort: '' },
    ],
    '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }],
  });
});

test('ps PORTS as the docker 28 CLI prints the same list', (t) => {
  // The expected text is what `docker ps --format '{{.Ports}}'` (28.2.2) printed for this list.
  const list: DockerPort[] = [
    { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
    { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
    { IP: '0.0.0.0', PrivatePort: 81, PublicPort: 81, Type: 'tcp' },
    { IP: '::', PrivatePort: 81, PublicPort: 81, Type: 'tcp' },
    { IP: '0.0.0.0', PrivatePort: 82, PublicPort: 82, Type: 'tcp' },
    { PrivatePort: 90, Type: 'udp' },
    { PrivatePort: 91, Type: 'udp' },
  ];
  t.is(displayPorts(list), '0.0.0.0:81-82->81-82/tcp, [::]:81->81/tcp, 90-91/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp');
  t.is(displayPorts(dockerPortList([b(80, 8080)])), '0.0.0.0:8080->80/tcp, [::]:8080->80/tcp');
  t.is(displayPorts([]), '');
  // A gap splits a group; the later part keeps the group's place.
  t.is(displayPorts([1, 2, 4].map((p) => ({ PrivatePort: p, Type: 'tcp' }))), '1-2/tcp, 4/tcp');
});

test('port lines', (t) => {
  t.deepEqual(portLines(bound), ['53/udp -> 127.0.0.1:5353', '80/tcp -> 0.0.0.0:8080', '80/tcp -> [::]:8080']);
  t.deepEqual(portLines(bound, { containerPort: 80, protocol: 'tcp' }), ['0.0.0.0:8080', '[::]:8080']);
  t.deepEqual(portLines(bound, { containerPort: 80, protocol: 'udp' }), []);
});
