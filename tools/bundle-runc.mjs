// nsbox-runc's bundle: dist/oci/main.js and what it imports as one CommonJS file,
// dist/runc-bundle/nsbox-runc.cjs, with a V8 code cache beside it (bin/compile-bundle.js, as the
// nsbox CLI's): containerd runs the runtime several times per container, and module loading is
// most of a call's cost. Run after tsc (npm run build:ts).
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { compileBundle } from '../bin/compile-bundle.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/runc-bundle`;
const outfile = `${outdir}/nsbox-runc.cjs`;
const buildId = randomBytes(16).toString('hex');
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  entryPoints: ['dist/oci/main.js'],
  outfile,
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__nsbox_module_url', 'import.meta.dirname': '__dirname' },
  banner: { js: `/* nsbox-build ${buildId} */ var __nsbox_module_url = require("node:url").pathToFileURL(__filename).href;` },
  minify: true,
});
if (readFileSync(outfile).some((b) => b > 0x7f)) {
  console.error('bundle-runc: the bundle is not ASCII, which bin/compile-bundle.js reads it as');
  process.exit(1);
}
const { script, run } = compileBundle(outfile, undefined);
run(createRequire(outfile));
writeFileSync(`${outfile}.cache`, Buffer.concat([Buffer.from(buildId, 'latin1'), script.createCachedData()]));
console.log(`bundle-runc: ${outfile.slice(root.length)} with its code cache`);
