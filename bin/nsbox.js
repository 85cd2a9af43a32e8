#!/usr/bin/env node
// The nsbox CLI: `npx nsbox …` in a checkout, `nsbox …` after a global install. It runs the CLI's
// bundle (tools/bundle-cli.mjs, built with dist/) with its code cache when there is one: it starts
// in a fraction of the time of dist/'s few hundred modules. CommonJS (bin/package.json), so that
// Node does not start its ES module loader for the entry point; without the bundle it imports dist/.
// A command with a quick bundle (lib/cli/quick/: ps, exec, run --rm, a cached build) runs that first, without the main bundle
// (compiled with its own code cache as the main one is); when it cannot answer (undefined: nothing
// done, nothing printed), the main bundle runs it.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const dir = join(__dirname, '..', 'dist', 'cli-bundle');
const bundle = join(dir, 'nsbox.cjs');
const quick = { ps: 'quick-ps.cjs', exec: 'quick-exec.cjs', run: 'quick-run.cjs', build: 'quick-build.cjs' }[process.argv[2]];

async function load() {
  if (!existsSync(bundle)) return import('../dist/cli/main.js');
  // node:module only here: a quick command does without it (~1 ms to load).
  return require('./compile-bundle.js').compileBundle(bundle, `${bundle}.cache`).run(require('node:module').createRequire(bundle));
}

async function main() {
  if (quick && existsSync(join(dir, quick))) {
    const file = join(dir, quick);
    const code = await require('./compile-bundle.js').compileBundle(file, `${file}.cache`).run(require).run(process.argv.slice(3));
    if (code !== undefined) {
      process.exitCode = code;
      // Once the event loop is empty, at once (as the main bundle's CLI): Node's own exit frees the heap page by page.
      process.once('beforeExit', () => process.exit());
      return;
    }
  }
  (await load()).runCli();
}
main();
