// The CLI's bundle: dist/cli/main.js and everything it imports (zod tree-shaken) as one CommonJS
// file, dist/cli-bundle/nsbox.cjs, and a V8 code cache of it, nsbox.cjs.cache; got, a third of it
// and only used by commands that reach a registry, in got.cjs beside it, required when used. bin/nsbox.js compiles the bundle with that cache, so that a command neither
// resolves and links modules nor parses them (Node 20 has no compile cache for ES modules). A
// command's own modules are still evaluated only when it runs: esbuild wraps what is reached only
// through import() in functions called on first use. Run after tsc (npm run build:ts).
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { build } from 'esbuild';
import { compileBundle } from '../bin/compile-bundle.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/cli-bundle`;
const outfile = `${outdir}/nsbox.cjs`;
// Names this build, so that a code cache is used only with the bundle it was made from.
const buildId = randomBytes(16).toString('hex');
rmSync(outdir, { recursive: true, force: true });
const common = { absWorkingDir: root, bundle: true, format: 'cjs', platform: 'node', target: 'node20', logLevel: 'warning' };
// Where the bundles' modules find themselves (lib/package-root.ts, lib/native.ts): import.meta.dirname
// is the bundle's __dirname; import.meta.url is made only when read (a file URL costs a bundle's
// top level ~1 ms: Node's URL parser).
const moduleLocation = {
  define: { 'import.meta.dirname': '__dirname', 'import.meta.url': '__nsbox_module.url' },
  banner: `var __nsbox_module = { get url() { return require("node:url").pathToFileURL(__filename).href; } };`,
};
const PATH_EXPORTS = ['basename', 'delimiter', 'dirname', 'extname', 'format', 'isAbsolute', 'join', 'normalize', 'parse', 'posix', 'relative', 'resolve', 'sep', 'toNamespacedPath', 'win32'];
/**
 * `node:path` as an ES module of the bundle's own: a default import of a builtin (`import path
 * from 'node:path'`, as most of lib/ has it) becomes esbuild's __toESM, a copy of all of path's
 * properties made once per importing module as the bundle's top level runs (~1 ms for the quick
 * run's 21 modules); from an ES module it is a plain reference.
 */
const pathModule = {
  name: 'path-module',
  setup(b) {
    b.onResolve({ filter: /^(node:)?path$/ }, (args) => (args.kind === 'require-call' ? undefined : { path: 'node:path', namespace: 'nsbox-path' }));
    b.onLoad({ filter: /.*/, namespace: 'nsbox-path' }, () => ({
      contents: `const p = require('node:path');\nexport default p;\nexport const { ${PATH_EXPORTS.join(', ')} } = p;\n`,
      loader: 'js',
    }));
  },
};
/**
 * `node:module` in a quick bundle: its one use in lib/ is createRequire(import.meta.url), for
 * builtins on a Node without process.getBuiltinModule, which the require bin/nsbox.js gives the
 * bundle loads alike. Loading node:module costs ~1 ms.
 */
