// Compiles the CLI's bundle (dist/cli-bundle/nsbox.cjs, tools/bundle-cli.mjs) as a CommonJS module
// with vm, so that V8 can take its code cache: the cache is used only when it was made for this
// very build of the bundle (the build id in the bundle's first line); V8 itself refuses one made
// by another V8 or with other flags, and then the bundle is compiled from its source.
'use strict';
const { readFileSync } = require('node:fs');
const { dirname } = require('node:path');
const vm = require('node:vm');

const ID = /^\/\* nsbox-build ([0-9a-f]{32}) \*\//;

/** The build id written at the top of the bundle. */
const buildIdOf = (source) => ID.exec(source)?.[1];

function compileBundle(file, cacheFile) {
  // esbuild writes ASCII (tools/bundle-cli.mjs checks it). Read as UTF-8: Node 20 reads that in one
  // call of its C++ side, where any other encoding takes fs's JavaScript path (cold in a new process:
  // ~1 ms for the quick run's bundle, against ~0.1).
  const source = readFileSync(file, 'utf8');
  let cachedData;
  if (cacheFile) {
    try {
      const cache = readFileSync(cacheFile);
      const id = buildIdOf(source);
      if (id && cache.subarray(0, id.length).toString('latin1') === id) cachedData = cache.subarray(id.length);
    } catch {
      // no cache: compiled from the source
    }
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new vm.Script(wrapped, { filename: file, ...(cachedData ? { cachedData } : {}) });
  return {
    script,
    /** Evaluates the bundle's top level; returns its exports. */
    run(require) {
      const module = { exports: {} };
      script.runInThisContext()(module.exports, require, module, file, dirname(file));
      return module.exports;
    },
  };
}

module.exports = { buildIdOf, compileBundle };
