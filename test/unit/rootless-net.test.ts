/** Rootless networking's pure parts: pasta's command line from published ports, and finding pasta. */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NsboxError, ValidationError } from '../../lib/errors.js';
import { portsToHold } from '../../lib/network/container-network.js';
import { checkRootlessNetwork } from '../../lib/network/rootless-container.js';
import { NetworkOptionsSchema, type NetworkOptionsInput } from '../../lib/network/schemas.js';
import { findPasta, pastaArgv, pickHostPorts } from '../../lib/network/rootless-net.js';

test('pasta forwards exactly the published ports in, none out, and reports readiness on fd 3', (t) => {
  const argv = pastaArgv('/usr/bin/pasta', [
    { containerPort: 80, hostPort: 8080, hostIp: '', protocol: 'tcp' },
    { containerPort: 81, hostPort: 8081, hostIp: '127.0.0.1', protocol: 'tcp' },
    { containerPort: 53, hostPort: 5353, hostIp: '::1', protocol: 'udp' },
  ], '/run/x/pasta.log');
  const after = (flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
  t.is(argv[0], '/usr/bin/pasta');
  t.is(argv.at(-1), '{pid}');
  t.deepEqual(after('-t'), ['8080:80', '127.0.0.1/8081:81']);
  t.deepEqual(after('-u'), ['::1/5353:53']);
  t.deepEqual(after('-T'), ['none']);
  t.deepEqual(after('-U'), ['none']);
  t.deepEqual(after('--pid'), ['/proc/self/fd/3']);
  t.true(argv.includes('--foreground'), 'a foreground child keeps its parent-death signal');
  t.true(argv.includes('--no-map-gw'), "the host's loopback is not reachable through the gateway");
});

test('no published ports: pasta is told none (its default would forward every port bound inside)', (t) => {
  const argv = pastaArgv('/usr/bin/pasta', [], '/x.log');
  t.deepEqual(argv.flatMap((a, i) => (a === '-t' || a === '-u' ? [argv[i + 1]] : [])), ['none', 'none']);
});

test('sctp cannot be published rootless', (t) => {
  t.throws(() => pickHostPorts([{ containerPort: 1, hostPort: 1, hostIp: '', protocol: 'sctp' }]), { message: /tcp and udp ports, not sctp/ });
});

test('pasta is found on PATH, else a clear error naming the package', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-pasta-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'pasta'), '');
  t.is(findPasta({ PATH: `/nonexistent:${dir}` }, []), join(dir, 'pasta'));
  const e = t.throws(() => findPasta({ PATH: '/nonexistent' }, []), { instanceOf: NsboxError });
  t.is(e?.code, 'ENOENT');
  t.regex(e?.message ?? '', /needs pasta \(Debian package passt\), which is not installed/);
  t.throws(() => findPasta({ NSBOX_PASTA: '/nonexistent/pasta' }), { message: /looked in \$NSBOX_PASTA \/nonexistent\/pasta/ });
});

test('a restart keeps the random host port of a binding, not the fixed one of another binding of the same container port', (t) => {
  const asked = [
    { containerPort: 80, protocol: 'tcp' as const, hostIp: '', hostPort: 18080 },
    { containerPort: 80, protocol: 'tcp' as const, hostIp: '', hostPort: 0 },
  ];
  const previous = { endpoints: [], ports: [{ ...asked[0]!, hostPort: 18080 }, { ...asked[1]!, hostPort: 36279 }] };
  t.deepEqual(portsToHold(asked, previous).map((p) => p.hostPort), [18080, 36279]);
  t.deepEqual(portsToHold(asked, undefined).map((p) => p.hostPort), [18080, 0]);
});

test('without root: user-defined networks, container mode, aliases, --ip and sctp are refused before anything is made', (t) => {
  const opts = (o: NetworkOptionsInput) => NetworkOptionsSchema.parse(o);
  t.notThrows(() => checkRootlessNetwork(opts({ ports: [{ containerPort: 80 }, { containerPort: 53, protocol: 'udp' }] })));
  t.throws(() => checkRootlessNetwork(opts({ networks: [{ network: 'mynet' }] })), { instanceOf: ValidationError, message: /network mynet: user-defined networks need root/ });
  t.throws(() => checkRootlessNetwork(opts({ mode: 'container', container: 'db' })), { message: /network container:db: without root/ });
  t.throws(() => checkRootlessNetwork(opts({ networks: [{ network: 'bridge', aliases: ['x'] }] })), { message: /aliases/ });
  t.throws(() => checkRootlessNetwork(opts({ networks: [{ network: 'bridge', ipv4Address: '10.0.2.5' }] })), { message: /user specified IP address/ });
  t.throws(() => checkRootlessNetwork(opts({ ports: [{ containerPort: 80, protocol: 'sctp' }] })), { message: /not sctp/ });
});
