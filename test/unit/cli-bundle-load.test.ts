/**
 * The quick bundles' top level (tools/bundle-cli.mjs): no node:module loaded (its one use is
 * createRequire, which the bundle's own require stands for), node:path required once rather than
 * copied into each module that imports it by default, and no file URL made until one is read.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const dir = fileURLToPath(new URL('../../dist/cli-bundle/', import.meta.url));
const compile = fileURLToPath(new URL('../../bin/compile-bundle.js', import.meta.url));
const QUICK = ['quick-ps.cjs', 'quick-exec.cjs', 'quick-run.cjs'];

for (const name of QUICK) {
  test(`${name}: evaluated without loading node:module or making a URL`, (t) => {
    const file = `${dir}${name}`;
    if (!existsSync(file)) return t.fail(`${file} is not built (npm run build:ts)`);
    // As bin/nsbox.js runs it, in a script (node -e would load node:module itself).
    const script = `
      const { compileBundle } = require(${JSON.stringify(compile)});
      const before = new Set(process.moduleLoadList);
      const urls = [];
      const url = require('node:url');
      const made = url.pathToFileURL;
      url.pathToFileURL = (...a) => (urls.push(a[0]), made(...a));
      const exports = compileBundle(${JSON.stringify(file)}, ${JSON.stringify(`${file}.cache`)}).run(require);
      process.stdout.write(JSON.stringify({ run: typeof exports.run, loaded: process.moduleLoadList.filter((m) => !before.has(m)), urls }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=commonjs'], { input: script, encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { run: string; loaded: string[]; urls: string[] };
    t.is(out.run, 'function');
    t.false(out.loaded.includes('NativeModule module'), `loaded: ${out.loaded.join(', ')}`);
    t.deepEqual(out.urls, [], 'no file URL made at the top level');
    t.is(readFileSync(file, 'latin1').split('require("node:path")').length - 1, 1, 'node:path required once');
  });
}
