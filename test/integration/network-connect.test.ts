/**
 * The SDK's container.connect / disconnect on a running container, in a network and mount namespace
 * the test makes (`unshare -n`), never the host's.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, rootfs } from './_helpers.js';

const CHILD = path.join(import.meta.dirname, '..', 'fixtures', 'network-connect-child.ts');
const libnft = ['/usr/lib/x86_64-linux-gnu/libnftables.so.1', '/usr/lib/aarch64-linux-gnu/libnftables.so.1'].some((f) => existsSync(f));
const missing = ['/usr/sbin/nft', '/usr/lib/podman/aardvark-dns'].filter((f) => !existsSync(f));
const reason = !isRoot ? 'needs root (CAP_NET_ADMIN)' : !libnft || missing.length ? 'needs nftables, libnftables1 and aardvark-dns (bash test/install-deps.sh)' : undefined;

if (reason) test(`container.connect and disconnect (skipped: ${reason})`, (t) => t.log(reason));
else
  test('container.connect and disconnect: a second network on a running container, and off it again', (t) => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'nsbox-netconn-'));
    t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
    const r = spawnSync('unshare', ['-n', '--mount', '--propagation', 'private', '--', 'bash', '-c', 'ip link set lo up && exec "$@"', 'bash', process.execPath, '--import=tsx', CHILD, rootfs(), tmp], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    t.true(line.startsWith('{'), `no result (status ${r.status}): ${r.stderr}`);
    const o = JSON.parse(line);
    t.is(o.error, undefined);
    t.deepEqual(o.endpoint, { networkName: 'extra', ipAddress: '10.93.0.2', aliases: ['alias1'] });
    t.regex(o.ips.bridge, /^172\.17\.0\.\d+$/);
    t.is(o.ips.extra, '10.93.0.2');
    t.is(o.viaExtra, 'web\n');
    t.regex(o.twice, /^NetworkConflictError: endpoint with name [0-9a-f]{12} already exists in network extra$/);
    t.deepEqual(o.endpointsConnected, ['10.93.0.2']);
    t.deepEqual(o.afterDisconnect, { extra: null, endpoints: 0, viaBridge: 'web\n' });
    t.regex(o.notConnected, /^NotFoundError: container [0-9a-f]{12} is not connected to network extra$/);
    t.is(o.reconnected, '10.93.0.2');
    t.is(o.afterRemove, 0);
  });
