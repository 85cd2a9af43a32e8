/**
 * The reference image set of ../shared/registry (seeded by its seed-images onto 127.0.0.1:5000):
 * `layered:1` checks itself (user by name, env, workdir, whiteouts, opaque dir, hard and symbolic
 * links, owners and modes) and must print "layered:1 OK". Skipped, by name, when nothing serves it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Container, Image } from '../../lib/index.js';
import { collect, isRoot, skipIf } from './_helpers.js';

const registry = process.env.NSBOX_REGISTRY ?? '127.0.0.1:5000';
const up = await fetch(`http://${registry}/v2/layered/manifests/1`, {
  method: 'HEAD',
  headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  signal: AbortSignal.timeout(2000),
}).then((r) => r.ok, () => false);
const reason = !isRoot ? 'needs root' : !up ? `nothing serves layered:1 on ${registry} (run ../shared/registry/seed-images)` : undefined;
const rtest = skipIf(reason, test.serial);

let root = '';
test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'nsbox-seeded-'));
  process.env.NSBOX_ROOT = root;
});
test.after.always(() => {
  delete process.env.NSBOX_ROOT;
  if (root) rmSync(root, { recursive: true, force: true });
});

rtest(`run ${registry}/layered:1 prints "layered:1 OK"`, async (t) => {
  await using c = await Container.run({ image: `${registry}/layered:1`, env: { VERBOSE: '1' } });
  const [out, err, status] = await Promise.all([collect(c.stdout), collect(c.stderr), c.wait()]);
  t.log(out.trim().split('\n').slice(-3).join(' | '));
  t.deepEqual(status, { exitCode: 0, signal: null }, err);
  t.regex(out, /layered:1 OK/);
});

rtest(`multiarch:1 and its Docker manifest list run busybox on this host`, async (t) => {
  for (const tag of ['1', '1-docker']) {
    await using c = await Container.run({ image: `${registry}/multiarch:${tag}`, command: ['/bin/sh', '-c', 'echo ok; id -u'] });
    const [out, status] = await Promise.all([collect(c.stdout), c.wait()]);
    t.is(out, 'ok\n0\n');
    t.is(status.exitCode, 0);
  }
  t.true((await Image.list()).length >= 2);
});
