/** docker's volume copy-up from unpacked layers: merged bottom to top, whiteouts and opaque dirs as overlayfs reads them, owners kept. */
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyUp } from '../../lib/engine/volume-copy-up.js';
import { native } from '../../lib/native.js';
import { overlayXattrPrefix } from '../../lib/privilege.js';
import { rootTest } from './_helpers.js';

rootTest('layers merge bottom to top: a whiteout deletes, an opaque dir hides the lower files, owners and links are kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-copyup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [bottom, middle, top, dest] = ['l1', 'l2', 'l3', 'vol'].map((n) => join(dir, n)) as [string, string, string, string];
  mkdirSync(join(bottom, 'srv/data/old'), { recursive: true });
  writeFileSync(join(bottom, 'srv/data/a'), 'a1');
  writeFileSync(join(bottom, 'srv/data/gone'), 'x');
  writeFileSync(join(bottom, 'srv/data/old/hidden'), 'h');
  chownSync(join(bottom, 'srv/data/a'), 999, 998);
  mkdirSync(join(middle, 'srv/data/old'), { recursive: true });
  writeFileSync(join(middle, 'srv/data/a'), 'a2');
  chownSync(join(middle, 'srv/data/a'), 999, 998);
  native.mknod(join(middle, 'srv/data/gone'), 0o020000, 0, 0);
  native.lsetxattr(join(middle, 'srv/data/old'), `${overlayXattrPrefix()}.overlay.opaque`, Buffer.from('y'));
  writeFileSync(join(middle, 'srv/data/old/new'), 'n');
  mkdirSync(join(top, 'srv/data'), { recursive: true });
  symlinkSync('a', join(top, 'srv/data/link'));
  chownSync(join(top, 'srv/data'), 1000, 1000);
  mkdirSync(dest);

  t.true(await copyUp([top, middle, bottom], '/srv/data', dest));
  t.deepEqual(readdirSync(dest).sort(), ['a', 'link', 'old']);
  t.is(readFileSync(join(dest, 'a'), 'utf8'), 'a2');
  t.like(lstatSync(join(dest, 'a')), { uid: 999, gid: 998 });
  t.deepEqual(readdirSync(join(dest, 'old')), ['new'], 'the opaque dir hid old/hidden');
  t.is(readlinkSync(join(dest, 'link')), 'a');
  t.like(lstatSync(dest), { uid: 1000, gid: 1000 }, 'the volume root takes the top directory\'s owner');
});

rootTest('a path the top layer deletes or replaces with a file gives an empty volume; a missing one too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-copyup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [lower, upper, dest] = ['l1', 'l2', 'vol'].map((n) => join(dir, n)) as [string, string, string];
  mkdirSync(join(lower, 'var/lib'), { recursive: true });
  writeFileSync(join(lower, 'var/lib/f'), 'f');
  mkdirSync(join(upper, 'var'), { recursive: true });
  native.mknod(join(upper, 'var/lib'), 0o020000, 0, 0);
  mkdirSync(dest);
  t.false(await copyUp([upper, lower], '/var/lib', dest));
  t.deepEqual(readdirSync(dest), []);
  t.false(await copyUp([lower], '/nowhere', dest));
  t.false(existsSync(join(dest, 'f')));
});
