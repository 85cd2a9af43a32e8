/** `<bundle>/cgroup.json` is replaced as the store replaces files: a new inode renamed over the old, never rewritten in place. */
import { linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { writeCgroupPaths } from '../../lib/runtime/bundle.js';

test('cgroup.json is written to a temp file and renamed over the old one', async (t) => {
  const bundle = mkdtempSync(join(tmpdir(), 'nsbox-bundle-'));
  t.teardown(() => rmSync(bundle, { recursive: true, force: true }));
  const file = join(bundle, 'cgroup.json');
  writeFileSync(file, '{"pids":"/old"}');
  // A second name for the old inode: a write in place (truncate + write) would change it too.
  linkSync(file, join(bundle, 'old-inode'));
  await writeCgroupPaths(bundle, { pids: '/sys/fs/cgroup/pids/nsbox/x' });
  t.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { pids: '/sys/fs/cgroup/pids/nsbox/x' });
  t.is(readFileSync(join(bundle, 'old-inode'), 'utf8'), '{"pids":"/old"}');
  t.deepEqual(readdirSync(bundle).sort(), ['cgroup.json', 'old-inode'], 'no temp file left');
});
