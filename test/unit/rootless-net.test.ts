/** Rootless networking's pure parts: pasta's command line from published ports, and finding pasta. */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NsboxError } from '../../lib/errors.js';
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
