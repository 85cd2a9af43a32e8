// The CLI's bundle: dist/cli/main.js and what it imports (zod included, tree-shaken) in
// dist/cli-bundle/, one chunk per lazily loaded command, so that a command loads a few files instead
// of a few hundred modules. bin/nsbox.js runs it when it is there. Run after tsc (npm run build:ts).
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/cli-bundle`;
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { nsbox: 'dist/cli/main.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Loaded only by pull, push, save and load, and large: kept as packages.
  external: ['got', 'tar'],
  // NSBOX_BUNDLE_MINIFY=0 keeps lines and names, for reading a --cpu-prof of the CLI.
  minifySyntax: process.env.NSBOX_BUNDLE_MINIFY !== '0',
  minifyWhitespace: process.env.NSBOX_BUNDLE_MINIFY !== '0',
  metafile: true,
  logLevel: 'warning',
});
// `import { z } from 'zod'` makes the bundle keep all of zod (every locale, JSON Schema): the
// namespace form lets esbuild keep only what is used.
const bundled = Object.values(result.metafile.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([f]) => f));
const locales = bundled.filter((f) => /zod\/v4\/locales\/(?!en\.js)/.test(f));
if (locales.length) {
  console.error(`bundle-cli: all of zod was bundled (${locales.length} locales); import zod as \`import * as z from 'zod'\``);
  process.exit(1);
}
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`bundle-cli: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} kB in dist/cli-bundle`);
