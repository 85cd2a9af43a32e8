import test from 'ava';
import { chmodSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canonicalJson, contentDigest, reuseHash } from '../../lib/reuse-hash.js';

test('reuse hash: key order means nothing, every value counts', (t) => {
  const a = { image: 'sha256:1', env: { A: '1', B: '2' }, ports: [{ containerPort: 80 }], command: ['httpd'] };
  const b = { command: ['httpd'], ports: [{ containerPort: 80 }], env: { B: '2', A: '1' }, image: 'sha256:1' };
  t.is(canonicalJson(a), canonicalJson(b));
  t.is(reuseHash(a), reuseHash(b));
  t.regex(reuseHash(a), /^[0-9a-f]{64}$/);
  t.not(reuseHash(a), reuseHash({ ...a, env: { A: '1', B: '3' } }));
  t.not(reuseHash(a), reuseHash({ ...a, image: 'sha256:2' }));
  t.not(reuseHash(a), reuseHash({ ...a, ports: [{ containerPort: 81 }] }));
  // Array order is meaning (argv, port order).
  t.not(reuseHash({ command: ['a', 'b'] }), reuseHash({ command: ['b', 'a'] }));
  // An absent member and an undefined one are the same options.
  t.is(reuseHash({ a: 1, b: undefined }), reuseHash({ a: 1 }));
});

test('reuse hash: files count by content (and a host file by its mode, which the copy keeps), not by path', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nsbox-reuse-hash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'conf');
  writeFileSync(f, 'maxmemory 64mb\n');
  const g = path.join(dir, 'elsewhere');
  writeFileSync(g, 'maxmemory 64mb\n');
  for (const x of [f, g]) chmodSync(x, 0o644);
  t.is(contentDigest(f), contentDigest(g));
  t.is(contentDigest(Buffer.from('maxmemory 64mb\n')), contentDigest(Buffer.from('maxmemory 64mb\n')));
  t.not(contentDigest(Buffer.from('maxmemory 64mb\n')), contentDigest(Buffer.from('maxmemory 65mb\n')));
  const before = contentDigest(f);
  chmodSync(f, 0o600);
  t.not(contentDigest(f), before);
  chmodSync(f, 0o644);
  writeFileSync(f, 'maxmemory 65mb\n');
  t.not(contentDigest(f), before);
  // A directory: its tree (names, modes, contents, links).
  const tree = path.join(dir, 'tree');
  mkdirSync(path.join(tree, 'sub'), { recursive: true });
  writeFileSync(path.join(tree, 'sub', 'x'), 'x');
  const d1 = contentDigest(tree);
  t.is(contentDigest(tree), d1);
  symlinkSync('sub/x', path.join(tree, 'link'));
  const d2 = contentDigest(tree);
  t.not(d2, d1);
  writeFileSync(path.join(tree, 'sub', 'x'), 'y');
  t.not(contentDigest(tree), d2);
});
