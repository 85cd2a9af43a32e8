/**
 * Cleanup that cannot leak (issue 17): an SDK process that made a network, a volume, an engine
 * container (under nsbox-shim, port published, volume mounted) and an in-process container (port
 * published) is killed with SIGKILL in the middle; the next engine open (one CLI command, `nsbox ps -a`) leaves no
 * container, process, cgroup, network, netns, veth, port rule or volume behind. Runs in a network
 * and mount namespace of the test's own (test/fixtures/owner-driver.ts does the work).
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { isRoot, runDriver, skipIf } from './_helpers.js';

const DRIVER = path.join(import.meta.dirname, '..', 'fixtures', 'owner-driver.ts');
const dist = path.join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const missing = ['/usr/sbin/nft', '/usr/lib/podman/aardvark-dns', dist].filter((f) => !existsSync(f));
const why = [...missing, ...(isRoot ? [] : ['root'])];
const run = skipIf(why.length ? `needs root, nftables, aardvark-dns and dist/ (missing ${why.join(', ')})` : undefined, test.serial);

run('an SDK process killed with SIGKILL: the next engine open removes its containers, networks, ports and volumes', async (t) => {
  const o = await runDriver(DRIVER, 240_000);
  t.log(JSON.stringify({ before: o.before, afterKill: o.afterKill, after: o.after }));
  // What it made, all there and carrying its owner.
  t.regex(o.made.engine.labels['nsbox.owner'], /^\d+-\d+$/);
  t.deepEqual(o.before.records, [o.made.engine.id]);
  t.deepEqual(o.before.networks, ['owned-net']);
  t.deepEqual(o.before.volumes, ['owned-vol']);
  t.deepEqual(o.before.processes, [true, true, true]);
  t.true(o.before.cgroups >= 2);
  t.deepEqual([...o.before.netns].sort(), [o.made.engine.id, o.made.inproc.id].sort());
  t.true(o.before.links >= 2);
  t.is(o.before.portRules, 2);
  t.is(o.before.owners, 1);
  // The kill alone: the in-process container's processes die with it; the rest is still there.
  t.is(o.childSignal, 'SIGKILL');
  t.deepEqual(o.afterKill.processes, [true, true, false]);
  t.is(o.afterKill.portRules, 2);
  t.deepEqual(o.afterKill.networks, ['owned-net']);
  // One CLI command later (nsbox ps: it lists nothing, having opened the engine): nothing.
  t.is(o.cliStatus, 0, o.cliStderr);
  t.deepEqual(o.cliPs, []);
  t.deepEqual(o.after, { records: [], networks: [], volumes: [], processes: [false, false, false], cgroups: 0, netns: [], links: 0, portRules: 0, runDirs: 0, owners: 0 });
  t.is(o.cleanedUp, 0);
});
