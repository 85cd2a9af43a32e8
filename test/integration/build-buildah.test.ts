/**
 * The builder beside a peer: the same context built by nsbox and by `buildah bud` (Debian's
 * buildah 1.28: vfs storage and chroot isolation in a temp dir, its root file system written out
 * with --output type=local), the two root file systems compared file by file (names, types, modes,
 * owners, sizes, contents, link targets) and the configs field by field. The differences allowed
 * are buildah's own: the mount points its RUN leaves behind (an empty /etc/resolv.conf, /run) and
 * its io.buildah.version label.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { buildImage } from '../../lib/build/index.js';
import { Image } from '../../lib/image/image.js';
import { mergeLayers } from '../../lib/storage/index.js';
import { isRoot, mountTable, rootfs, skipIf } from './_helpers.js';

const hasBuildah = spawnSync('buildah', ['--version']).status === 0;
const rtest = skipIf(!isRoot ? 'needs root' : !hasBuildah ? 'no buildah (apt-get install buildah)' : undefined, test.serial);

/** path → "type mode uid:gid" with the size and a hash of a file's bytes, or a link's target. */
function tree(root: string, rel = '', out = new Map<string, string>()): Map<string, string> {
  for (const n of readdirSync(join(root, rel)).sort()) {
    const r = rel ? `${rel}/${n}` : n;
    const p = join(root, r);
    const st = lstatSync(p);
    const kind = st.isDirectory()
      ? 'dir'
      : st.isSymbolicLink()
        ? `link -> ${readlinkSync(p)}`
        : st.isFile()
          ? `file ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`
          : `node ${st.rdev}`;
    out.set(r, `${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`);
    if (st.isDirectory()) tree(root, r, out);
  }
  return out;
}

rtest('nsbox build and buildah bud make the same root file system and config from the same context', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-buildah-'));
  const mounts = mountTable();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ctx = join(dir, 'ctx');
  mkdirSync(join(ctx, 'src', 'sub'), { recursive: true });
  const tar = spawnSync('tar', ['-C', rootfs(), '-cf', join(ctx, 'rootfs.tar'), '.']);
  t.is(tar.status, 0, String(tar.stderr));
  writeFileSync(join(ctx, 'src', 'a.txt'), 'a\n');
  writeFileSync(join(ctx, 'src', 'sub', 'b.sh'), '#!/bin/sh\necho b\n', { mode: 0o755 });
  writeFileSync(join(ctx, 'Dockerfile'), [
    'FROM scratch',
    'ADD rootfs.tar /',
    'COPY src /app/',
    'COPY --chown=7:8 src/a.txt /owned/a.txt',
    'RUN rm /bin/vi && mkdir -p /data/dir && echo x > /data/x && chmod 640 /data/x && ln -s /data/x /data/link && ln /data/x /data/hard && rm -r /home',
    'ENV A=1 B="two words"',
    'WORKDIR /app',
    'LABEL k=v',
    'EXPOSE 8080',
    'USER 1000',
    'CMD ["sh", "-c", "echo hi"]',
  ].join('\n'));

  const storeRoot = join(dir, 'nsbox');
  await buildImage({ context: ctx, root: storeRoot, tags: ['cmp:1'] });
  const image = await Image.get('cmp:1', { root: storeRoot });
  const ours = join(dir, 'ours');
  mkdirSync(ours);
  await mergeLayers(await image.layerDirs(), ours);

  const theirs = join(dir, 'theirs');
  const bh = ['--root', join(dir, 'bh-storage'), '--runroot', join(dir, 'bh-run'), '--storage-driver', 'vfs'];
  const bud = spawnSync('buildah', [...bh, 'bud', '--isolation', 'chroot', '--output', `type=local,dest=${theirs}`, '-t', 'cmp', ctx], { encoding: 'utf8', timeout: 300_000 });
  t.is(bud.status, 0, bud.stderr);
  const inspect = spawnSync('buildah', [...bh, 'inspect', '--type', 'image', 'cmp'], { encoding: 'utf8' });
  t.is(inspect.status, 0, inspect.stderr);

  const a = tree(ours);
  const b = tree(theirs);
  // buildah's RUN mount points, left in its output
  for (const p of ['etc/resolv.conf', 'run']) b.delete(p);
  const diffs = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).map((k) => `${k}: nsbox ${a.get(k) ?? '-'} | buildah ${b.get(k) ?? '-'}`);
  t.deepEqual(diffs, []);
  t.true(a.size > 250, `${a.size} entries`);

  const cfg = (JSON.parse(inspect.stdout) as { OCIv1: { config: Record<string, unknown> } }).OCIv1.config;
  // buildah labels its images with its version
  delete (cfg['Labels'] as Record<string, string>)['io.buildah.version'];
  const mine = image.config.config as Record<string, unknown>;
  for (const field of ['Env', 'Cmd', 'WorkingDir', 'Labels', 'User', 'ExposedPorts']) t.deepEqual(mine[field], cfg[field], field);
  t.is(mountTable(), mounts, 'no mount left by either');
});
