// npm's install step, after cmake-js: puts the native launcher (build/Release/nsbox-launcher,
// cpp/launcher/main.cc) in place of bin/nsbox, the JS file package.json's bin names, as esbuild's
// install does with its bin/esbuild. Never in a git checkout, where bin/nsbox is tracked (CI runs
// on a clean clone that must stay clean): there the launcher stays in build/Release. Without a
// launcher (a failed or skipped native build) bin/nsbox stays the JS file, which runs bin/nsbox.js.
'use strict';
const { copyFileSync, chmodSync, existsSync, renameSync, rmSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const launcher = join(root, 'build', 'Release', 'nsbox-launcher');
const bin = join(root, 'bin', 'nsbox');
if (existsSync(join(root, '.git'))) {
  console.log('nsbox: a git checkout: bin/nsbox stays the JS entry; the native launcher is build/Release/nsbox-launcher');
} else if (!existsSync(launcher)) {
  console.log('nsbox: no build/Release/nsbox-launcher: `nsbox` runs bin/nsbox.js');
} else {
  const tmp = `${bin}.${process.pid}.tmp`;
  try {
    copyFileSync(launcher, tmp);
    chmodSync(tmp, 0o755);
    renameSync(tmp, bin);
  } catch (e) {
    rmSync(tmp, { force: true });
    console.log(`nsbox: the native launcher was not installed (${e.message}): \`nsbox\` runs bin/nsbox.js`);
  }
}