const moduleShim = {
  name: 'quick-module',
  setup(b) {
    b.onResolve({ filter: /^(node:)?module$/ }, () => ({ path: 'node:module', namespace: 'nsbox-module' }));
    b.onLoad({ filter: /.*/, namespace: 'nsbox-module' }, () => ({ contents: 'export const createRequire = () => require;\n', loader: 'js' }));
  },
};
await build({ ...common, stdin: { contents: "export * from 'got';", resolveDir: root }, outfile: `${outdir}/got.cjs`, minify: true });
/** `got` is got.cjs, beside the bundle (bin/nsbox.js gives the bundle a require from its own path). */
const gotBeside = {
  name: 'got-beside',
  setup(b) {
    b.onResolve({ filter: /^got$/ }, () => ({ path: './got.cjs', external: true }));
  },
};
const result = await build({
  ...common,
  plugins: [gotBeside, pathModule],
  entryPoints: ['dist/cli/main.js'],
  outfile,
  // import() of a bundled module becomes a call; a script compiled with vm (as bin/nsbox.js does)
  // could not run a real import().
  supported: { 'dynamic-import': false },
  define: { ...moduleLocation.define, __NSBOX_BUILD_ID__: JSON.stringify(buildId) },
  banner: { js: `/* nsbox-build ${buildId} */ ${moduleLocation.banner}` },
  // NSBOX_BUNDLE_MINIFY=0 keeps lines and names, for reading a --cpu-prof of the CLI. Short
  // identifiers: 619 -> 449 kB of source to read, and ~3.5 ms less to deserialize the code cache.
  minifySyntax: process.env.NSBOX_BUNDLE_MINIFY !== '0',
  minifyWhitespace: process.env.NSBOX_BUNDLE_MINIFY !== '0',
  minifyIdentifiers: process.env.NSBOX_BUNDLE_MINIFY !== '0',
  metafile: true,
});
// `import { z } from 'zod'` makes the bundle keep all of zod (every locale, JSON Schema): the
// namespace form lets esbuild keep only what is used.
const bundled = Object.values(result.metafile.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([f]) => f));
const locales = bundled.filter((f) => /zod\/v4\/locales\/(?!en\.js|index\.js)/.test(f));
if (locales.length) {
  console.error(`bundle-cli: all of zod was bundled (${locales.join(", ")}); import zod as \`import * as z from 'zod'\``);
  process.exit(1);
}
// The bundles stay ASCII. esbuild escapes what is not ASCII in strings, but keeps comments as written: the unminified
// build's comments get the same escapes (a comment is only read by people).
function asciiOnly(file) {
  if (process.env.NSBOX_BUNDLE_MINIFY === '0') {
    writeFileSync(file, readFileSync(file, 'utf8').replace(/[^\0-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`));
  }
  if (readFileSync(file).some((b) => b > 0x7f)) {
    console.error(`bundle-cli: ${file} is not ASCII (V8 would hold its source as two bytes a character)`);
    process.exit(1);
  }
}
asciiOnly(outfile);
// A dynamic import left in the bundle (of a module esbuild did not bundle), as esbuild's metafile
// lists it: a regex over the text cannot tell one from a method named import (`Image.import(…)`).
const dynamic = Object.values(result.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.kind === 'dynamic-import').map((i) => i.path));
if (dynamic.length) {
  console.error(`bundle-cli: the bundle still has an import() (${dynamic.join(', ')}), which a vm-compiled script cannot run`);
  process.exit(1);
}

// The quick commands (lib/cli/quick/): each a bundle of its own that bin/nsbox.js runs before the
// main bundle, which it falls back to when the quick one cannot answer. They must not carry zod
// (building its classes and schemas is most of what they save).
// In ps, exec and run, Node's fs/promises is replaced by lib/cli/quick/fs-promises.ts (the same calls
// on fs's callback functions): loading it costs a quick command a few milliseconds. (The quick build
// uses file handles, which that module does not offer.)
const fsPromisesShim = {
  name: 'quick-fs-promises',
  setup(b) {
    b.onResolve({ filter: /^(node:)?fs\/promises$/ }, () => ({ path: `${root}dist/cli/quick/fs-promises.js` }));
  },
};
const quick = [];
for (const name of ['ps', 'exec', 'run', 'build']) {
  const out = `${outdir}/quick-${name}.cjs`;
  const r = await build({ ...common, entryPoints: [`dist/cli/quick/${name}.js`], outfile: out, plugins: name === 'build' ? [pathModule] : [fsPromisesShim, moduleShim, pathModule], minify: process.env.NSBOX_BUNDLE_MINIFY !== '0', metafile: true, define: { ...moduleLocation.define, __NSBOX_BUILD_ID__: JSON.stringify(buildId) }, banner: { js: `/* nsbox-build ${buildId} */ ${moduleLocation.banner}` }, supported: { 'dynamic-import': false } });
  asciiOnly(out);
  const inputs = Object.values(r.metafile.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([f]) => f));
  const schemaLib = inputs.filter((f) => /node_modules\/zod\/(?!v4\/core\/(regexes|util)\.js)/.test(f));
  if (schemaLib.length) {
    console.error(`bundle-cli: quick-${name}.cjs carries zod (${schemaLib.join(', ')}): it must read without a schema library`);
    process.exit(1);
  }
  // Its code cache, of its top level evaluated (as the main bundle's below; it has no side effect:
  // the addon loads on first use): compiling a quick bundle from source took ~2.5 ms of a command's
  // CPU, the cache ~0.3 ms to read. Its functions are compiled eagerly (--no-lazy, for this compile
  // only: the flag is back to its default before the cache is made, whose flag hash must match a
  // command's), so the cache holds them all; a quick bundle's functions are nearly all run by its
  // command, each of which would otherwise be compiled at its first call: `run --rm` took ~5 ms
  // less CPU (60 runs, interleaved, 2026-12-07) with a 197 kB cache against 36 kB.
  let cached = 'no code cache';
  try {
    setFlagsFromString('--no-lazy');
    let compiled;
    try {
      compiled = compileBundle(out, undefined);
    } finally {
      setFlagsFromString('--lazy');
    }
    const { script, run } = compiled;
    run(createRequire(out));
    const data = script.createCachedData();
    writeFileSync(`${out}.cache`, Buffer.concat([Buffer.from(buildId, 'latin1'), data]));
    cached = `cache ${(data.length / 1024).toFixed(0)} kB`;
  } catch (e) {
    console.warn(`bundle-cli: quick-${name}.cjs: no code cache (${e.message.split('\n')[0]})`);
  }
  quick.push(`quick-${name}.cjs ${(statSync(out).size / 1024).toFixed(0)} kB (${cached})`);
}

// The code cache: compiled as bin/nsbox.js compiles it, then the everyday commands' modules
// evaluated, so that the cache holds their code too (the rest compile on use: a bigger cache costs
// every command the time to deserialize it). Without the addon (not built yet) there is no cache: the
// CLI still runs, only slower.
let cache = 'no code cache';
try {
  const { script, run } = compileBundle(outfile, undefined);
  await run(createRequire(outfile)).loadCommands(['run', 'exec', 'ps', 'start', 'stop', 'rm', 'logs', 'inspect', 'kill', 'images']);
  const data = script.createCachedData();
  writeFileSync(`${outfile}.cache`, Buffer.concat([Buffer.from(buildId, 'latin1'), data]));
  cache = `code cache ${(data.length / 1024).toFixed(0)} kB`;
} catch (e) {
  console.warn(`bundle-cli: no code cache (${e.message.split('\n')[0]})`);
}
const bytes = statSync(outfile).size;
console.log(`bundle-cli: ${bundled.length} modules, ${(bytes / 1024).toFixed(0)} kB in ${outfile.slice(root.length)}, ${cache}; ${quick.join(', ')}`);

