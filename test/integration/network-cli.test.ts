/** `nsbox network create|ls|inspect|rm|prune` over a temp store: docker's flags and output. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { rootTest } from './_helpers.js';

const bin = fileURLToPath(new URL('../../bin/nsbox.js', import.meta.url));

function nsbox(root: string, args: string[], input = '') {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input, env: { ...process.env, NSBOX_ROOT: root } });
}

test('create, ls, inspect, rm, prune', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'nsbox-netcli-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const c = nsbox(root, ['network', 'create', '--subnet', '10.66.0.0/24', '--ipv6', '--subnet', 'fd00:66::/64', '--label', 'a=1', 'one']);
  t.is(c.status, 0, c.stderr);
  const id = c.stdout.trim();
  t.regex(id, /^[0-9a-f]{64}$/);
  t.is(nsbox(root, ['network', 'create', 'two']).status, 0);

  const ls = nsbox(root, ['network', 'ls']);
  t.regex(ls.stdout, /^NETWORK ID {5}NAME {5}DRIVER {3}SCOPE\n/);
  t.deepEqual(
    ls.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/\s+/)[1]),
    ['bridge', 'host', 'none', 'one', 'two'],
  );
  t.is(nsbox(root, ['network', 'ls', '-q', '--filter', 'label=a=1']).stdout, `${id.slice(0, 12)}\n`);
  t.is(nsbox(root, ['network', 'ls', '--no-trunc', '-q', '-f', 'name=^one$']).stdout, `${id}\n`);
  t.is(nsbox(root, ['network', 'ls', '--format', '{{.Name}}\\t{{.IPv6}}', '-f', 'type=custom']).stdout, 'one\ttrue\ntwo\tfalse\n');
  const json = nsbox(root, ['network', 'ls', '--format', 'json', '-f', 'name=^two$']).stdout;
  t.like(JSON.parse(json), { Name: 'two', Driver: 'bridge', Scope: 'local' });
  t.regex(nsbox(root, ['network', 'ls', '--format', 'table {{.Name}}\t{{.Driver}}', '-f', 'name=two']).stdout, /^NAME\s+DRIVER\ntwo\s+bridge\n$/);

  const [n] = JSON.parse(nsbox(root, ['network', 'inspect', 'one']).stdout);
  t.like(n, { Name: 'one', Id: id, EnableIPv6: true, Labels: { a: '1' }, IPAM: { Config: [{ Subnet: '10.66.0.0/24', Gateway: '10.66.0.1' }, { Subnet: 'fd00:66::/64', Gateway: 'fd00:66::1' }] } });
  const missing = nsbox(root, ['network', 'inspect', 'one', 'nope']);
  t.is(missing.status, 1);
  t.is(JSON.parse(missing.stdout).length, 1);
  t.regex(missing.stderr, /network nope not found/);

  const bad = nsbox(root, ['network', 'create', '--subnet', '10.66.0.0/25', 'three']);
  t.is(bad.status, 125);
  t.regex(bad.stderr, /Pool overlaps with other one on this address space/);
  t.regex(nsbox(root, ['network', 'create', '--subnet', '10.1.2.3/16', 'x']).stderr, /invalid subnet 10\.1\.2\.3\/16: it should be 10\.1\.0\.0\/16/);

  const rm = nsbox(root, ['network', 'rm', 'one', 'nope']);
  t.is(rm.status, 1);
  t.is(rm.stdout, 'one\n');
  t.is(nsbox(root, ['network', 'rm', '-f', 'nope']).status, 0);
  const declined = nsbox(root, ['network', 'prune'], 'n\n');
  t.regex(declined.stdout, /WARNING! This will remove all custom networks not used by at least one container\./);
  t.false(declined.stdout.includes('Deleted'));
  t.is(nsbox(root, ['network', 'prune', '-f']).stdout, 'Deleted Networks:\ntwo\n');
  t.is(nsbox(root, ['network', 'ls', '-q']).stdout.split('\n').filter(Boolean).length, 3);
});

// system prune opens the engine (its cgroups): root.
rootTest('system prune removes the user networks no container uses', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'nsbox-netcli-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  t.is(nsbox(root, ['network', 'create', 'spare']).status, 0);
  const declined = nsbox(root, ['system', 'prune'], 'n\n');
  t.regex(declined.stdout, /  - all networks not used by at least one container\n/);
  const prune = nsbox(root, ['system', 'prune', '-f']);
  t.is(prune.status, 0, prune.stderr);
  t.regex(prune.stdout, /^Deleted Networks:\nspare\n\n/);
  t.is(nsbox(root, ['network', 'ls', '--format', '{{.Name}}', '-f', 'type=custom']).stdout, '');
});
