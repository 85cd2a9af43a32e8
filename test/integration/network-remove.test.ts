/**
 * A network removed (rm, prune) takes its bridge and nft elements with it. In a network and mount
 * namespace the test makes (`unshare -n`), never the host's.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot } from './_helpers.js';

const CHILD = path.join(import.meta.dirname, '..', 'fixtures', 'network-remove-child.ts');
const libnft = ['/usr/lib/x86_64-linux-gnu/libnftables.so.1', '/usr/lib/aarch64-linux-gnu/libnftables.so.1'].some((f) => existsSync(f));
const reason = !isRoot ? 'needs root (CAP_NET_ADMIN)' : !libnft || !existsSync('/usr/sbin/nft') ? 'needs nftables and libnftables1 (bash test/install-deps.sh)' : undefined;

if (reason) test(`network removal takes its bridge (skipped: ${reason})`, (t) => t.log(reason));
else
  test('network rm and prune take the bridge and its nft elements with the network', (t) => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'nsbox-netrm-'));
    t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
    const r = spawnSync('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', CHILD, path.join(tmp, 'root')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    t.true(line.startsWith('{'), `no result (status ${r.status}): ${r.stderr}`);
    const o = JSON.parse(line);
    t.is(o.error, undefined);
    t.deepEqual(o.before, { links: o.bridges, nftA: true, nftB: true });
    t.is(o.afterRm.links.length, 1);
    t.false(o.afterRm.nftA);
    t.deepEqual(o.pruned, ['b']);
    t.deepEqual(o.afterPrune, { links: [], nftB: false });
  });
